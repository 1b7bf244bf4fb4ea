"""Server-side apply and ``metadata.managedFields``.

Kubernetes records, for every object, which *field manager* owns which fields
(``metadata.managedFields``, one entry per manager and operation, the fields as a
``FieldsV1`` tree).  Two kinds of writes change ownership:

* **Update** operations (create, update, patch of any type but apply, scale): the manager
  becomes an owner of every field it added or changed, and those fields are taken from every
  other manager without conflict (:func:`track_update`).
* **Apply** (``PATCH`` with ``application/apply-patch+yaml``): the manager's set becomes
  exactly the fields of its applied configuration; the configuration is merged into the live
  object; fields the manager applied before but no longer does are removed unless someone
  else owns them; and changing a field another manager owns is a 409 conflict unless
  ``force=true``, which takes the field over (:func:`apply_configuration`).

Merging follows the schema's list and map types, as Kubernetes' structured-merge-diff does:
``x-kubernetes-list-type: map`` lists are merged item by item on their key fields, ``set``
lists by value, ``atomic`` lists (and lists without a type) and atomic structs are replaced
whole, and structs and maps are merged field by field.

Field sets are handled as Python sets of paths, a path being a tuple of FieldsV1 path
elements: ``f:<field>``, ``k:<json of the key fields>``, ``v:<json of a value>``,
``i:<index>``.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from kubeling.api.auth import UserInfo
from kubeling.api.duplicates import decode_yaml_noting_duplicates
from kubeling.api.encoding import decode_body
from kubeling.api.errors import ApiError, Cause
from kubeling.api.registry import KindInfo
from kubeling.api.request import ApiRequest, ApiResponse
from kubeling.api.schema import LIST, MAP, OBJECT, UNKNOWN, UNKNOWN_SCHEMA, Schema, schema_for

__all__ = [
    "APPLY_PATCH",
    "ATOMIC_STRUCTS",
    "FieldManager",
    "apply_configuration",
    "apply_request",
    "decode_fields",
    "encode_fields",
    "field_set",
    "manager_name",
    "path_string",
    "reject_force",
    "track_update",
]

if TYPE_CHECKING:
    from kubeling.api.handlers import Handlers, Target

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Path = tuple[str, ...]

APPLY_PATCH = "application/apply-patch+yaml"
MAX_MANAGER_LENGTH = 128

ATOMIC_STRUCTS = frozenset({
    # Wire types Kubernetes marks x-kubernetes-map-type: atomic at the type level (the
    # models carry map types of fields only): replaced whole by apply, owned as one field.
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.FileKeySelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
})

_KEY_DEFAULTS = {"protocol": "TCP"}
"""Defaults of list-map key fields that clients commonly leave out (a port's protocol), so
that an applied ``{port: 80}`` is the same item as a live ``{port: 80, protocol: TCP}``."""

_SYSTEM_META = ("name", "namespace", "uid", "resourceVersion", "generation",
                "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp",
                "deletionGracePeriodSeconds")
"""metadata fields nobody owns (the server sets them)."""


# --------------------------------------------------------------------------------------
# Schema questions
# --------------------------------------------------------------------------------------

def _model_name(node: Schema) -> str:
    model = node.model
    return getattr(model, "openapi_name", "") if model is not None else ""


def _atomic(node: Schema) -> bool:
    """Whether a struct or map node is replaced and owned as a whole."""
    if node.info is not None and node.info.map_type == "atomic":
        return True
    return node.kind == OBJECT and _model_name(node) in ATOMIC_STRUCTS


def _granular(node: Schema, value: Any) -> bool:
    """A dict merged and owned key by key (structs, maps, and dicts no model describes)."""
    if not isinstance(value, dict):
        return False
    if node.kind in (OBJECT, MAP):
        return not _atomic(node)
    return node.kind == UNKNOWN


def _child(node: Schema, key: str) -> Schema:
    if node.kind in (OBJECT, MAP):
        return node.field(key)
    return UNKNOWN_SCHEMA


def _list_keys(node: Schema) -> tuple[str, ...]:
    if node.kind == LIST and node.list_type == "map":
        return node.list_map_keys
    return ()


def _key_element(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict):
        return None
    values = {}
    for key in sorted(keys):
        value = item.get(key)
        if value is None:
            value = _KEY_DEFAULTS.get(key)
        if value is None:
            continue
        values[key] = value
    if not values:
        return None
    return "k:" + orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def _value_element(value: Any) -> str:
    return "v:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --------------------------------------------------------------------------------------
# Field sets
# --------------------------------------------------------------------------------------

def field_set(obj: Any, node: Schema, path: Path = (), *, maps: bool = False) -> set[Path]:
    """Every field ``obj`` sets, as paths: leaves, atomic values, list items (which are
    members themselves), and empty structs or maps.

    :param maps: count maps (labels, annotations, ...) as members themselves too, as
        Kubernetes does for fields an Update adds.
    """
    out: set[Path] = set()
    _collect(obj, node, path, out, maps)
    return out


def _collect(value: Any, node: Schema, path: Path, out: set[Path], maps: bool = False
             ) -> None:
    if _granular(node, value):
        if not value or (maps and node.kind == MAP):
            if path:
                out.add(path)
            if not value:
                return
        for key, child in value.items():
            _collect(child, _child(node, key), (*path, "f:" + key), out, maps)
        return
    if isinstance(value, list) and node.kind == LIST:
        keys = _list_keys(node)
        if keys:
            item_node = node.item()
            for item in value:
                element = _key_element(item, keys)
                if element is None:  # an item without its keys: own the list whole
                    out.add(path)
                    return
            for item in value:
                item_path = (*path, _key_element(item, keys) or "")
                out.add(item_path)
                _collect_item(item, item_node, item_path, out, maps)
            return
        if node.list_type == "set":
            out.update((*path, _value_element(item)) for item in value)
            return
    if path:
        out.add(path)


def _collect_item(item: Obj, node: Schema, path: Path, out: set[Path], maps: bool = False
                  ) -> None:
    if _granular(node, item):
        for key, child in item.items():
            _collect(child, _child(node, key), (*path, "f:" + key), out, maps)


def decode_fields(tree: Any, prefix: Path = ()) -> set[Path]:
    """A FieldsV1 tree as a set of paths."""
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for key, sub in tree.items():
        if key == ".":
            if prefix:
                out.add(prefix)
            continue
        path = (*prefix, key)
        if isinstance(sub, dict) and sub:
            out |= decode_fields(sub, path)
        else:
            out.add(path)
    return out


def encode_fields(paths: Iterable[Path]) -> Obj:
    """A set of paths as a FieldsV1 tree (``"."`` marks a member that has children)."""
    members = list(paths)
    root: Obj = {}
    for path in members:
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(tree: Obj) -> Obj:
    return {key: _sorted_tree(tree[key]) for key in sorted(tree, key=lambda k: (k != ".", k))}


def path_string(path: Path) -> str:
    """A path as Kubernetes prints it in conflicts: ``.spec.containers[name="web"].image``."""
    out = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            try:
                keys = json.loads(rest)
                out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items())
                           + "]")
            except ValueError:
                out.append(f"[{rest}]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


# --------------------------------------------------------------------------------------
# Comparing and changing objects
# --------------------------------------------------------------------------------------

class _Diff:
    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: set[Path] = set()
        self.modified: set[Path] = set()
        self.removed: set[Path] = set()

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.removed)


def compare(old: Any, new: Any, node: Schema) -> _Diff:
    """Which fields ``new`` added, modified and removed relative to ``old``."""
    diff = _Diff()
    _compare(old, new, node, (), diff)
    return diff


def _compare(old: Any, new: Any, node: Schema, path: Path, diff: _Diff) -> None:
    if old is None and new is None:
        return
    if old is None:
        diff.added |= field_set(new, node, path, maps=True)
        return
    if new is None:
        diff.removed |= field_set(old, node, path)
        if path:
            diff.removed.add(path)
        return
    if _granular(node, old) and _granular(node, new):
        for key, value in new.items():
            _compare(old.get(key), value, _child(node, key), (*path, "f:" + key), diff)
        for key, value in old.items():
            if key not in new:
                _compare(value, None, _child(node, key), (*path, "f:" + key), diff)
        return
    if isinstance(old, list) and isinstance(new, list) and node.kind == LIST:
        keys = _list_keys(node)
        if keys:
            old_items = {_key_element(i, keys): i for i in old}
            new_items = {_key_element(i, keys): i for i in new}
            if None not in old_items and None not in new_items:
                item_node = node.item()
                for element, item in new_items.items():
                    item_path = (*path, element or "")
                    if element in old_items:
                        _compare(old_items[element], item, item_node, item_path, diff)
                    else:
                        diff.added.add(item_path)
                        _collect_item(item, item_node, item_path, diff.added, True)
                for element, item in old_items.items():
                    if element not in new_items:
                        item_path = (*path, element or "")
                        diff.removed.add(item_path)
                        _collect_item(item, item_node, item_path, diff.removed)
                return
        elif node.list_type == "set":
            old_values = {_value_element(v) for v in old}
            new_values = {_value_element(v) for v in new}
            diff.added |= {(*path, v) for v in new_values - old_values}
            diff.removed |= {(*path, v) for v in old_values - new_values}
            return
    if old != new and path:
        diff.modified.add(path)


def merge(live: Any, config: Any, node: Schema) -> Any:
    """``config`` merged into ``live`` (a new value; neither argument is changed)."""
    if config is None:
        return None
    if live is None:
        return copy.deepcopy(config)
    if _granular(node, live) and _granular(node, config):
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(live.get(key), value, _child(node, key))
        return out
    if isinstance(live, list) and isinstance(config, list) and node.kind == LIST:
        keys = _list_keys(node)
        if keys:
            index = {}
            for position, item in enumerate(live):
                element = _key_element(item, keys)
                if element is not None:
                    index[element] = position
            merged = list(live)
            item_node = node.item()
            for item in config:
                element = _key_element(item, keys)
                if element is not None and element in index:
                    merged[index[element]] = merge(live[index[element]], item, item_node)
                else:
                    merged.append(copy.deepcopy(item))
            return merged
        if node.list_type == "set":
            return list(live) + [copy.deepcopy(v) for v in config if v not in live]
    return copy.deepcopy(config)


def remove_path(obj: Obj, path: Path) -> None:
    """Delete the field, map entry or list item at ``path`` (if there), and maps left empty
    by that."""
    _remove(obj, path)


def _remove(container: Any, path: Path) -> bool:
    """Remove ``path`` below ``container``; True if ``container`` became an empty dict."""
    if not path:
        return False
    element, rest = path[0], path[1:]
    kind, _, name = element.partition(":")
    if kind == "f" and isinstance(container, dict):
        if name not in container:
            return False
        if not rest or _remove(container[name], rest):
            del container[name]
        return not container
    if isinstance(container, list):
        for position, item in enumerate(container):
            if _matches(item, kind, name, position):
                if not rest:
                    del container[position]
                else:
                    _remove(item, rest)
                break
    return False


def _matches(item: Any, kind: str, name: str, position: int) -> bool:
    if kind == "i":
        return str(position) == name
    if kind == "v":
        return _value_element(item) == f"v:{name}"
    if kind == "k" and isinstance(item, dict):
        try:
            keys = json.loads(name)
        except ValueError:
            return False
        return all(item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in keys.items())
    return False


# --------------------------------------------------------------------------------------
# Managers
# --------------------------------------------------------------------------------------

class _Manager:
    """One managedFields entry being worked on."""

    __slots__ = ("api_version", "entry", "fields", "manager", "operation", "subresource",
                 "time")

    def __init__(self, manager: str, operation: str, api_version: str, subresource: str,
                 time: str | None, fields: set[Path], entry: Obj | None = None) -> None:
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.time = time
        self.fields = fields
        self.entry = entry
        """The entry this was decoded from, reused as long as nothing changes."""

    def take(self, paths: set[Path]) -> None:
        """Lose ownership of ``paths``."""
        if not self.fields.isdisjoint(paths):
            self.fields -= paths
            self.entry = None

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # Appliers are the same manager whatever version they applied in (as in Kubernetes)
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, self.subresource, version)

    def describe(self) -> str:
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def to_entry(self) -> Obj:
        if self.entry is not None:
            return self.entry
        entry: Obj = {"manager": self.manager, "operation": self.operation,
                      "apiVersion": self.api_version}
        if self.time:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = encode_fields(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def _decode_managers(entries: Any) -> dict[tuple[str, str, str, str], _Manager]:
    out: dict[tuple[str, str, str, str], _Manager] = {}
    if not isinstance(entries, list):
        return out
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("manager"):
            continue
        manager = _Manager(str(entry.get("manager")), str(entry.get("operation") or "Update"),
                           str(entry.get("apiVersion") or ""),
                           str(entry.get("subresource") or ""), entry.get("time"),
                           decode_fields(entry.get("fieldsV1")), entry)
        found = out.get(manager.ident)
        if found is not None:
            found.fields |= manager.fields
            found.entry = None
        else:
            out[manager.ident] = manager
    return out


def _encode_managers(managers: Iterable[_Manager]) -> list[Obj]:
    kept = [m for m in managers if m.fields]
    kept.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version,
                             m.subresource))
    return [m.to_entry() for m in kept]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FieldManager(str):
    """A field manager's name, with the subresource it writes through (``scale``) when that
    is not the request's own target."""

    subresource: str = ""


def manager_name(req: ApiRequest, *, required: bool = False, subresource: str = ""
                 ) -> FieldManager:
    """The request's field manager: ``fieldManager``, else the User-Agent's product name.

    :param subresource: recorded with the manager's entry (``scale``: the scale
        subresource writes the object's own fields).
    :raises ApiError: 422 for a manager name Kubernetes rejects, or a missing one where
        ``required`` (apply).
    """
    name = FieldManager(_manager_name(req, required))
    name.subresource = subresource
    return name


def _manager_name(req: ApiRequest, required: bool) -> str:
    given = req.query.get("fieldManager")
    options = "PatchOptions" if req.method.upper() == "PATCH" else \
        "CreateOptions" if req.method.upper() == "POST" else "UpdateOptions"
    if required and not given:
        raise ApiError.invalid(options, "meta.k8s.io", "", [
            Cause.required("fieldManager", "is required for apply patch")])
    if given is None:
        agent = req.header("user-agent")
        return agent.split("/", 1)[0][:MAX_MANAGER_LENGTH] if agent else "unknown"
    if len(given) > MAX_MANAGER_LENGTH:
        raise ApiError.invalid(options, "meta.k8s.io", "", [Cause(
            "fieldManager", f"Too long: may not be more than {MAX_MANAGER_LENGTH} bytes",
            "FieldValueTooLong")])
    if not given.isprintable():
        raise ApiError.invalid(options, "meta.k8s.io", "", [Cause.invalid(
            "fieldManager", given, "must only contain printable characters")])
    return given


def _root(kind: KindInfo) -> Schema:
    return schema_for(kind.model) if kind.model is not None else UNKNOWN_SCHEMA


def _view(kind: KindInfo, obj: Obj | None, subresource: str) -> Obj:
    """The part of an object whose fields managers can own: no apiVersion/kind, no
    server-set metadata; only ``status`` through the status subresource, and no ``status``
    through the object itself when the kind has the subresource."""
    if not obj:
        return {}
    if subresource == "status":
        status = obj.get("status")
        return {"status": status} if status is not None else {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if kind.strategy.has_status and "status" in kind.subresources:
        out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _SYSTEM_META}
        if meta:
            out["metadata"] = meta
        else:
            out.pop("metadata")
    return out


def _owned_by_others(managers: dict[Any, _Manager], me: Any) -> set[Path]:
    out: set[Path] = set()
    for ident, manager in managers.items():
        if ident != me:
            out |= manager.fields
    return out


def track_update(kind: KindInfo, subresource: str | None, live: Obj | None, new: Obj,
                 manager: str) -> None:
    """Record an Update operation by ``manager`` in ``new``'s managedFields, in place.

    The base is ``new``'s own managedFields when the client sent different ones (clients
    may rewrite them), else ``live``'s.  ``[{}]`` clears them all.
    """
    meta = new.setdefault("metadata", {})
    live_entries = ((live or {}).get("metadata") or {}).get("managedFields")
    sent = meta.get("managedFields")
    if sent == [{}]:
        meta.pop("managedFields", None)
        return
    base = sent if sent and sent != live_entries else live_entries
    sub = subresource or getattr(manager, "subresource", "") or ""
    diff = compare(_view(kind, live, sub), _view(kind, new, sub), _root(kind))
    if not diff:  # nothing owned changed: the entries stay as they are
        if base:
            meta["managedFields"] = base
        else:
            meta.pop("managedFields", None)
        return
    managers = _decode_managers(base)
    me = _Manager(manager, "Update", kind.api_version, sub, None, set())
    changed = diff.changed
    for ident, other in managers.items():
        if ident != me.ident:
            other.take(changed)
            other.take(diff.removed)
    mine = managers.setdefault(me.ident, me)
    fields = (mine.fields - diff.removed) | changed
    if fields != mine.fields or not mine.time:
        mine.fields = fields
        mine.time = _now()
        mine.entry = None
    entries = _encode_managers(managers.values())
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def apply_configuration(kind: KindInfo, subresource: str | None, live: Obj | None,
                        config: Obj, manager: str, *, force: bool) -> Obj:
    """The object after ``manager`` applies ``config`` to ``live`` (None: absent).

    :raises ApiError: 409 listing the conflicting fields and their managers, unless
        ``force``.
    """
    sub = subresource or ""
    node = _root(kind)
    live_clean = copy.deepcopy(live) if live else {}
    live_meta = live_clean.setdefault("metadata", {})
    managers = _decode_managers(live_meta.pop("managedFields", None))
    if live and not managers:
        # an object nobody manages yet: its fields belong to "before-first-apply"
        first = _Manager("before-first-apply", "Update", kind.api_version, sub, _now(),
                         field_set(_view(kind, live_clean, sub), node))
        if first.fields:
            managers[first.ident] = first
    new = merge(live_clean, config, node)
    applied = field_set(_view(kind, config, sub), node)
    me = _Manager(manager, "Apply", kind.api_version, sub, _now(), applied)
    previous = managers.get(me.ident)
    managers[me.ident] = me
    if previous is not None:
        kept = applied | _owned_by_others(managers, me.ident)
        disowned = previous.fields - kept
        if disowned:
            # a map or list item still holding kept fields stays, whoever owned it itself
            holding = {path[:i] for path in kept for i in range(1, len(path))}
            removed = disowned - holding
            for path in removed:
                if not any(path[:i] in removed for i in range(1, len(path))):
                    remove_path(new, path)
    diff = compare(_view(kind, live_clean, sub), _view(kind, new, sub), node)
    changed = diff.changed
    conflicts: list[tuple[_Manager, Path]] = []
    for ident, other in managers.items():
        if ident == me.ident:
            continue
        for path in sorted(other.fields & changed):
            conflicts.append((other, path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for ident, other in managers.items():
        if ident != me.ident:
            other.take(changed)
            other.take(diff.removed)
    if previous is not None and previous.fields == applied and not diff:
        me.time = previous.time
        me.entry = previous.entry
    new.setdefault("metadata", {})
    entries = _encode_managers(managers.values())
    if entries:
        new["metadata"]["managedFields"] = entries
    return new


def _conflict_error(conflicts: list[tuple[_Manager, Path]]) -> ApiError:
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {m.describe()}",
               "field": path_string(p)} for m, p in conflicts]
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = (f"Apply failed with 1 conflict: conflict with {manager.describe()}: "
                   f"{path_string(path)}")
    else:
        by_manager: dict[str, list[str]] = {}
        for manager, path in conflicts:
            by_manager.setdefault(manager.describe(), []).append(path_string(path))
        lines = []
        for described in sorted(by_manager):
            lines.append(f"conflicts with {described}:")
            lines.extend(f"- {p}" for p in by_manager[described])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details={"causes": causes})


