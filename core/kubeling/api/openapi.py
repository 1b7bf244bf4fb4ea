"""OpenAPI documents generated from the attrs models and the kind registry.

Nothing here is hand-written per kind: every schema comes from a model's field table
(:func:`kubeling.api.schema.schema_for`) and every path from a
:class:`~kubeling.api.registry.KindInfo`, so a kind a plugin registers is described exactly
like a built-in one.

Two flavours are served, with the shapes Kubernetes uses:

* ``/openapi/v3`` -- an index ``{"paths": {"api/v1": {"serverRelativeURL":
  "/openapi/v3/api/v1?hash=..."}}}`` and one OpenAPI 3.0 document per group-version
  (``components.schemas``; references wrapped in ``allOf`` so that a field keeps its own
  description);
* ``/openapi/v2`` -- one Swagger 2.0 document for everything (``definitions``).

What clients read from them:

* ``x-kubernetes-group-version-kind`` on every kind's schema and on every operation
  (``kubectl explain`` finds a kind's schema through it; kubectl's field-validation
  detection looks for a PATCH operation of the kind that takes ``fieldValidation``);
* ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key`` and
  ``x-kubernetes-list-type`` / ``x-kubernetes-list-map-keys`` / ``x-kubernetes-map-type``
  on fields (strategic merge patch and server-side apply);
* ``description`` of models and fields (``kubectl explain``).

Documents are built once per server (the served kinds are fixed at start-up) and served
with a content hash as ETag.
"""

from __future__ import annotations

import hashlib
import re
import typing
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from kubeling.api.apply import ATOMIC_STRUCTS
from kubeling.api.registry import KindInfo, KindRegistry
from kubeling.api.schema import ANY, LIST, MAP, OBJECT, SCALAR, FieldInfo, Schema, schema_for

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = ["OpenAPIDocuments", "documents_for", "gv_path", "schema_name"]

Obj = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = f"{META}.Time"
PATCH = f"{META}.Patch"
STATUS = f"{META}.Status"
WATCH_EVENT = f"{META}.WatchEvent"
DELETE_OPTIONS = f"{META}.DeleteOptions"
LIST_META = f"{META}.ListMeta"

PATCH_CONTENT_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)

# Schemas of wire types that have no model of their own (scalars with a name).
_NAMED_SCALARS: dict[str, Obj] = {
    INT_OR_STRING: {
        "description": "An integer or a string: a port number or name, a count or a "
                       "percentage such as '25%'.",
        "type": "string",
        "format": "int-or-string",
    },
    QUANTITY: {
        "description": "A fixed-point amount of a resource: '100m', '1.5Gi', '2'.",
        "type": "string",
    },
    TIME: {
        "description": "An RFC 3339 timestamp in UTC with second precision.",
        "type": "string",
        "format": "date-time",
    },
    PATCH: {
        "description": "The body of a PATCH request; its shape depends on the patch type "
                       "(the request's Content-Type).",
        "type": "object",
    },
}

_WIRE_TYPE_DOC = re.compile(r"^Wire type ``[^`]*``\.?$")


def schema_name(model: type) -> str:
    """The definition name of a model: its ``openapi_name``, else one derived from its
    module (``kubeling.api.objects.core_v1.Foo`` -> ``io.kubeling.core_v1.Foo``)."""
    name = getattr(model, "openapi_name", None)
    if isinstance(name, str) and name:
        return name
    module = model.__module__.rsplit(".", 1)[-1]
    return f"io.kubeling.{module}.{model.__name__}"


def _model_doc(model: type) -> str:
    doc = (model.__doc__ or "").strip()
    if not doc or _WIRE_TYPE_DOC.match(doc.splitlines()[0]):
        return ""
    return " ".join(line.strip() for line in doc.split("\n\n")[0].splitlines())


