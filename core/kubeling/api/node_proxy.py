"""``pods/log``, ``pods/exec``, ``pods/attach`` and ``pods/portforward``: the API server
proxies them to the node agent running the pod.

The agent's address comes from its Node (annotation ``node.kubeling.io/agent-endpoint``,
else the InternalIP and ``status.daemonEndpoints.kubeletEndpoint.Port``).  Every call to an
agent carries ``Authorization: Bearer <secret>``, a secret shared by the control plane and
its nodes (``<data_dir>/node-agent.secret``).

Logs are streamed as plain text.  exec, attach and port-forward are WebSocket upgrades: the
handler checks the pod and container, then returns an :class:`ApiResponse` whose
``upgrade`` callback the HTTP front calls with the client's connection; it opens a
WebSocket to the agent offering the client's subprotocols (``v5.channel.k8s.io``,
``v4.channel.k8s.io``, ``SPDY/3.1+portforward.k8s.io``...), accepts the client's with the
one the agent chose, and relays messages both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from kubeling.api.errors import ApiError
from kubeling.api.request import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from kubeling.api.auth import UserInfo
    from kubeling.api.handlers import Target
    from kubeling.api.server import ApiServer

log = logging.getLogger(__name__)

__all__ = ["AGENT_ENDPOINT_ANNOTATION", "SECRET_FILE", "agent_endpoint", "install",
           "load_secret"]

AGENT_ENDPOINT_ANNOTATION = "node.kubeling.io/agent-endpoint"
SECRET_FILE = "node-agent.secret"
SUBRESOURCES = ("log", "exec", "attach", "portforward")
_AGENT_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach",
                "portforward": "portForward"}

Obj = dict[str, Any]


def load_secret(path: Path, *, create: bool = True) -> str:
    """The shared secret in ``path``; created (mode 0600) when missing and ``create``.

    :raises FileNotFoundError: missing and not ``create``.
    """
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        if not create:
            raise
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(value + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return value


def install(server: ApiServer, secret: str) -> None:
    """Serve the pod subresources that live on nodes through ``server``."""
    proxy = NodeProxy(server, secret)
    for sub in SUBRESOURCES:
        server.add_subresource_handler("", "pods", sub, proxy.handler(sub))


def agent_endpoint(node: Obj) -> str | None:
    """The base URL of a Node's agent (its annotation, else its address and kubelet
    port); None when it publishes none."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    if annotations.get(AGENT_ENDPOINT_ANNOTATION):
        return str(annotations[AGENT_ENDPOINT_ANNOTATION]).rstrip("/")
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    for kind in ("InternalIP", "ExternalIP", "Hostname"):
        for address in status.get("addresses") or []:
            if address.get("type") == kind and address.get("address") and port:
                host = address["address"]
                return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return None


