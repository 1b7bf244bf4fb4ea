"""The conformance suite every container runtime plugin passes: :class:`RuntimeContract`.

It checks each clause of :class:`kubeling.runtime.Runtime` against a real runtime: pod
sandboxes with an IP, containers joined to them (shared localhost), command/args/env/
workingDir, exit codes and reasons, stop with a grace period, logs (tail, timestamps,
follow), exec (sync, with a timeout, interactive with stdin), port-forward, labels that come
back from the list calls (re-adoption), mounts, image presence and pull errors.

Using it from a plugin takes a few lines::

    class TestMyRuntimeContract(RuntimeContract):
        @pytest_asyncio.fixture
        async def runtime(self):
            rt = MyRuntime(...)
            await rt.start()
            yield rt
            await rt.close()

        @pytest.fixture
        def image(self):
            return "my-registry.local/busybox:1"   # present locally, see below

The ``image`` must be present in the runtime and hold a busybox with ``sh``, ``sleep``,
``cat``, ``echo``, ``httpd`` and ``wget`` (kubeling's tests build one from Debian's
busybox-static).  Every sandbox and container the suite creates carries the labels of the
``labels`` fixture (unique per test) and is removed at the end of the test.  A test that
does not apply to a runtime is switched off in the subclass with ``test_name = None``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kubeling.runtime import (
    ContainerConfig,
    ContainerState,
    ImageNotFoundError,
    ImagePullError,
    Mount,
    NotFoundError,
    PodSandboxConfig,
    PortMapping,
    Runtime,
    SandboxState,
)

__all__ = ["RuntimeContract"]

TIMEOUT = 20.0
"""Seconds any single wait in the suite may take before the test fails."""

HTTPD = "mkdir -p /tmp/www && echo served-by-$(hostname) > /tmp/www/index.html && " \
        "exec httpd -f -p 8080 -h /tmp/www"


async def wait_for(predicate, timeout: float = TIMEOUT, interval: float = 0.1):
    """Await ``predicate()`` (a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.mark.asyncio
class RuntimeContract:
    """Subclass and provide the ``runtime`` and ``image`` fixtures (see the module doc)."""

    @pytest.fixture
    def runtime(self) -> Runtime:
        raise NotImplementedError("the subclass provides a started runtime")

    @pytest.fixture
    def image(self) -> str:
        raise NotImplementedError("the subclass names a local busybox image")

    @pytest.fixture
    def labels(self) -> dict[str, str]:
        return {"io.kubeling.test": uuid.uuid4().hex[:12]}

    @pytest_asyncio.fixture
    async def cleanup(self, runtime: Runtime, labels: dict[str, str]) -> AsyncIterator[None]:
        yield
        for sandbox in await runtime.list_sandboxes(labels):
            await runtime.stop_sandbox(sandbox.id)
            await runtime.remove_sandbox(sandbox.id)
        for container in await runtime.list_containers(labels=labels):
            await runtime.remove_container(container.id)

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def sandbox_config(labels: dict[str, str], name: str = "pod") -> PodSandboxConfig:
        uid = str(uuid.uuid4())
        return PodSandboxConfig(name=name, namespace="contract", uid=uid, hostname=name,
                                labels={**labels, "pod-uid": uid})

    async def run(self, runtime: Runtime, labels: dict[str, str], image: str, script: str,
                  *, name: str = "main", sandbox: tuple[str, PodSandboxConfig] | None = None,
                  **kw: object) -> tuple[str, str, PodSandboxConfig]:
        """Run ``sh -c script`` in a (new) sandbox; returns (sandbox id, container id, cfg)."""
        if sandbox is None:
            cfg = self.sandbox_config(labels)
            sandbox_id = await runtime.run_sandbox(cfg)
        else:
            sandbox_id, cfg = sandbox
        config = ContainerConfig(name=name, image=image, command=["/bin/sh", "-c", script],
                                 labels=labels, **kw)  # type: ignore[arg-type]
        container_id = await runtime.create_container(sandbox_id, config, cfg)
        await runtime.start_container(container_id)
        return sandbox_id, container_id, cfg

    @staticmethod
    async def exited(runtime: Runtime, container_id: str):
        async def check():
            status = await runtime.container_status(container_id)
            return status if status.state == ContainerState.EXITED else None
        return await wait_for(check)

    @staticmethod
    async def all_logs(runtime: Runtime, container_id: str, **kw: object) -> bytes:
        chunks = [c async for c in runtime.logs(container_id, **kw)]  # type: ignore[arg-type]
        return b"".join(chunks)

    # -- the suite ----------------------------------------------------------------------

    async def test_version(self, runtime: Runtime) -> None:
        version = await runtime.version()
        assert version.runtime_name
        assert version.runtime_version
        assert version.uri.startswith(version.runtime_name + "://")

    async def test_sandbox_lifecycle(self, runtime: Runtime, labels: dict[str, str],
                                     cleanup: None) -> None:
        cfg = self.sandbox_config(labels)
        sandbox_id = await runtime.run_sandbox(cfg)
        status = await runtime.sandbox_status(sandbox_id)
        assert status.state == SandboxState.READY
        assert status.ip and status.ip in status.ips
        assert status.labels["pod-uid"] == cfg.uid
        listed = await runtime.list_sandboxes(labels)
        assert [s.id for s in listed] == [sandbox_id]
        assert await runtime.list_sandboxes({**labels, "pod-uid": "other"}) == []
        await runtime.stop_sandbox(sandbox_id)
        assert (await runtime.sandbox_status(sandbox_id)).state == SandboxState.NOT_READY
        await runtime.stop_sandbox(sandbox_id)  # idempotent
        await runtime.remove_sandbox(sandbox_id)
        with pytest.raises(NotFoundError):
            await runtime.sandbox_status(sandbox_id)
        await runtime.remove_sandbox(sandbox_id)  # idempotent

    async def test_container_status_and_labels(self, runtime: Runtime, image: str,
                                               labels: dict[str, str], cleanup: None) -> None:
        sandbox_id, container_id, _ = await self.run(runtime, labels, image, "sleep 30",
                                                     attempt=3)
        status = await runtime.container_status(container_id)
        assert status.state == ContainerState.RUNNING
        assert status.name == "main"
        assert status.attempt == 3
        assert status.sandbox_id == sandbox_id
        assert status.labels == labels
        assert status.started_at > 0 and status.image_ref
        listed = await runtime.list_containers(labels=labels)
        assert [c.id for c in listed] == [container_id]
        assert [c.id for c in await runtime.list_containers(sandbox_id=sandbox_id)] == \
            [container_id]

    async def test_exit_codes_and_reasons(self, runtime: Runtime, image: str,
                                          labels: dict[str, str], cleanup: None) -> None:
        sandbox_id, failing, cfg = await self.run(runtime, labels, image, "exit 3")
        _, ok, _ = await self.run(runtime, labels, image, "true", name="ok",
                                  sandbox=(sandbox_id, cfg))
        failed = await self.exited(runtime, failing)
        assert (failed.exit_code, failed.reason) == (3, "Error")
        assert failed.finished_at >= failed.started_at > 0
        done = await self.exited(runtime, ok)
        assert (done.exit_code, done.reason) == (0, "Completed")

    async def test_command_args_env_workdir(self, runtime: Runtime, image: str,
                                            labels: dict[str, str], cleanup: None) -> None:
        cfg = self.sandbox_config(labels)
        sandbox_id = await runtime.run_sandbox(cfg)
        config = ContainerConfig(
            name="env", image=image, command=["/bin/sh", "-c"],
            args=['echo "$GREETING $0 $(pwd)"', "arg0"], working_dir="/tmp",
            env=[("GREETING", "hello world")], labels=labels)
        container_id = await runtime.create_container(sandbox_id, config, cfg)
        await runtime.start_container(container_id)
        await self.exited(runtime, container_id)
        assert await self.all_logs(runtime, container_id) == b"hello world arg0 /tmp\n"

    async def test_logs_tail_timestamps_follow(self, runtime: Runtime, image: str,
                                               labels: dict[str, str], cleanup: None) -> None:
        _, container_id, _ = await self.run(
            runtime, labels, image,
            "for i in 1 2 3; do echo line$i; done; sleep 0.3; echo err >&2; sleep 1; echo late")
        followed = await asyncio.wait_for(
            self.all_logs(runtime, container_id, follow=True), TIMEOUT)
        assert followed == b"line1\nline2\nline3\nerr\nlate\n"
        assert await self.all_logs(runtime, container_id, tail=2) == b"err\nlate\n"
        stamped = (await self.all_logs(runtime, container_id, timestamps=True)).splitlines()
        assert len(stamped) == 5
        stamp, _, text = stamped[0].partition(b" ")
        assert text == b"line1" and stamp[:2] == b"20" and stamp.endswith(b"Z")

    async def test_exec_sync(self, runtime: Runtime, image: str, labels: dict[str, str],
                             cleanup: None) -> None:
        _, container_id, _ = await self.run(runtime, labels, image, "sleep 60")
        result = await runtime.exec_sync(container_id, ["sh", "-c", "echo out; echo err >&2; "
                                                        "exit 4"], 10)
        assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == \
            (4, b"out\n", b"err\n", False)
        started = time.monotonic()
        slow = await runtime.exec_sync(container_id, ["sleep", "30"], 0.5)
        assert slow.timed_out
        assert time.monotonic() - started < 5

    async def test_interactive_exec_with_stdin(self, runtime: Runtime, image: str,
                                               labels: dict[str, str], cleanup: None) -> None:
        _, container_id, _ = await self.run(runtime, labels, image, "sleep 60")
        session = await runtime.exec(container_id, ["cat"], stdin=True, tty=False)
        await session.write_stdin(b"ping\n")
        await session.close_stdin()
        out = b""
        while True:
            item = await asyncio.wait_for(session.read(), TIMEOUT)
            if item is None:
                break
            assert item[0] == 1
            out += item[1]
        assert out == b"ping\n"
        assert await session.wait() == 0
        await session.close()

    async def test_attach(self, runtime: Runtime, image: str, labels: dict[str, str],
                          cleanup: None) -> None:
        _, container_id, _ = await self.run(
            runtime, labels, image, "while true; do echo beat; sleep 0.1; done")
        session = await runtime.attach(container_id, stdin=False, tty=False)
        seen = b""
        while b"beat\nbeat\n" not in seen:
            item = await asyncio.wait_for(session.read(), TIMEOUT)
            assert item is not None
            seen += item[1]
        await session.close()
        status = await runtime.container_status(container_id)
        assert status.state == ContainerState.RUNNING  # detaching leaves it running

    async def test_stop_with_grace_period(self, runtime: Runtime, image: str,
                                          labels: dict[str, str], cleanup: None) -> None:
        sandbox_id, stubborn, cfg = await self.run(
            runtime, labels, image, "trap '' TERM; while true; do sleep 0.1; done")
        _, polite, _ = await self.run(
            runtime, labels, image, "trap 'exit 0' TERM; while true; do sleep 0.1; done",
            name="polite", sandbox=(sandbox_id, cfg))
        await asyncio.sleep(0.3)  # let the shells install their traps
        started = time.monotonic()
        await runtime.stop_container(polite, 10)
        assert time.monotonic() - started < 5
        assert (await runtime.container_status(polite)).exit_code == 0
        started = time.monotonic()
        await runtime.stop_container(stubborn, 1)
        took = time.monotonic() - started
        assert 0.8 < took < 8
        status = await runtime.container_status(stubborn)
        assert status.state == ContainerState.EXITED and status.exit_code == 137
        await runtime.stop_container(stubborn, 1)  # idempotent

    async def test_containers_share_the_sandbox_network(self, runtime: Runtime, image: str,
                                                        labels: dict[str, str],
                                                        cleanup: None) -> None:
        sandbox_id, _, cfg = await self.run(runtime, labels, image, HTTPD,
                                            ports=[PortMapping(container_port=8080)])
        _, client, _ = await self.run(
            runtime, labels, image,
            "for i in $(seq 50); do wget -q -O - http://127.0.0.1:8080/ && exit 0; "
            "sleep 0.1; done; exit 1", name="client", sandbox=(sandbox_id, cfg))
        status = await self.exited(runtime, client)
        assert status.exit_code == 0
        assert await self.all_logs(runtime, client) == b"served-by-pod\n"

    async def test_port_forward(self, runtime: Runtime, image: str, labels: dict[str, str],
                                cleanup: None) -> None:
        sandbox_id, _, _ = await self.run(runtime, labels, image, HTTPD)

        async def fetch() -> bytes | None:
            try:
                reader, writer = await runtime.port_forward(sandbox_id, 8080)  # type: ignore[misc]
            except Exception:
                return None
            writer.write(b"GET / HTTP/1.0\r\n\r\n")  # type: ignore[attr-defined]
            body = await reader.read()  # type: ignore[attr-defined]
            writer.close()  # type: ignore[attr-defined]
            return body or None

        body = await wait_for(fetch)
        assert body.startswith(b"HTTP/1.") and body.endswith(b"served-by-pod\n")

    async def test_mounts(self, runtime: Runtime, image: str, labels: dict[str, str],
                          cleanup: None, tmp_path: Path) -> None:
        (tmp_path / "in.txt").write_text("from the host\n")
        _, container_id, _ = await self.run(
            runtime, labels, image, "cat /data/in.txt; (echo x > /data/new) 2>/dev/null "
            "&& echo writable || echo read-only",
            mounts=[Mount(host_path=str(tmp_path), container_path="/data", read_only=True)])
        await self.exited(runtime, container_id)
        assert await self.all_logs(runtime, container_id) == b"from the host\nread-only\n"

    async def test_images(self, runtime: Runtime, image: str, labels: dict[str, str],
                          cleanup: None) -> None:
        image_id = await runtime.image_present(image)
        assert image_id
        listed = {i.id: i for i in await runtime.list_images()}
        assert image_id in listed and listed[image_id].size > 0
        assert any(n == image or n.endswith(f"/{image}") for n in listed[image_id].names)
        missing = "127.0.0.1:1/kubeling-contract/missing:1"
        assert await runtime.image_present(missing) is None
        with pytest.raises(ImagePullError) as info:
            await runtime.pull_image(missing)
        assert missing in str(info.value)
        cfg = self.sandbox_config(labels)
        sandbox_id = await runtime.run_sandbox(cfg)
        with pytest.raises(ImageNotFoundError):
            await runtime.create_container(
                sandbox_id, ContainerConfig(name="x", image=missing, labels=labels), cfg)

    async def test_container_stats(self, runtime: Runtime, image: str,
                                   labels: dict[str, str], cleanup: None) -> None:
        cfg = self.sandbox_config(labels)
        sandbox_id = await runtime.run_sandbox(cfg)
        container_id = await runtime.create_container(sandbox_id, ContainerConfig(
            name="busy", image=image, labels=labels,
            command=["/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; "
                                      "exec sleep 60"]), cfg)
        await runtime.start_container(container_id)
        first = await runtime.container_stats(container_id)
        await asyncio.sleep(0.5)
        second = await runtime.container_stats(container_id)
        assert second.cpu_usage_ns > first.cpu_usage_ns > 0
        assert second.memory_working_set_bytes > 0
        with pytest.raises(NotFoundError):
            await runtime.container_stats("kubeling-no-such-container")

    async def test_unknown_ids(self, runtime: Runtime) -> None:
        with pytest.raises(NotFoundError):
            await runtime.container_status("kubeling-no-such-container")
        with pytest.raises(NotFoundError):
            await runtime.sandbox_status("kubeling-no-such-sandbox")
        await runtime.remove_container("kubeling-no-such-container")
        await runtime.stop_container("kubeling-no-such-container", 1)