# --------------------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------------------

def _flag(req: ApiRequest, name: str) -> bool:
    value = req.query.get(name)
    if value in (None, "", "false", "False", "0"):
        return False
    if value in ("true", "True", "1"):
        return True
    raise ApiError.bad_request(f'{name} must be true or false, not "{value}"')


def reject_force(req: ApiRequest) -> None:
    """``force`` belongs to apply patches only (422 otherwise, as in Kubernetes)."""
    if _flag(req, "force"):
        raise ApiError.invalid("PatchOptions", "meta.k8s.io", "", [Cause.forbidden(
            "force", "may not be specified for non-apply patch")])


def _decode_configuration(req: ApiRequest) -> tuple[Any, list[str]]:
    """The apply configuration, and yaml.v2's ``line N: key "k" already set in map`` for
    each key it sets twice: a 400 when ``fieldValidation`` is Strict (as Kubernetes' strict
    YAML decoding), the warnings to send when Warn."""
    from kubeling.api.handlers import _field_validation

    mode = _field_validation(req)
    if mode == "Ignore":
        return decode_body(req.body, "application/yaml"), []
    body, found = decode_yaml_noting_duplicates(req.body)
    lines = list(found.yaml_lines)
    if lines and mode == "Strict":
        raise ApiError.bad_request("error strict decoding YAML: error converting YAML to JSON: "
                                   "yaml: unmarshal errors:\n  " + "\n  ".join(lines))
    return body, lines


