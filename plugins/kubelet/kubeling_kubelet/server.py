"""The agent's endpoint, called by the API server for ``pods/log``, ``exec``, ``attach``
and ``portforward`` (the kubelet's port 10250).

Every request must carry ``Authorization: Bearer <secret>``, the secret shared with the
control plane (``<data_dir>/node-agent.secret``); anything else gets 401.  Errors are
Kubernetes ``Status`` objects, which the API server passes on to kubectl.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from kubeling.api.http import parse_listen
from kubeling.runtime import ContainerRuntimeError, ContainerState, ContainerStatus
from kubeling_kubelet.streams import (
    CHANNEL_PROTOCOLS,
    PORTFORWARD_PROTOCOLS,
    SPDY_PORTFORWARD,
    SpdySession,
    SpdyStream,
    error_status,
    serve_channels,
)

if TYPE_CHECKING:
    from kubeling_kubelet.agent import Kubelet
    from kubeling_kubelet.worker import PodWorker

log = logging.getLogger(__name__)

__all__ = ["AgentServer"]


def _status(code: int, message: str, reason: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(status=code, body=json.dumps(body).encode(),
                        content_type="application/json")


class _Refusal(Exception):
    def __init__(self, code: int, message: str, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.response = _status(code, message, reason)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise _Refusal(400, f'{name} must be an integer, not "{value}"') from None


class AgentServer:
    """aiohttp server of the node agent's endpoints."""

    def __init__(self, agent: Kubelet, listen: str, secret: str) -> None:
        self.agent = agent
        self.host, self.port = parse_listen(listen)
        self.secret = secret
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = self.agent.settings.address or self.host
        if host in ("0.0.0.0", "::"):
            host = self.agent.host_ip
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/stats/usage", self._usage)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        for method in ("GET", "POST"):
            app.router.add_route(method, "/exec/{namespace}/{pod}/{container}", self._exec)
            app.router.add_route(method, "/attach/{namespace}/{pod}/{container}", self._attach)
            app.router.add_route(method, "/portForward/{namespace}/{pod}", self._port_forward)
        # a follow of a quiet container ends when its client goes away
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {self.secret}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _status(401, "the node agent accepts calls only from the API server "
                                "(missing or wrong shared secret)", "Unauthorized")
        try:
            return await handler(request)
        except _Refusal as refusal:
            return refusal.response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _usage(self, request: web.Request) -> web.Response:
        """The latest resource usage sample (:mod:`kubeling_kubelet.usage`)."""
        return web.json_response(self.agent.usage.snapshot)

    # -- finding pods and containers ----------------------------------------------------

    def _worker(self, request: web.Request) -> PodWorker:
        namespace, pod = request.match_info["namespace"], request.match_info["pod"]
        worker = self.agent.find_worker(namespace, pod)
        if worker is None:
            raise _Refusal(404, f'pod "{pod}" not found on node "{self.agent.node_name}"',
                           "NotFound")
        return worker

    async def _container(self, worker: PodWorker, name: str, *, previous: bool = False,
                         running: bool = False) -> ContainerStatus:
        pod_name = worker.pod["metadata"]["name"]
        specs = {c["name"] for c in [*worker._specs(), *((worker.pod.get("spec") or {})
                                                          .get("ephemeralContainers") or [])]}
        if name not in specs:
            raise _Refusal(400, f'container {name} is not valid for pod {pod_name}')
        from kubeling_kubelet.worker import LABEL_POD_UID

        containers = await self.agent.runtime.list_containers(labels={
            LABEL_POD_UID: worker.uid, **self.agent.scope_labels})
        history = sorted((c for c in containers if c.name == name),
                         key=lambda c: (c.attempt, c.created_at), reverse=True)
        if previous:
            if len(history) < 2:
                raise _Refusal(400, f'previous terminated container "{name}" in pod '
                                    f'"{pod_name}" not found')
            return history[1]
        if not history:
            reason = worker.waiting.get(name, ("ContainerCreating", ""))[0]
            raise _Refusal(400, f'container "{name}" in pod "{pod_name}" is waiting to '
                                f"start: {reason}")
        if running and history[0].state != ContainerState.RUNNING:
            raise _Refusal(400, f'container {name} is not running (state: '
                                f'{history[0].state.value}); cannot exec into it')
        return history[0]

    # -- logs ---------------------------------------------------------------------------

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        worker = self._worker(request)
        container = await self._container(worker, request.match_info["container"],
                                          previous=_flag(request, "previous"))
        since = None
        seconds = _int(request, "sinceSeconds")
        if seconds is not None:
            since = time.time() - seconds
        elif request.query.get("sinceTime"):
            text = request.query["sinceTime"]
            try:
                since = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise _Refusal(400, f'sinceTime must be an RFC 3339 time, not "{text}"') \
                    from None
        tail = _int(request, "tailLines")
        limit = _int(request, "limitBytes")
        follow = _flag(request, "follow") and container.state == ContainerState.RUNNING
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            async for chunk in self.agent.runtime.logs(
                    container.id, follow=follow, tail=tail,
                    timestamps=_flag(request, "timestamps"), since=since, limit_bytes=limit):
                await response.write(chunk)
        except (ConnectionError, asyncio.CancelledError):
            return response
        except ContainerRuntimeError as exc:
            log.info("logs of %s: %s", container.id[:12], exc)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    # -- exec and attach ----------------------------------------------------------------

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        worker = self._worker(request)
        container = await self._container(worker, request.match_info["container"],
                                          running=True)
        command = request.query.getall("command", [])
        if not command:
            raise _Refusal(400, "you must specify at least 1 command")
        return await self._channels(request, container, command)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        worker = self._worker(request)
        container = await self._container(worker, request.match_info["container"],
                                          running=True)
        return await self._channels(request, container, None)

    async def _channels(self, request: web.Request, container: ContainerStatus,
                        command: list[str] | None) -> web.StreamResponse:
        stdin, tty = _flag(request, "stdin"), _flag(request, "tty")
        stdout, stderr = _flag(request, "stdout", True), _flag(request, "stderr", not tty)
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS, autoping=True)
        if not ws.can_prepare(request).ok:
            raise _Refusal(400, "exec and attach need a WebSocket upgrade with protocol "
                                + " or ".join(CHANNEL_PROTOCOLS))
        await ws.prepare(request)
        try:
            if command is not None:
                session = await self.agent.runtime.exec(container.id, command, stdin=stdin,
                                                        tty=tty)
            else:
                session = await self.agent.runtime.attach(container.id, stdin=stdin, tty=tty)
        except ContainerRuntimeError as exc:
            with contextlib.suppress(Exception):
                await ws.send_bytes(b"\x03" + json.dumps(error_status(str(exc))).encode())
                await ws.close()
            return ws
        await serve_channels(ws, session, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                             command=command)
        return ws

    # -- port-forward -------------------------------------------------------------------

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        worker = self._worker(request)
        if worker.sandbox_id is None:
            raise _Refusal(400, f'pod {worker.pod["metadata"]["name"]} has no running '
                                f"sandbox yet")
        ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS, autoping=True)
        if not ws.can_prepare(request).ok:
            raise _Refusal(400, "port-forward needs a WebSocket upgrade with protocol "
                                + " or ".join(PORTFORWARD_PROTOCOLS))
        if ws.can_prepare(request).protocol != SPDY_PORTFORWARD:
            ports = [p for p in request.query.get("ports", "").split(",") if p]
            if not ports or not all(p.isdigit() and 0 < int(p) < 65536 for p in ports):
                raise _Refusal(400, "ports must be a comma-separated list of port numbers")
        await ws.prepare(request)
        if ws.ws_protocol == SPDY_PORTFORWARD:
            await self._spdy_port_forward(ws, worker)
        else:
            await self._ws_port_forward(ws, worker, [int(p) for p in ports])
        return ws

    async def _spdy_port_forward(self, ws: web.WebSocketResponse, worker: PodWorker) -> None:
        pairs: dict[str, dict[str, SpdyStream]] = {}
        tasks: set[asyncio.Task[None]] = set()

        async def read() -> bytes | None:
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.BINARY:
                    return bytes(msg.data)
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                WSMsgType.ERROR):
                    return None

        def on_stream(stream: SpdyStream) -> None:
            request_id = stream.headers.get("requestid", "")
            kind = stream.headers.get("streamtype", "")
            pair = pairs.setdefault(request_id, {})
            pair[kind] = stream
            if "data" in pair and "error" in pair:
                del pairs[request_id]
                task = asyncio.create_task(self._forward_pair(worker, pair["data"],
                                                              pair["error"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        session = SpdySession(read, ws.send_bytes, on_stream)
        try:
            await session.run()
        finally:
            for task in list(tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await ws.close()

    async def _forward_pair(self, worker: PodWorker, data: SpdyStream,
                            error: SpdyStream) -> None:
        port_text = data.headers.get("port", "")
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await error.write(f'invalid port "{port_text}"'.encode())
            await error.close()
            await data.close()
            return
        try:
            assert worker.sandbox_id is not None
            reader, writer = await self.agent.runtime.port_forward(worker.sandbox_id, port)
        except (ContainerRuntimeError, OSError) as exc:
            pod = worker.pod["metadata"]["name"]
            await error.write(f"error forwarding port {port} to pod {pod}: {exc}".encode())
            await error.close()
            await data.close()
            return

        async def upstream() -> None:
            while True:
                chunk = await data.read()
                if chunk is None:
                    break
                writer.write(chunk)  # type: ignore[attr-defined]
                await writer.drain()  # type: ignore[attr-defined]
            with contextlib.suppress(OSError):
                writer.write_eof()  # type: ignore[attr-defined]

        async def downstream() -> None:
            while True:
                chunk = await reader.read(65536)  # type: ignore[attr-defined]
                if not chunk:
                    break
                await data.write(chunk)
            await data.close()

        up = asyncio.create_task(upstream())
        try:
            await downstream()
            with contextlib.suppress(TimeoutError, Exception):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(up)
        finally:
            up.cancel()
            writer.close()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                await error.close()

    async def _ws_port_forward(self, ws: web.WebSocketResponse, worker: PodWorker,
                               ports: list[int]) -> None:
        writers: dict[int, Any] = {}
        tasks: list[asyncio.Task[None]] = []
        for index, port in enumerate(ports):
            prefix = port.to_bytes(2, "little")
            await ws.send_bytes(bytes([2 * index]) + prefix)
            await ws.send_bytes(bytes([2 * index + 1]) + prefix)
            try:
                assert worker.sandbox_id is not None
                reader, writer = await self.agent.runtime.port_forward(worker.sandbox_id, port)
            except (ContainerRuntimeError, OSError) as exc:
                await ws.send_bytes(bytes([2 * index + 1]) + str(exc).encode())
                continue
            writers[2 * index] = writer

            async def pump(reader: Any = reader, channel: int = 2 * index) -> None:
                while chunk := await reader.read(65536):
                    await ws.send_bytes(bytes([channel]) + chunk)

            tasks.append(asyncio.create_task(pump()))

        async def close_when_drained() -> None:
            # the pod closed every connection: end the WebSocket, the client's EOF
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close()

        closer = asyncio.create_task(close_when_drained())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                writer = writers.get(channel)
                if writer is not None and payload:
                    writer.write(payload)
                    await writer.drain()
        finally:
            for task in (*tasks, closer):
                task.cancel()
            for writer in writers.values():
                writer.close()