class NodeProxy:
    """The handlers (one per subresource) sharing the secret."""

    def __init__(self, server: ApiServer, secret: str) -> None:
        self.server = server
        self.secret = secret

    def handler(self, sub: str) -> Any:
        async def handle(server: ApiServer, verb: str, target: Target, req: ApiRequest,
                         user: UserInfo) -> ApiResponse:
            return await self.handle(sub, verb, target, req, user)
        return handle

    async def _get(self, kind_plural: str, name: str, namespace: str | None,
                   req: ApiRequest, user: UserInfo) -> Obj:
        from kubeling.api.handlers import Target

        kind = self.server.registry.get("", "v1", kind_plural)
        assert kind is not None
        resp = await self.server.handlers.get(Target(kind, namespace, name, None),
                                              ApiRequest(method="GET", path=req.path), user)
        return orjson.loads(resp.body)

    async def handle(self, sub: str, verb: str, target: Target, req: ApiRequest,
                     user: UserInfo) -> ApiResponse:
        if sub == "log" and verb != "get":
            raise ApiError.method_not_allowed(req.method, req.path)
        if sub != "log" and verb not in ("get", "create"):
            raise ApiError.method_not_allowed(req.method, req.path)
        pod = await self._get("pods", target.name or "", target.namespace, req, user)
        meta = pod["metadata"]
        namespace, name = meta.get("namespace") or "default", meta["name"]
        container = ""
        if sub != "portforward":
            container = self._container(pod, req.query.get("container") or "")
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise ApiError.bad_request(f"pod {name} does not have a host assigned")
        endpoint = await self._endpoint(node_name, req, user)
        path = f"/{_AGENT_PATHS[sub]}/{namespace}/{name}"
        if container:
            path += f"/{container}"
        headers = {"Authorization": f"Bearer {self.secret}"}
        if sub == "log":
            return await self._logs(endpoint + path, req, headers)
        if (req.header("upgrade") or "").lower() != "websocket":
            raise ApiError.bad_request(
                f"{sub} needs a WebSocket connection (subprotocols v5.channel.k8s.io, "
                f"v4.channel.k8s.io; port-forward SPDY/3.1+portforward.k8s.io); this "
                f"server does not speak SPDY upgrades")

        async def upgrade(request: web.Request) -> web.StreamResponse:
            return await _relay(request, endpoint + path, headers)

        return ApiResponse(status=101, upgrade=upgrade)

    @staticmethod
    def _container(pod: Obj, wanted: str) -> str:
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        ephemeral = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        name = pod["metadata"]["name"]
        if wanted:
            if wanted not in names and wanted not in init and wanted not in ephemeral:
                raise ApiError.bad_request(f"container {wanted} is not valid for pod {name}")
            return wanted
        annotations = pod["metadata"].get("annotations") or {}
        default = annotations.get("kubectl.kubernetes.io/default-container")
        if default in names:
            return str(default)
        if len(names) == 1:
            return str(names[0])
        choices = " ".join(str(n) for n in names)
        message = f"a container name must be specified for pod {name}, choose one of: " \
                  f"[{choices}]"
        if init:
            message += f" or one of the init containers: [{' '.join(str(n) for n in init)}]"
        raise ApiError.bad_request(message)

    async def _endpoint(self, node_name: str, req: ApiRequest, user: UserInfo) -> str:
        try:
            node = await self._get("nodes", node_name, None, req, user)
        except ApiError as exc:
            if exc.code == 404:
                raise ApiError.bad_request(f'node "{node_name}" of the pod is not '
                                           f"registered") from None
            raise
        endpoint = agent_endpoint(node)
        if endpoint is None:
            raise ApiError(503, "ServiceUnavailable",
                           f'node "{node_name}" publishes no address for its agent')
        return endpoint

    async def _logs(self, url: str, req: ApiRequest, headers: dict[str, str]) -> ApiResponse:
        query = {k: v for k, v in req.query.items() if k != "container"}
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None,
                                                                      sock_connect=10))
        try:
            resp = await session.get(url, params=query, headers=headers)
        except aiohttp.ClientError as exc:
            await session.close()
            raise ApiError(503, "ServiceUnavailable",
                           f"cannot reach the node agent at {url}: {exc}") from None
        if resp.status != 200:
            body = await resp.read()
            resp.release()
            await session.close()
            return ApiResponse(status=resp.status, body=body,
                               content_type=resp.headers.get("Content-Type",
                                                             "application/json"))

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            except aiohttp.ClientError:
                return
            finally:
                resp.release()
                await session.close()

        return ApiResponse(status=200, content_type="text/plain", stream=chunks())


async def _relay(request: web.Request, url: str, headers: dict[str, str]) -> web.StreamResponse:
    """Accept the client's WebSocket and relay it to the agent's."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip()]
    target = url + ("?" + request.query_string if request.query_string else "")
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    try:
        agent = await session.ws_connect(target, protocols=offered, headers=headers,
                                         autoping=True, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        # fetch the agent's Status (why it refused) with a plain request
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(target, headers=headers) as plain:
                body = await plain.read()
                if plain.status >= 400:
                    await session.close()
                    return web.Response(status=plain.status, body=body,
                                        content_type="application/json")
        await session.close()
        err = ApiError(exc.status or 502, "BadGateway" if not exc.status else "BadRequest",
                       f"the node agent refused the connection: {exc.message}")
        return web.Response(status=err.code, body=orjson.dumps(err.to_status()),
                            content_type="application/json")
    except aiohttp.ClientError as exc:
        await session.close()
        err = ApiError(503, "ServiceUnavailable", f"cannot reach the node agent: {exc}")
        return web.Response(status=503, body=orjson.dumps(err.to_status()),
                            content_type="application/json")
    client = web.WebSocketResponse(protocols=[agent.protocol] if agent.protocol else (),
                                   autoping=True, max_msg_size=0)
    await client.prepare(request)

    async def pump(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await dst.send_str(msg.data)
            else:
                break

    to_agent = asyncio.create_task(pump(client, agent))
    to_client = asyncio.create_task(pump(agent, client))
    try:
        await asyncio.wait({to_agent, to_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_agent, to_client):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await client.close()
        with contextlib.suppress(Exception):
            await agent.close()
        await session.close()
    return client
