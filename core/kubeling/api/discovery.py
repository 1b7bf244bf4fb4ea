"""Discovery documents: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from kubeling.api.errors import ApiError
from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = ["api_group", "api_groups", "api_versions", "resource_list", "root_paths"]

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
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
    paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]
    for group, versions in server.registry.groups().items():
        if group:
            paths.append(f"/apis/{group}")
            paths.extend(f"/apis/{group}/{v}" for v in versions)
    return ApiResponse.json({"paths": sorted(paths)})


def api_versions(server: ApiServer, req: ApiRequest) -> ApiResponse:
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


def openapi(server: ApiServer, req: ApiRequest, rest: list[str]) -> ApiResponse:
    raise ApiError.resource_not_found(req.path)


def _hash(kind: KindInfo) -> str:
    digest = hashlib.sha256(f"{kind.group}/{kind.version}/{kind.kind}".encode()).digest()
    import base64

    return base64.b64encode(digest[:8]).decode()
