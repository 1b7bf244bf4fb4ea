"""The resource metrics API (``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics), what
``kubectl top`` reads, served in the API server as metrics-server would.

Each list or get asks the node agents for their latest usage sample (``GET
/stats/usage`` with the shared secret, all nodes at once, 5 s at most each) and answers
with Kubernetes' shapes: CPU in nanocores (``"12345678n"``), memory in KiB (``"2048Ki"``),
the sample's ``timestamp`` and ``window``.  A node that does not answer, or has no sample
yet, is left out, as metrics-server leaves out nodes it could not scrape.  Both kinds are
read-only (``get``, ``list``); ``labelSelector`` and ``fieldSelector=metadata.name=...``
work as for other lists.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from kubeling.api.errors import ApiError
from kubeling.api.node_proxy import agent_endpoint
from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest, ApiResponse
from kubeling.api.selectors import SelectorError, parse_label_selector
from kubeling.api.strategy import Strategy

if TYPE_CHECKING:
    from kubeling.api.auth import UserInfo
    from kubeling.api.handlers import Target
    from kubeling.api.server import ApiServer

log = logging.getLogger(__name__)

__all__ = ["GROUP", "VERSION", "install", "node_metrics_kind", "pod_metrics_kind"]

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
AGENT_TIMEOUT = 5.0

Obj = dict[str, Any]


class _ReadOnly(Strategy):
    """Metrics are computed, never stored."""

    has_status = False


def node_metrics_kind() -> KindInfo:
    return KindInfo(group=GROUP, version=VERSION, kind="NodeMetrics", plural="nodes",
                    singular="", namespaced=False, strategy=_ReadOnly(), subresources=(),
                    verbs=("get", "list"))


def pod_metrics_kind() -> KindInfo:
    return KindInfo(group=GROUP, version=VERSION, kind="PodMetrics", plural="pods",
                    singular="", namespaced=True, strategy=_ReadOnly(), subresources=(),
                    verbs=("get", "list"))


def install(server: ApiServer, secret: str) -> None:
    """Serve ``metrics.k8s.io/v1beta1`` through ``server`` (before it starts)."""
    metrics = MetricsApi(server, secret)
    for kind in (node_metrics_kind(), pod_metrics_kind()):
        server.registry.add(kind)
        server.add_resource_handler(GROUP, kind.plural, metrics.handle)


def _cpu(nanocores: int) -> str:
    return f"{max(int(nanocores), 0)}n"


def _memory(size: int) -> str:
    return f"{max(int(size), 0) // 1024}Ki"


class MetricsApi:
    """Answers NodeMetrics and PodMetrics requests from the agents' samples."""

    def __init__(self, server: ApiServer, secret: str) -> None:
        self.server = server
        self.secret = secret

    async def handle(self, server: ApiServer, verb: str, target: Target, req: ApiRequest,
                     user: UserInfo) -> ApiResponse:
        if verb not in ("get", "list"):
            raise ApiError.method_not_allowed(req.method, req.path)
        samples = await self._samples(req, user)
        if target.kind.plural == "nodes":
            items = [self._node_item(name, s["node"]) for name, s in samples.items()
                     if s.get("node")]
            kind = "NodeMetrics"
        else:
            items = [self._pod_item(pod) for s in samples.values()
                     for pod in s.get("pods") or []
                     if target.namespace is None or pod.get("namespace") == target.namespace]
            kind = "PodMetrics"
        if target.name is not None:
            found = next((i for i in items if i["metadata"]["name"] == target.name), None)
            if found is None:
                raise ApiError.not_found(kind.lower(), GROUP, target.name)
            return ApiResponse.json(found)
        items = self._filter(items, req)
        items.sort(key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"]))
        return ApiResponse.json({"kind": f"{kind}List", "apiVersion": API_VERSION,
                                 "metadata": {}, "items": items})

    @staticmethod
    def _filter(items: list[Obj], req: ApiRequest) -> list[Obj]:
        text = req.query.get("labelSelector") or ""
        if text:
            try:
                selector = parse_label_selector(text)
            except SelectorError as exc:
                raise ApiError.bad_request(f"unable to parse requirement: {exc}") from None
            items = [i for i in items if selector.matches(i["metadata"].get("labels") or {})]
        fields = req.query.get("fieldSelector") or ""
        for term in filter(None, fields.split(",")):
            key, _, value = term.partition("=")
            key = key.rstrip("!=")
            negate = term[len(key):].startswith("!=")
            value = value.lstrip("=")
            if key not in ("metadata.name", "metadata.namespace"):
                raise ApiError.bad_request(f'"{key}" is not a known field selector: only '
                                           '"metadata.name", "metadata.namespace"')
            part = key.split(".", 1)[1]
            items = [i for i in items if (i["metadata"].get(part) == value) != negate]
        return items

    @staticmethod
    def _node_item(name: str, node: Obj) -> Obj:
        return {"kind": "NodeMetrics", "apiVersion": API_VERSION,
                "metadata": {"name": name, "creationTimestamp": node["timestamp"],
                             "labels": node.get("labels") or {}},
                "timestamp": node["timestamp"], "window": node["window"],
                "usage": {"cpu": _cpu(node["cpu_nanocores"]),
                          "memory": _memory(node["memory_working_set_bytes"])}}

    @staticmethod
    def _pod_item(pod: Obj) -> Obj:
        return {"kind": "PodMetrics", "apiVersion": API_VERSION,
                "metadata": {"name": pod["name"], "namespace": pod["namespace"],
                             "creationTimestamp": pod["timestamp"],
                             "labels": pod.get("labels") or {}},
                "timestamp": pod["timestamp"], "window": pod["window"],
                "containers": [{"name": c["name"],
                                "usage": {"cpu": _cpu(c["cpu_nanocores"]),
                                          "memory": _memory(c["memory_working_set_bytes"])}}
                               for c in pod.get("containers") or []]}

    async def _samples(self, req: ApiRequest, user: UserInfo) -> dict[str, Obj]:
        """Node name -> the usage sample its agent reports (with the Node's labels)."""
        from kubeling.api.handlers import Target

        kind = self.server.registry.get("", "v1", "nodes")
        assert kind is not None
        resp = await self.server.handlers.list(Target(kind, None, None, None),
                                               ApiRequest(method="GET", path=req.path), user)
        nodes = orjson.loads(resp.body).get("items") or []
        headers = {"Authorization": f"Bearer {self.secret}"}
        out: dict[str, Obj] = {}
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=AGENT_TIMEOUT)) as session:

            async def fetch(node: Obj) -> None:
                name = str(node["metadata"]["name"])
                endpoint = agent_endpoint(node)
                if endpoint is None:
                    return
                try:
                    async with session.get(f"{endpoint}/stats/usage",
                                           headers=headers) as answer:
                        if answer.status != 200:
                            return
                        sample = await answer.json()
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.debug("no usage from node %s: %s", name, exc)
                    return
                if sample.get("node"):
                    sample["node"]["labels"] = node["metadata"].get("labels") or {}
                out[name] = sample

            await asyncio.gather(*(fetch(n) for n in nodes))
        return out
