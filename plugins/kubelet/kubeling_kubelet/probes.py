"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket, grpc) and lifecycle
hooks.

A :class:`Prober` runs one probe of one container on its own timer and reports changes of
its result through a callback; the pod worker reacts (restart on liveness failure,
readiness into the pod's Ready condition).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from kubeling.runtime import Runtime
from kubeling_kubelet import grpcprobe

log = logging.getLogger(__name__)

__all__ = ["ProbeResult", "Prober", "run_handler"]

Obj = dict[str, Any]


class ProbeResult:
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


def _port(value: Any, container: Obj) -> int:
    if isinstance(value, int):
        return value
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"port {value!r} is not a number nor a named port") from None


async def run_handler(runtime: Runtime, handler: Obj, *, container_id: str, container: Obj,
                      pod_ip: str, timeout: float) -> tuple[bool, str]:
    """Run an exec/httpGet/tcpSocket handler (a probe or a lifecycle hook).

    :returns: (success, output or failure message).
    """
    try:
        if handler.get("exec") is not None:
            command = handler["exec"].get("command") or []
            result = await runtime.exec_sync(container_id, command, timeout)
            output = (result.stdout + result.stderr).decode(errors="replace")[:1024]
            if result.timed_out:
                return False, f"command {command!r} timed out after {timeout:g}s"
            if result.exit_code != 0:
                return False, f"command {command!r} exited with {result.exit_code}: {output}"
            return True, output
        if handler.get("httpGet") is not None:
            action = handler["httpGet"]
            host = action.get("host") or pod_ip or "127.0.0.1"
            port = _port(action.get("port"), container)
            scheme = (action.get("scheme") or "HTTP").lower()
            path = action.get("path") or "/"
            if not path.startswith("/"):
                path = "/" + path
            headers = {h.get("name", ""): h.get("value", "")
                       for h in action.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.32")
            url = f"{scheme}://{host}:{port}{path}"
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                    session.get(url, headers=headers, ssl=False,
                                allow_redirects=True) as resp:
                body = (await resp.content.read(10240)).decode(errors="replace")
                if 200 <= resp.status < 400:
                    return True, body
                return False, f"HTTP probe failed with statuscode: {resp.status}"
        if handler.get("tcpSocket") is not None:
            action = handler["tcpSocket"]
            host = action.get("host") or pod_ip or "127.0.0.1"
            port = _port(action.get("port"), container)
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                _, writer = await asyncio.open_connection(host, port)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return True, ""
        if handler.get("sleep") is not None:
            await asyncio.sleep(float(handler["sleep"].get("seconds") or 0))
            return True, ""
        if handler.get("grpc") is not None:
            action = handler["grpc"]
            return await grpcprobe.check(pod_ip or "127.0.0.1", int(action.get("port") or 0),
                                         str(action.get("service") or ""), timeout=timeout)
        return False, "the handler has no action"
    except TimeoutError:
        return False, f"timed out after {timeout:g}s"
    except (OSError, aiohttp.ClientError, ValueError) as exc:
        return False, str(exc) or type(exc).__name__
    except Exception as exc:  # a runtime error: report, never crash the prober
        return False, f"{type(exc).__name__}: {exc}"


class Prober:
    """Runs one probe of one container every ``periodSeconds``."""

    def __init__(self, kind: str, probe: Obj, *, runtime: Runtime, container_id: str,
                 container: Obj, pod_ip: str, on_change: Callable[[], None],
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.kind = kind
        self.probe = probe
        self.runtime = runtime
        self.container_id = container_id
        self.container = container
        self.pod_ip = pod_ip
        self.on_change = on_change
        self.on_failure = on_failure
        """Called with the message when a readiness probe starts failing."""
        self.result = ProbeResult.SUCCESS if kind == "liveness" else ProbeResult.UNKNOWN
        self.message = ""
        self._successes = 0
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"probe {self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        period = max(1, int(self.probe.get("periodSeconds") or 10))
        timeout = max(1, int(self.probe.get("timeoutSeconds") or 1))
        success_threshold = max(1, int(self.probe.get("successThreshold") or 1))
        failure_threshold = max(1, int(self.probe.get("failureThreshold") or 3))
        await asyncio.sleep(int(self.probe.get("initialDelaySeconds") or 0))
        while True:
            ok, message = await run_handler(self.runtime, self.probe,
                                            container_id=self.container_id,
                                            container=self.container, pod_ip=self.pod_ip,
                                            timeout=timeout)
            before = self.result
            if ok:
                self._successes += 1
                self._failures = 0
                if self._successes >= success_threshold:
                    self.result = ProbeResult.SUCCESS
            else:
                self._failures += 1
                self._successes = 0
                self.message = message
                if self._failures >= failure_threshold:
                    self.result = ProbeResult.FAILURE
                    if self.kind in ("liveness", "startup"):
                        log.info("%s probe of container %s failed: %s", self.kind,
                                 self.container.get("name"), message)
            if self.result != before:
                if self.result == ProbeResult.FAILURE and self.kind == "readiness" \
                        and self.on_failure is not None:
                    self.on_failure(self.message)
                self.on_change()
            if self.result == ProbeResult.FAILURE and self.kind in ("liveness", "startup"):
                return  # the worker restarts the container, with new probers
            if self.kind == "startup" and self.result == ProbeResult.SUCCESS:
                return
            await asyncio.sleep(period)
