"""Docker-specific behaviour beyond the shared contract: settings, errors, what dockerd gets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubeling_runtime_docker import DockerRuntime, DockerSettings
from kubeling_runtime_docker.runtime import _parse_time

from kubeling.runtime import (
    ContainerConfig,
    ImagePullError,
    PodSandboxConfig,
    Resources,
    RuntimeUnavailableError,
    SecurityOptions,
)


def test_unreachable_daemon_says_where_and_how(tmp_path: Path) -> None:
    rt = DockerRuntime(DockerSettings(host=f"unix://{tmp_path}/nothing.sock"))
    with pytest.raises(RuntimeUnavailableError) as info:
        rt.check_available()
    message = str(info.value)
    assert f"{tmp_path}/nothing.sock" in message
    assert "dockerd" in message and "apt-get install docker.io" in message


def test_bad_host_setting() -> None:
    with pytest.raises(RuntimeUnavailableError, match="not a unix:// or tcp://"):
        DockerRuntime(DockerSettings(host="ftp://x")).check_available()


async def test_start_fails_clearly_without_daemon(tmp_path: Path) -> None:
    rt = DockerRuntime(DockerSettings(host=f"unix://{tmp_path}/nothing.sock"))
    with pytest.raises(RuntimeUnavailableError, match="cannot reach dockerd"):
        await rt.start()
    await rt.close()


def test_parse_time() -> None:
    assert _parse_time("0001-01-01T00:00:00Z") == 0.0
    assert _parse_time("") == 0.0
    assert _parse_time("2026-01-02T03:04:05.5Z") == pytest.approx(1767323045.5)
    assert _parse_time("2026-01-02T03:04:05.123456789Z") == pytest.approx(1767323045.123457)
    assert _parse_time("2026-01-02T03:04:05Z") == 1767323045.0


@pytest_asyncio.fixture
async def runtime(docker_settings: DockerSettings) -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime(docker_settings)
    await rt.start()
    labels = {"io.kubeling.test": uuid.uuid4().hex[:12]}
    rt.test_labels = labels  # type: ignore[attr-defined]
    yield rt
    for sandbox in await rt.list_sandboxes(labels):
        await rt.remove_sandbox(sandbox.id)
    await rt.close()


async def test_offline_refuses_remote_registries(runtime: DockerRuntime) -> None:
    with pytest.raises(ImagePullError, match=r"pulls from docker\.io are disabled"):
        await runtime.pull_image("nginx:1.27")
    with pytest.raises(ImagePullError, match=r"pulls from registry\.example\.com are disabled"):
        await runtime.pull_image("registry.example.com/x/y:1")


async def test_resources_security_and_hostname_reach_dockerd(runtime: DockerRuntime,
                                                            busybox_image: str) -> None:
    labels = runtime.test_labels  # type: ignore[attr-defined]
    sandbox = PodSandboxConfig(name="web-0", namespace="ns", uid=str(uuid.uuid4()),
                               hostname="web-0", labels=labels)
    sandbox_id = await runtime.run_sandbox(sandbox)
    config = ContainerConfig(
        name="app", image=busybox_image, command=["sleep", "60"], labels=labels,
        resources=Resources(cpu_shares=256, cpu_quota=50_000, memory_limit_bytes=64 << 20),
        security=SecurityOptions(run_as_user=1000, run_as_group=1000,
                                 read_only_root_filesystem=True, privileged=False,
                                 capabilities_drop=("NET_RAW",)))
    container_id = await runtime.create_container(sandbox_id, config, sandbox)
    await runtime.start_container(container_id)
    info = await runtime._json(f"containers/{container_id}/json")
    host = info["HostConfig"]
    assert (host["CpuShares"], host["CpuQuota"], host["CpuPeriod"], host["Memory"]) == \
        (256, 50_000, 100_000, 64 << 20)
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["NET_RAW"]
    assert host["NetworkMode"] == f"container:{sandbox_id}"
    assert info["Config"]["User"] == "1000:1000"
    result = await runtime.exec_sync(container_id, ["sh", "-c", "id -u; hostname; "
                                                    "cat /etc/hostname"], 10)
    assert result.stdout.decode().split() == ["1000", "web-0", "web-0"]
    result = await runtime.exec_sync(container_id, ["touch", "/x"], 10)
    assert result.exit_code != 0 and b"Read-only file system" in result.stderr