def gv_path(group: str, version: str) -> str:
    """``api/v1`` / ``apis/apps/v1``: a group-version's key in the v3 index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text)
                   if part)


def _group_camel(group: str) -> str:
    """``""`` -> ``Core``, ``apps`` -> ``Apps``, ``coordination.k8s.io`` -> ``Coordination``,
    ``example.com`` -> ``ExampleCom`` (Kubernetes' operation id convention)."""
    if not group:
        return "Core"
    if group.endswith(".k8s.io"):
        group = group[: -len(".k8s.io")]
    return _camel(group)


def _group_tag(group: str, version: str) -> str:
    base = group[: -len(".k8s.io")] if group.endswith(".k8s.io") else group
    return f"{(base or 'core').replace('.', '_')}_{version}"


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------

# name -> (type, description); query parameters unless noted.
_PARAMS: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "Ask for BOOKMARK events in a watch; the server may "
                                       "send them to report progress."),
    "continue": ("string", "Token from a previous page of a paginated list, to get the next "
                           "page."),
    "dryRun": ("string", "'All' runs every stage of the request except persisting it."),
    "fieldManager": ("string", "Name of the actor making the change, recorded in "
                               "managedFields. Required for apply patches."),
    "fieldSelector": ("string", "Restrict the result to objects whose fields match, e.g. "
                                "'metadata.name=web,status.phase!=Running'."),
    "fieldValidation": ("string", "What to do with unknown or duplicate fields in the body: "
                                  "'Ignore' drops them, 'Warn' drops them and sends a Warning "
                                  "header per field, 'Strict' fails the request. "
                                  "Default: Warn."),
    "force": ("boolean", "For apply patches: take over fields owned by other managers "
                         "instead of failing with a conflict."),
    "gracePeriodSeconds": ("integer", "Seconds the object may take to terminate; 0 deletes "
                                      "at once."),
    "labelSelector": ("string", "Restrict the result to objects whose labels match, e.g. "
                                "'app=web,tier!=cache'."),
    "limit": ("integer", "Largest number of items to return; more are available through "
                         "the continue token."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy. True orphans the "
                                    "dependents."),
    "pretty": ("string", "Ask for indented output."),
    "propagationPolicy": ("string", "What happens to dependents: 'Orphan', 'Background' or "
                                    "'Foreground'."),
    "resourceVersion": ("string", "Which version of the data a read may be served from; "
                                  "for a watch, where to start."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list: 'Exact' or "
                                       "'NotOlderThan'."),
    "sendInitialEvents": ("boolean", "Start a watch with synthetic ADDED events for the "
                                     "current state."),
    "timeoutSeconds": ("integer", "Upper bound on the duration of the list or watch call."),
    "watch": ("boolean", "Return a stream of change events instead of a list."),
}
_PATH_PARAMS = {
    "name": "Name of the object.",
    "namespace": "Namespace of the objects (the object, for a single one).",
}
_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
                "timeoutSeconds", "watch")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")


class _Flavour:
    """What differs between Swagger 2.0 and OpenAPI 3.0."""

    v3: bool

    def __init__(self, v3: bool) -> None:
        self.v3 = v3

    def ref(self, name: str) -> Obj:
        prefix = "#/components/schemas/" if self.v3 else "#/definitions/"
        return {"$ref": prefix + name}

    def field_ref(self, name: str, description: str) -> Obj:
        """A field whose value is a named schema, keeping the field's description."""
        if not description:
            return self.ref(name)
        if self.v3:
            return {"description": description, "allOf": [self.ref(name)]}
        return {"description": description, **self.ref(name)}

    def param(self, name: str, where: str = "query", *, required: bool = False) -> Obj:
        if where == "path":
            typ, doc = "string", _PATH_PARAMS[name]
        else:
            typ, doc = _PARAMS[name]
        out: Obj = {"name": name, "in": where, "description": doc}
        if required:
            out["required"] = True
        if self.v3:
            out["schema"] = {"type": typ, "uniqueItems": True}
        else:
            out["type"] = typ
            out["uniqueItems"] = True
        return out


# --------------------------------------------------------------------------------------
# Schemas of models
# --------------------------------------------------------------------------------------

