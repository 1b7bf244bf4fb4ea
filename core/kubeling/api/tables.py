"""Server-side printing: meta.k8s.io Table and PartialObjectMetadata responses.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
columns the server chose; each kind's strategy names its columns.
"""

from __future__ import annotations

import datetime
from typing import Any

from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest
from kubeling.api.strategy import TableColumn

__all__ = ["format_age", "partial_metadata", "table", "wants_metadata", "wants_table"]

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


def format_age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """``kubectl``'s short human duration since ``timestamp`` (``5s``, ``3m12s``, ``2d3h``)."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC)
    except ValueError:
        return "<invalid>"
    now = now or datetime.datetime.now(datetime.UTC)
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "<invalid>"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


NAME = TableColumn("Name", lambda o: (o.get("metadata") or {}).get("name", ""), format="name",
                   description="Name must be unique within a namespace.")
AGE = TableColumn("Age", lambda o: format_age((o.get("metadata") or {}).get("creationTimestamp")),
                  description="Time since the object was created.")


def columns_for(kind: KindInfo) -> list[TableColumn]:
    extra = kind.strategy.table_columns()
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


def partial_metadata(obj: Obj, version: str = "v1") -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata") or {}}


def partial_metadata_list(objects: list[Obj], meta: Obj) -> Obj:
    return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": meta, "items": [partial_metadata(o) for o in objects]}
