"""Server-side printing: meta.k8s.io Table and PartialObjectMetadata responses.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
columns the server chose; each kind's strategy names its columns.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from kubeling.api.kinds._common import AGE
from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest
from kubeling.api.strategy import TableColumn

__all__ = [
    "partial_metadata",
    "partial_metadata_list",
    "scale_table",
    "table",
    "transform_events",
    "wants_metadata",
    "wants_table",
]

Obj = dict[str, Any]


def _media_types(req: ApiRequest) -> list[dict[str, str]]:
    out = []
    for part in (req.header("accept") or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        params = {"type": fields[0]}
        for field in fields[1:]:
            key, _, value = field.partition("=")
            params[key.strip()] = value.strip()
        out.append(params)
    return out


def _first_as(req: ApiRequest) -> dict[str, str] | None:
    for params in _media_types(req):
        if params["type"] in ("application/json", "*/*") and "as" in params:
            return params
        if params["type"] in ("application/json", "*/*"):
            return None
    return None


def wants_table(req: ApiRequest) -> bool:
    params = _first_as(req)
    return params is not None and params.get("as") == "Table"


def wants_metadata(req: ApiRequest) -> bool:
    params = _first_as(req)
    return params is not None and params.get("as", "").startswith("PartialObjectMetadata")


NAME = TableColumn("Name", lambda o: (o.get("metadata") or {}).get("name", ""), format="name",
                   description="Name must be unique within a namespace.")


def columns_for(kind: KindInfo) -> list[TableColumn]:
    """NAME, the strategy's columns (AGE when it has none); a strategy that places a Name
    column itself (events: last, wide only) gets no other."""
    extra = kind.strategy.table_columns()
    if any(c.name == "Name" for c in extra):
        return list(extra)
    return [NAME, *(extra or [AGE])]


def table(kind: KindInfo, objects: list[Obj], req: ApiRequest, *, list_rv: str | None,
          cont: str = "") -> Obj:
    params = _first_as(req) or {}
    version = params.get("v", "v1")
    include = req.query.get("includeObject", "Metadata") or "Metadata"
    columns = columns_for(kind)
    rows = []
    for obj in objects:
        cells = []
        for column in columns:
            try:
                value = column.value(obj)
            except Exception:  # a malformed object must not break the listing
                value = "<error>"
            cells.append(value)
        row: Obj = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include == "Metadata":
            row["object"] = partial_metadata(obj, version)
        rows.append(row)
    meta: Obj = {}
    if list_rv is not None:
        meta["resourceVersion"] = list_rv
    if cont:
        meta["continue"] = cont
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": meta,
        "columnDefinitions": [
            {"name": c.name, "type": c.type, "format": c.format,
             "description": c.description, "priority": c.priority} for c in columns],
        "rows": rows,
    }


def scale_table(scale: Obj, req: ApiRequest) -> Obj:
    """The Table of a Scale (``kubectl get --subresource=scale``): NAME, DESIRED,
    AVAILABLE."""
    version = (_first_as(req) or {}).get("v", "v1")
    include = req.query.get("includeObject", "Metadata") or "Metadata"
    row: Obj = {"cells": [(scale.get("metadata") or {}).get("name", ""),
                          (scale.get("spec") or {}).get("replicas", 0),
                          (scale.get("status") or {}).get("replicas", 0)]}
    if include == "Object":
        row["object"] = scale
    elif include == "Metadata":
        row["object"] = partial_metadata(scale, version)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name of the scaled object."},
            {"name": "Desired", "type": "integer", "format": "", "priority": 0,
             "description": "Number of desired replicas."},
            {"name": "Available", "type": "integer", "format": "", "priority": 0,
             "description": "Number of actual replicas."},
        ],
        "rows": [row],
    }


def partial_metadata(obj: Obj, version: str = "v1") -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata") or {}}


def partial_metadata_list(objects: list[Obj], meta: Obj, version: str = "v1") -> Obj:
    return {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": meta, "items": [partial_metadata(o, version) for o in objects]}


_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})


def transform_events(kind: KindInfo, stream: AsyncIterator[bytes], req: ApiRequest
                     ) -> AsyncIterator[bytes]:
    """A watch stream with each event's object as the client asked for it: a one-row Table
    (column definitions only in the first, as Kubernetes sends them) or a
    PartialObjectMetadata.  Other streams are returned as they are."""
    as_table = wants_table(req)
    if not as_table and not wants_metadata(req):
        return stream
    return _transformed(kind, stream, req, as_table)


async def _transformed(kind: KindInfo, stream: AsyncIterator[bytes], req: ApiRequest,
                       as_table: bool) -> AsyncIterator[bytes]:
    version = (_first_as(req) or {}).get("v", "v1")
    first = True
    try:
        async for chunk in stream:
            out = []
            for line in chunk.split(b"\n"):
                if not line.strip():
                    continue
                event = orjson.loads(line)
                obj = event.get("object")
                if event.get("type") in _OBJECT_EVENTS and isinstance(obj, dict):
                    if as_table:
                        rv = (obj.get("metadata") or {}).get("resourceVersion")
                        converted = table(kind, [obj], req, list_rv=rv)
                        if not first:
                            converted["columnDefinitions"] = []
                        first = False
                    else:
                        converted = partial_metadata(obj, version)
                    event["object"] = converted
                out.append(orjson.dumps(event) + b"\n")
            if out:
                yield b"".join(out)
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