class _Schemas:
    """Collects the definitions reachable from some models."""

    def __init__(self, flavour: _Flavour) -> None:
        self.flavour = flavour
        self.defs: dict[str, Obj] = {}
        self.gvks: dict[str, list[Obj]] = {}

    def add_gvk(self, name: str, group: str, version: str, kind: str) -> None:
        entry = {"group": group, "kind": kind, "version": version}
        found = self.gvks.setdefault(name, [])
        if entry not in found:
            found.append(entry)
        if name in self.defs:
            self.defs[name]["x-kubernetes-group-version-kind"] = found

    def model(self, model: type) -> str:
        """Add a model (and everything it refers to); returns its definition name."""
        name = schema_name(model)
        if name in self.defs:
            return name
        out: Obj = {}
        self.defs[name] = out  # registered first: models may be recursive
        doc = _model_doc(model)
        if doc:
            out["description"] = doc
        out["type"] = "object"
        properties: Obj = {}
        required: list[str] = []
        for wire, info in sorted(schema_for(model).fields.items()):
            properties[wire] = self.field(info)
            if info.required:
                required.append(wire)
        if properties:
            out["properties"] = properties
        if required:
            out["required"] = required
        if name in ATOMIC_STRUCTS:
            out["x-kubernetes-map-type"] = "atomic"
        if name in self.gvks:
            out["x-kubernetes-group-version-kind"] = self.gvks[name]
        return name

    def named(self, name: str) -> str:
        """Add one of the named scalar schemas (Time, Quantity, IntOrString, Patch)."""
        if name not in self.defs:
            self.defs[name] = dict(_NAMED_SCALARS[name])
        return name

    def field(self, info: FieldInfo) -> Obj:
        out = self.value(info.schema, info.doc)
        if info.kind == MAP and info.map_type:
            out["x-kubernetes-map-type"] = info.map_type
        elif info.kind == OBJECT and info.map_type:
            # the $ref case: extensions must sit beside it, so unwrap into allOf form
            out = self._with_extensions(out, {"x-kubernetes-map-type": info.map_type})
        if info.kind == LIST:
            if info.list_type:
                out["x-kubernetes-list-type"] = info.list_type
            if info.list_map_keys:
                out["x-kubernetes-list-map-keys"] = list(info.list_map_keys)
        if info.patch_merge_key:
            out["x-kubernetes-patch-merge-key"] = info.patch_merge_key
        if info.patch_strategy:
            out["x-kubernetes-patch-strategy"] = info.patch_strategy
        return out

    def _with_extensions(self, schema: Obj, extensions: Obj) -> Obj:
        if "$ref" in schema and self.flavour.v3:
            return {"allOf": [schema], **extensions}
        return {**schema, **extensions}

    def value(self, node: Schema, description: str = "") -> Obj:
        """The schema of a value at ``node``, with ``description`` when it has one."""
        flavour = self.flavour
        kind = node.kind
        if kind == OBJECT:
            return flavour.field_ref(self.model(node.model), description)  # type: ignore[arg-type]
        out: Obj
        if kind == LIST:
            out = {"type": "array", "items": self.value(node.item())}
        elif kind == MAP:
            out = {"type": "object", "additionalProperties": self.value(node.item())}
        elif kind == SCALAR:
            named = _named_scalar(node)
            if named is not None:
                return flavour.field_ref(self.named(named), description)
            out = _scalar(node)
        elif kind == ANY:
            out = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        else:  # unknown: say nothing about it
            out = {}
        if description:
            out = {"description": description, **out}
        return out


def _named_scalar(node: Schema) -> str | None:
    fmt = node.format
    if fmt == "int-or-string" or node.py_type == int | str:
        return INT_OR_STRING
    if fmt == "quantity":
        return QUANTITY
    if fmt == "date-time":
        return TIME
    return None


def _scalar(node: Schema) -> Obj:
    tp = node.py_type
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer", "format": node.format if node.format in ("int32", "int64")
                else "int64"}
    if tp is float:
        return {"type": "number", "format": "double"}
    if node.format == "byte":
        return {"type": "string", "format": "byte"}
    return {"type": "string"}