async def apply_request(handlers: Handlers, t: Target, req: ApiRequest, user: UserInfo
                        ) -> ApiResponse:
    """Serve ``PATCH`` with ``application/apply-patch+yaml``: create or apply."""
    from kubeling.api.handlers import Target as TargetType
    from kubeling.api.handlers import _dry_run, _warning_header

    kind = t.kind
    limit = handlers.server.settings.max_request_bytes
    if len(req.body) > limit:
        raise ApiError.too_large(limit)
    manager = manager_name(req, required=True)
    force = _flag(req, "force")
    dry_run = _dry_run(req)
    body, repeated = _decode_configuration(req)
    if not isinstance(body, dict):
        raise ApiError.bad_request(f"the request body must be a {kind.kind} object, not "
                                   f"{type(body).__name__}")
    shown = json.dumps(body, separators=(",", ":"))[:200]
    if not body.get("kind"):
        raise ApiError.bad_request(f"Object 'Kind' is missing in '{shown}'")
    if not body.get("apiVersion"):
        raise ApiError.bad_request(f"Object 'apiVersion' is missing in '{shown}'")
    config, warnings = handlers._check_object(t, body, req)
    warnings = repeated + warnings
    meta = config["metadata"]
    if meta.get("name") and meta["name"] != t.name:
        raise ApiError.bad_request(f"the name of the object ({meta['name']}) does not match "
                                   f"the name on the URL ({t.name})")
    if kind.namespaced and meta.get("namespace") and meta["namespace"] != t.namespace:
        raise ApiError.bad_request("the namespace of the provided object does not match the "
                                   "namespace sent on the request")
    if meta.get("managedFields"):
        raise ApiError.bad_request("metadata.managedFields must be nil")
    meta.pop("managedFields", None)
    meta["name"] = t.name
    precondition = meta.pop("resourceVersion", None) or None
    headers = _warning_header(warnings)

    def compute(current: Obj) -> Obj:
        return apply_configuration(kind, t.subresource, current, config, manager, force=force)

    for _ in range(5):
        try:
            raw, status = await handlers.update_object(t, compute, user=user, dry_run=dry_run,
                                                       precondition=precondition)
            return ApiResponse.raw(raw, status, headers=headers)
        except ApiError as exc:
            if exc.code != 404 or t.subresource is not None or precondition:
                raise
        # absent: apply creates it
        obj = apply_configuration(kind, None, None, config, manager, force=force)
        try:
            created = await handlers.create_object(TargetType(kind, t.namespace, None, None),
                                                   obj, user=user, dry_run=dry_run)
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                continue  # created meanwhile: apply to it
            raise
        return ApiResponse.raw(created, 201, headers=headers)
    raise ApiError.conflict(kind.plural, kind.group, t.name or "",
                            "the object kept appearing and disappearing; try again")
