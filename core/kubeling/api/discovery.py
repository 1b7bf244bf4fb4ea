"""Discovery documents and the OpenAPI endpoints.

Legacy discovery: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>.
Aggregated discovery (apidiscovery.k8s.io/v2, and v2beta1 for older clients): /api and /apis
answer ``Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`` with
every group, version and resource in one document.  OpenAPI: /openapi/v2 and /openapi/v3
(built by :mod:`kubeling.api.openapi`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from kubeling.api import openapi as openapi_docs
from kubeling.api.errors import ApiError
from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = [
    "aggregated",
    "api_group",
    "api_groups",
    "api_versions",
    "openapi",
    "resource_list",
    "root_paths",
]

log = logging.getLogger(__name__)

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "ephemeralcontainers": ["get", "patch", "update"],
    "binding": ["create"],
    "finalize": ["update"],
    "eviction": ["create"],
    "log": ["get"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
    "proxy": ["create", "delete", "get", "patch", "update"],
}
_SUBRESOURCE_KIND = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "log": ("", "v1", "Pod"),
    "proxy": ("", "v1", "PodProxyOptions"),
}


def _address(server: ApiServer, req: ApiRequest) -> str:
    return server.settings.external_address or req.header("host") or "127.0.0.1"


def root_paths(server: ApiServer) -> ApiResponse:
    paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3",
             "/readyz", "/version"]
    for group, versions in server.registry.groups().items():
        if group:
            paths.append(f"/apis/{group}")
            paths.extend(f"/apis/{group}/{v}" for v in versions)
    return ApiResponse.json({"paths": sorted(paths)})


def api_versions(server: ApiServer, req: ApiRequest) -> ApiResponse:
    wanted = _aggregated_version(req)
    if wanted:
        return aggregated(server, req, wanted, core=True)
    return ApiResponse.json({
        "kind": "APIVersions",
        "versions": server.registry.groups().get("", ["v1"]),
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": _address(server, req)}],
    })


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_groups(server: ApiServer, req: ApiRequest) -> ApiResponse:
    wanted = _aggregated_version(req)
    if wanted:
        return aggregated(server, req, wanted, core=False)
    groups = [_group_doc(g, vs) for g, vs in server.registry.groups().items() if g]
    return ApiResponse.json({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


def api_group(server: ApiServer, group: str) -> ApiResponse:
    versions = server.registry.groups().get(group)
    if not versions or not group:
        raise ApiError.resource_not_found(f"/apis/{group}")
    return ApiResponse.json({"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group,
                                                                                 versions)})


def resource_entries(kind: KindInfo) -> list[dict[str, Any]]:
    """APIResource entries of a kind: the resource and its subresources."""
    main: dict[str, Any] = {
        "name": kind.plural,
        "singularName": kind.singular or kind.kind.lower(),
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": sorted(kind.verbs),
        "storageVersionHash": _hash(kind),
    }
    if kind.short_names:
        main["shortNames"] = list(kind.short_names)
    if kind.categories:
        main["categories"] = list(kind.categories)
    entries = [main]
    for sub in kind.subresources:
        entry: dict[str, Any] = {"name": f"{kind.plural}/{sub}", "singularName": "",
                                 "namespaced": kind.namespaced, "kind": kind.kind,
                                 "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])}
        if sub in _SUBRESOURCE_KIND:
            group, version, sub_kind = _SUBRESOURCE_KIND[sub]
            entry["kind"] = sub_kind
            if group:
                entry["group"] = group
                entry["version"] = version
        entries.append(entry)
    return entries


def resource_list(server: ApiServer, group: str, version: str) -> ApiResponse:
    resources: list[dict[str, Any]] = []
    for kind in server.registry.in_group_version(group, version):
        resources.extend(resource_entries(kind))
    return ApiResponse.json({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    })


def _hash(kind: KindInfo) -> str:
    digest = hashlib.sha256(f"{kind.group}/{kind.version}/{kind.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


# -- content negotiation ------------------------------------------------------------------

def _accepted(req: ApiRequest) -> list[tuple[str, dict[str, str]]]:
    """The Accept header as (media type, parameters), in the client's order."""
    out = []
    for part in (req.header("accept") or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params = {}
        for field in fields[1:]:
            key, _, value = field.partition("=")
            params[key.strip().lower()] = value.strip()
        out.append((fields[0].lower(), params))
    return out


def _aggregated_version(req: ApiRequest) -> str:
    """``v2``/``v2beta1`` when the client's first acceptable answer is aggregated discovery;
    ``""`` for the legacy documents."""
    for media, params in _accepted(req):
        if media in ("application/json", "*/*", "application/*"):
            if params.get("g") == "apidiscovery.k8s.io" and \
                    params.get("as") == "APIGroupDiscoveryList" and \
                    params.get("v") in ("v2", "v2beta1"):
                return params["v"]
            if "as" not in params and "g" not in params:
                return ""
    return ""


def _with_etag(req: ApiRequest, body: bytes, content_type: str,
               cache_control: str = "no-cache, private") -> ApiResponse:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": cache_control}
    if req.header("if-none-match") == etag:
        return ApiResponse(status=304, body=b"", content_type=content_type, headers=headers)
    return ApiResponse(status=200, body=body, content_type=content_type, headers=headers)


# -- aggregated discovery -----------------------------------------------------------------

def _resource_kind(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def aggregated_resource(kind: KindInfo) -> dict[str, Any]:
    """The APIResourceDiscovery entry of a kind, its subresources inside."""
    entry: dict[str, Any] = {
        "resource": kind.plural,
        "responseKind": _resource_kind(kind.group, kind.version, kind.kind),
        "scope": "Namespaced" if kind.namespaced else "Cluster",
        "singularResource": kind.singular or kind.kind.lower(),
        "verbs": sorted(kind.verbs),
    }
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if kind.categories:
        entry["categories"] = list(kind.categories)
    subs = []
    for sub in kind.subresources:
        group, version, sub_kind = _SUBRESOURCE_KIND.get(sub, (kind.group, kind.version,
                                                               kind.kind))
        subs.append({"subresource": sub,
                     "responseKind": _resource_kind(group, version, sub_kind),
                     "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated_document(server: ApiServer, version: str, *, core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList of the core group (``core``) or of the named groups."""
    items = []
    for group, versions in server.registry.groups().items():
        if bool(group) == core:
            continue
        item_versions = []
        for v in versions:
            resources = sorted((aggregated_resource(k)
                                for k in server.registry.in_group_version(group, v)),
                               key=lambda r: r["resource"])
            item_versions.append({"version": v, "resources": resources,
                                  "freshness": "Current"})
        meta: dict[str, Any] = {"creationTimestamp": None}
        if group:
            meta["name"] = group
        items.append({"metadata": meta, "versions": item_versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def aggregated(server: ApiServer, req: ApiRequest, version: str, *, core: bool
               ) -> ApiResponse:
    """Aggregated discovery of /api (``core``) or /apis, in apidiscovery ``version``."""
    body = orjson.dumps(aggregated_document(server, version, core=core))
    content_type = (f"application/json;g=apidiscovery.k8s.io;v={version};"
                    f"as=APIGroupDiscoveryList")
    return _with_etag(req, body, content_type)


# -- OpenAPI ------------------------------------------------------------------------------

_JSON_TYPES = ("application/json", "*/*", "application/*")


def _wants_json(req: ApiRequest) -> bool:
    accepted = _accepted(req)
    return not accepted or any(media in _JSON_TYPES for media, _ in accepted)


def openapi(server: ApiServer, req: ApiRequest, rest: list[str]) -> ApiResponse:
    """/openapi/v2, /openapi/v3 and /openapi/v3/<api|apis/group>/<version>, as JSON.

    Protobuf is not served: a client asking only for it gets 406, which kubectl treats as
    "no such document" and falls back from (it uses the v3 JSON documents).
    """
    if req.method.upper() not in ("GET", "HEAD"):
        raise ApiError.method_not_allowed(req.method, req.path)
    if not rest or rest[0] not in ("v2", "v3"):
        raise ApiError.resource_not_found(req.path)
    if not _wants_json(req):
        raise ApiError.not_acceptable(req.header("accept"), ["application/json"])
    docs = openapi_docs.documents_for(server)
    if rest[0] == "v2":
        if len(rest) != 1:
            raise ApiError.resource_not_found(req.path)
        body, _ = docs.v2()
        return _with_etag(req, body, "application/json")
    if len(rest) == 1:
        return _with_etag(req, orjson.dumps(docs.v3_index()), "application/json")
    found = docs.v3("/".join(rest[1:]))
    if found is None:
        raise ApiError.resource_not_found(req.path)
    body, digest = found
    asked = req.query.get("hash")
    if asked and asked != digest:
        # an outdated link: send the client to the current document (as Kubernetes does)
        location = f"/openapi/v3/{'/'.join(rest[1:])}?hash={digest}"
        return ApiResponse(status=301, body=b"", headers={"Location": location})
    cache = "public, immutable" if asked else "no-cache, private"
    return _with_etag(req, body, "application/json", cache)