# --------------------------------------------------------------------------------------
# Paths of kinds
# --------------------------------------------------------------------------------------

_SUBRESOURCE_MODELS: dict[str, tuple[str, str, str, str, str]] = {
    # subresource -> (module, model, group, version, kind)
    "scale": ("autoscaling_v1", "Scale", "autoscaling", "v1", "Scale"),
    "binding": ("core_v1", "Binding", "", "v1", "Binding"),
    "eviction": ("policy_v1", "Eviction", "policy", "v1", "Eviction"),
}
_SUBRESOURCE_VERBS = {
    "status": ("get", "put", "patch"),
    "scale": ("get", "put", "patch"),
    "finalize": ("put",),
    "binding": ("post",),
    "eviction": ("post",),
}


def _model_of(module: str, name: str) -> type | None:
    import importlib

    try:
        return typing.cast(type, getattr(importlib.import_module(
            f"kubeling.api.objects.{module}"), name))
    except (ImportError, AttributeError):
        return None


class _PathBuilder:
    """Adds the paths and operations of kinds to a document."""

    def __init__(self, flavour: _Flavour, schemas: _Schemas) -> None:
        self.flavour = flavour
        self.schemas = schemas
        self.paths: dict[str, Obj] = {}

    # -- schemas of kinds -------------------------------------------------------------

    def kind_schema(self, kind: KindInfo) -> str:
        if kind.model is not None:
            name = schema_name(kind.model)
            self.schemas.add_gvk(name, kind.group, kind.version, kind.kind)
            self.schemas.model(kind.model)
            return name
        base = kind.group[: -len(".k8s.io")] if kind.group.endswith(".k8s.io") else kind.group
        name = f"io.kubeling.{(base or 'core').replace('.', '_')}.{kind.version}.{kind.kind}"
        if name not in self.schemas.defs:
            self.schemas.defs[name] = {
                "description": f"{kind.kind} (no schema published: any fields are kept).",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        self.schemas.add_gvk(name, kind.group, kind.version, kind.kind)
        return name

    def list_schema(self, kind: KindInfo, item: str) -> str:
        name = f"{item}List"
        if name not in self.schemas.defs:
            from kubeling.api.objects.meta import ListMeta

            self.schemas.defs[name] = {
                "description": f"A list of {kind.kind} objects.",
                "type": "object",
                "properties": {
                    "apiVersion": {"description": "Group and version of this list's schema.",
                                   "type": "string"},
                    "items": {"description": f"The {kind.plural}.", "type": "array",
                              "items": self.flavour.ref(item)},
                    "kind": {"description": "Name of this object's type.", "type": "string"},
                    "metadata": self.flavour.field_ref(
                        self.schemas.model(ListMeta),
                        "Resource version and continue token of the list."),
                },
                "required": ["items"],
            }
        self.schemas.add_gvk(name, kind.group, kind.version, f"{kind.kind}List")
        return name

    def meta_schemas(self) -> None:
        from kubeling.api.objects import meta

        self.schemas.add_gvk(DELETE_OPTIONS, "", "v1", "DeleteOptions")
        self.schemas.add_gvk(STATUS, "", "v1", "Status")
        self.schemas.add_gvk(WATCH_EVENT, "", "v1", "WatchEvent")
        for model in (meta.DeleteOptions, meta.Status, meta.WatchEvent):
            self.schemas.model(model)
        self.schemas.named(PATCH)

    # -- operations ---------------------------------------------------------------------

    def _op(self, kind: KindInfo, action: str, verb: str, what: str, gvk: tuple[str, str, str],
            params: Iterable[str], *, body: str | None = None, response: str | None = None,
            codes: Iterable[str] = ("200",), namespaced: bool, subresource: str = "",
            all_namespaces: bool = False, description: str) -> Obj:
        flavour = self.flavour
        op_name = (verb + _group_camel(kind.group) + _camel(kind.version)
                   + ("Namespaced" if namespaced and not all_namespaces else "")
                   + what + _camel(subresource)
                   + ("ForAllNamespaces" if all_namespaces else ""))
        out: Obj = {
            "tags": [_group_tag(kind.group, kind.version)],
            "description": description,
            "operationId": op_name,
        }
        parameters = [flavour.param(p) for p in params]
        if body is not None:
            if flavour.v3:
                types = PATCH_CONTENT_TYPES if action == "patch" else ("*/*",)
                out["requestBody"] = {
                    "content": {t: {"schema": flavour.ref(body)} for t in types},
                    "required": action != "delete",
                }
            else:
                parameters.append({"name": "body", "in": "body",
                                   "required": action != "delete",
                                   "schema": flavour.ref(body)})
        if parameters:
            out["parameters"] = parameters
        responses: Obj = {}
        for code in codes:
            text = {"200": "OK", "201": "Created", "202": "Accepted"}[code]
            entry: Obj = {"description": text}
            if response is not None:
                if flavour.v3:
                    entry["content"] = {"application/json": {"schema": flavour.ref(response)},
                                        "application/yaml": {"schema": flavour.ref(response)}}
                else:
                    entry["schema"] = flavour.ref(response)
            responses[code] = entry
        responses["401"] = {"description": "Unauthorized"}
        out["responses"] = responses
        if not flavour.v3:
            out["consumes"] = list(PATCH_CONTENT_TYPES) if action == "patch" else ["*/*"]
            out["produces"] = ["application/json", "application/yaml"]
            out["schemes"] = ["https"]
            if action in ("watch", "watchlist", "list"):
                out["produces"] += ["application/json;stream=watch"]
        out["x-kubernetes-action"] = action
        out["x-kubernetes-group-version-kind"] = {"group": gvk[0], "kind": gvk[2],
                                                  "version": gvk[1]}
        return out

    def _path_item(self, path: str, *, name: bool, namespace: bool) -> Obj:
        item = self.paths.setdefault(path, {})
        params = []
        if name:
            params.append(self.flavour.param("name", "path", required=True))
        if namespace:
            params.append(self.flavour.param("namespace", "path", required=True))
        params.append(self.flavour.param("pretty"))
        item["parameters"] = params
        return item

    def add_kind(self, kind: KindInfo) -> None:
        """Every path and operation of one kind, its subresources included."""
        item_schema = self.kind_schema(kind)
        list_schema = self.list_schema(kind, item_schema)
        gvk = (kind.group, kind.version, kind.kind)
        prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
        ns = kind.namespaced
        scope = "/namespaces/{namespace}" if ns else ""
        collection = f"{prefix}{scope}/{kind.plural}"
        single = f"{collection}/{{name}}"
        verbs = set(kind.verbs)
        k = kind.kind
        op = self._op

        coll: Obj = {}
        if "list" in verbs:
            coll["get"] = op(kind, "list", "list", k, gvk, _LIST_PARAMS, response=list_schema,
                             namespaced=ns, description=f"list or watch objects of kind {k}")
        if "create" in verbs:
            coll["post"] = op(kind, "post", "create", k, gvk, _WRITE_PARAMS, body=item_schema,
                              response=item_schema, codes=("200", "201", "202"),
                              namespaced=ns, description=f"create a {k}")
        if "deletecollection" in verbs:
            coll["delete"] = op(kind, "deletecollection", "deleteCollection", k, gvk,
                                (*_LIST_PARAMS, *_DELETE_PARAMS), body=DELETE_OPTIONS,
                                response=STATUS, namespaced=ns,
                                description=f"delete collection of {k}")
        if coll:
            self._path_item(collection, name=False, namespace=ns).update(coll)

        one: Obj = {}
        if "get" in verbs:
            one["get"] = op(kind, "get", "read", k, gvk, (), response=item_schema,
                            namespaced=ns, description=f"read the specified {k}")
        if "update" in verbs:
            one["put"] = op(kind, "put", "replace", k, gvk, _WRITE_PARAMS, body=item_schema,
                            response=item_schema, codes=("200", "201"), namespaced=ns,
                            description=f"replace the specified {k}")
        if "patch" in verbs:
            one["patch"] = op(kind, "patch", "patch", k, gvk, _PATCH_PARAMS, body=PATCH,
                              response=item_schema, codes=("200", "201"), namespaced=ns,
                              description=f"partially update the specified {k}")
        if "delete" in verbs:
            one["delete"] = op(kind, "delete", "delete", k, gvk, _DELETE_PARAMS,
                               body=DELETE_OPTIONS, response=STATUS, codes=("200", "202"),
                               namespaced=ns, description=f"delete a {k}")
        if one:
            self._path_item(single, name=True, namespace=ns).update(one)

        if "watch" in verbs:
            watch_params = _LIST_PARAMS
            self._path_item(f"{prefix}/watch{scope}/{kind.plural}", name=False,
                            namespace=ns)["get"] = op(
                kind, "watchlist", "watch", f"{k}List", gvk, watch_params,
                response=WATCH_EVENT, namespaced=ns,
                description=f"watch individual changes to a list of {k} (deprecated: use "
                            f"the 'watch' parameter with a list operation instead)")
            self._path_item(f"{prefix}/watch{scope}/{kind.plural}/{{name}}", name=True,
                            namespace=ns)["get"] = op(
                kind, "watch", "watch", k, gvk, watch_params, response=WATCH_EVENT,
                namespaced=ns,
                description=f"watch changes to an object of kind {k} (deprecated: use the "
                            f"'watch' parameter with a list operation instead, filtered "
                            f"to a single item with the 'fieldSelector' parameter)")
        if ns and "list" in verbs:
            self._path_item(f"{prefix}/{kind.plural}", name=False, namespace=False)["get"] = op(
                kind, "list", "list", k, gvk, _LIST_PARAMS, response=list_schema,
                namespaced=True, all_namespaces=True,
                description=f"list or watch objects of kind {k}")
            if "watch" in verbs:
                self._path_item(f"{prefix}/watch/{kind.plural}", name=False,
                                namespace=False)["get"] = op(
                    kind, "watchlist", "watch", f"{k}List", gvk, _LIST_PARAMS,
                    response=WATCH_EVENT, namespaced=True, all_namespaces=True,
                    description=f"watch individual changes to a list of {k} (deprecated)")

        for sub in kind.subresources:
            self._add_subresource(kind, sub, single, item_schema, gvk)

    def _add_subresource(self, kind: KindInfo, sub: str, single: str, item_schema: str,
                         gvk: tuple[str, str, str]) -> None:
        verbs = _SUBRESOURCE_VERBS.get(sub)
        if verbs is None:
            return  # log, exec, ...: connect operations, not described here
        schema, sub_gvk = item_schema, gvk
        if sub in _SUBRESOURCE_MODELS:
            module, model_name, group, version, sub_kind = _SUBRESOURCE_MODELS[sub]
            model = _model_of(module, model_name)
            if model is None:
                return
            schema = schema_name(model)
            self.schemas.add_gvk(schema, group, version, sub_kind)
            self.schemas.model(model)
            sub_gvk = (group, version, sub_kind)
        k = kind.kind
        ns = kind.namespaced
        entry: Obj = {}
        op = self._op
        for method in verbs:
            if method == "get":
                entry["get"] = op(kind, "get", "read", k, sub_gvk, (), response=schema,
                                  namespaced=ns, subresource=sub,
                                  description=f"read {sub} of the specified {k}")
            elif method == "put":
                entry["put"] = op(kind, "put", "replace", k, sub_gvk, _WRITE_PARAMS,
                                  body=schema, response=schema, codes=("200", "201"),
                                  namespaced=ns, subresource=sub,
                                  description=f"replace {sub} of the specified {k}")
            elif method == "patch":
                entry["patch"] = op(kind, "patch", "patch", k, sub_gvk, _PATCH_PARAMS,
                                    body=PATCH, response=schema, codes=("200", "201"),
                                    namespaced=ns, subresource=sub,
                                    description=f"partially update {sub} of the specified {k}")
            elif method == "post":
                entry["post"] = op(kind, "post", "create", k, sub_gvk, _WRITE_PARAMS,
                                   body=schema, response=schema,
                                   codes=("200", "201", "202"), namespaced=ns,
                                   subresource=sub, description=f"create {sub} of a {k}")
        self._path_item(f"{single}/{sub}", name=True, namespace=ns).update(entry)


# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------

def _sorted_defs(defs: dict[str, Obj]) -> dict[str, Obj]:
    return {name: defs[name] for name in sorted(defs)}


def build_v3(kinds: Iterable[KindInfo], kube_version: str) -> Obj:
    """The OpenAPI 3.0 document of some kinds (normally one group-version's)."""
    flavour = _Flavour(v3=True)
    schemas = _Schemas(flavour)
    builder = _PathBuilder(flavour, schemas)
    builder.meta_schemas()
    for kind in kinds:
        builder.add_kind(kind)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": kube_version},
        "paths": {path: builder.paths[path] for path in sorted(builder.paths)},
        "components": {"schemas": _sorted_defs(schemas.defs)},
    }


