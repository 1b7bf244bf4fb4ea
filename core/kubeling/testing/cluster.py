"""Running kubeling for tests: a real ``kubeling up`` process, or an in-process API server.

:class:`KubelingProcess` starts ``kubeling up`` as a subprocess (what kubectl and the sync
``kubernetes`` client talk to); :func:`api_server` runs storage + API server + HTTP front
inside the test's event loop (what async tests of components use).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KubelingProcess", "api_server"]

_URL_LINE = re.compile(r"API server at (\S+)")


class KubelingProcess:
    """``kubeling up`` in a subprocess, on a free loopback port, with its own data dir.

    It runs no node agent (``kubelet``), which would start real containers, unless
    ``config`` has a ``node`` section."""

    def __init__(self, data_dir: Path, *, config: dict[str, Any] | None = None,
                 args: Sequence[str] = (), env: dict[str, str] | None = None,
                 role: str = "all") -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.args = list(args)
        self.env = env
        self.role = role
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.output: list[str] = []
        self._reader: threading.Thread | None = None
        self.config_path = self.data_dir / "cluster.yaml"

    def start(self, timeout: float = 60.0) -> KubelingProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kubeling.cli", "up", "--data-dir", str(self.data_dir),
               "--listen", "127.0.0.1:0", "--kubeconfig-out", str(self.kubeconfig),
               "--role", self.role]
        config = self.config
        if config is not None and "node" not in config:
            # the node agent runs real containers: tests opt in with a ``node`` section
            components = dict(config.get("components") or {})
            components["disabled"] = [*(components.get("disabled") or []), "kubelet"]
            config = {**config, "components": components}
        if config is not None:
            self.config_path.write_text(yaml.safe_dump(config))
            cmd += ["--config", str(self.config_path)]
        else:
            cmd += ["--set", "components.disabled=[kubelet]"]
        if "proxy" not in (self.config or {}):
            # the proxy component rewrites the host's packet filter: tests opt in explicitly
            cmd += ["--set", "proxy.enabled=false"]
        cmd += self.args
        env = {**os.environ, **(self.env or {})}
        env.setdefault("PYTHONUNBUFFERED", "1")
        # a test cluster never pulls images from a remote registry (kubeling-runtime-docker)
        env.setdefault("KUBELING_DOCKER_OFFLINE", "1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        found = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                match = _URL_LINE.search(line)
                if match:
                    self.url = match.group(1)
                if line.startswith("components:"):
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError("kubeling up did not start:\n" + "".join(self.output[-50:]))
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode

    def kill9(self) -> None:
        """``kill -9`` the process (durability tests)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)

    def kubectl(self, *args: str, input: str | None = None, check: bool = False,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster."""
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), *args]
        return subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, check=check)

    def __enter__(self) -> KubelingProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.asynccontextmanager
async def api_server(data_dir: Path, *, extra_plugins: Iterable[Any] = (),
                     settings: Any = None, listen: bool = True,
                     storage: Any = None) -> AsyncIterator[Any]:
    """An API server on SQLite in ``data_dir``, in this event loop.

    Yields an object with ``server``, ``storage``, ``url`` (when ``listen``), ``client()``
    (in-process) and ``http_client()``.
    """
    from kubeling.api.http import HttpFront
    from kubeling.api.server import ApiServer, ServerSettings
    from kubeling.client import Client, HttpTransport, InProcessTransport
    from kubeling.plugins import PluginHost

    host = PluginHost()
    host.load(extra=list(extra_plugins))
    host.collect()
    if storage is None:
        storage_cls = host.contributions.require("storage", "sqlite",
                                                 config_key="storage.backend").value
        del storage_cls
        from kubeling_storage_sqlite.store import SqliteStorage

        storage = SqliteStorage(Path(data_dir) / "state.db")
    await storage.start()
    contributions = host.contributions
    server = ApiServer(
        storage=storage,
        kinds=[c.value for c in contributions.family("kind").values()],
        admitters=[c.value for c in contributions.family("admitter").values()],
        settings=settings or ServerSettings(compaction_interval_seconds=0),
    )
    await server.start()
    front = HttpFront(server, "127.0.0.1:0") if listen else None
    if front is not None:
        await front.start()
    clients: list[Client] = []

    class Handle:
        def __init__(self) -> None:
            self.server = server
            self.storage = storage
            self.host = host
            self.url = front.url if front is not None else ""

        def client(self) -> Client:
            c = Client(InProcessTransport(server))
            clients.append(c)
            return c

        def http_client(self) -> Client:
            c = Client(HttpTransport(self.url))
            clients.append(c)
            return c

    try:
        yield Handle()
    finally:
        for c in clients:
            await c.close()
        if front is not None:
            await front.stop()
        await server.stop()
        await storage.close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll a synchronous predicate until it returns something truthy (for sync tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