def build_v2(kinds: Iterable[KindInfo], kube_version: str) -> Obj:
    """The Swagger 2.0 document of all kinds."""
    flavour = _Flavour(v3=False)
    schemas = _Schemas(flavour)
    builder = _PathBuilder(flavour, schemas)
    builder.meta_schemas()
    for kind in kinds:
        builder.add_kind(kind)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": kube_version},
        "paths": {path: builder.paths[path] for path in sorted(builder.paths)},
        "definitions": _sorted_defs(schemas.defs),
        "securityDefinitions": {"BearerToken": {
            "description": "Bearer token authentication", "type": "apiKey",
            "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }


class OpenAPIDocuments:
    """The encoded documents of one registry, built lazily and kept."""

    def __init__(self, registry: KindRegistry, kube_version: str) -> None:
        self.registry = registry
        self.kube_version = kube_version
        self._v3: dict[str, tuple[bytes, str]] = {}
        self._v2: tuple[bytes, str] | None = None

    def group_versions(self) -> list[tuple[str, str]]:
        return [(g, v) for g, versions in self.registry.groups().items() for v in versions]

    def v3(self, path: str) -> tuple[bytes, str] | None:
        """(JSON, hash) of the document at ``api/v1`` / ``apis/<group>/<version>``."""
        cached = self._v3.get(path)
        if cached is not None:
            return cached
        for group, version in self.group_versions():
            if gv_path(group, version) == path:
                doc = build_v3(self.registry.in_group_version(group, version),
                               self.kube_version)
                body = orjson.dumps(doc)
                cached = (body, _digest(body))
                self._v3[path] = cached
                return cached
        return None

    def v3_index(self) -> Obj:
        paths: Obj = {}
        for group, version in self.group_versions():
            path = gv_path(group, version)
            found = self.v3(path)
            assert found is not None
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={found[1]}"}
        return {"paths": paths}

    def v2(self) -> tuple[bytes, str]:
        if self._v2 is None:
            body = orjson.dumps(build_v2(self.registry.kinds(), self.kube_version))
            self._v2 = (body, _digest(body))
        return self._v2


def _digest(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


_DOCUMENTS: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], OpenAPIDocuments]] = \
    weakref.WeakKeyDictionary()


def documents_for(server: ApiServer) -> OpenAPIDocuments:
    """The (cached) documents of a server's kinds; rebuilt if the served kinds change."""
    signature = tuple((k.group, k.version, k.plural, id(k)) for k in server.registry)
    cached = _DOCUMENTS.get(server)
    if cached is None or cached[0] != signature:
        from kubeling.api.server import KUBE_VERSION

        cached = (signature, OpenAPIDocuments(server.registry, KUBE_VERSION))
        _DOCUMENTS[server] = cached
    return cached[1]
