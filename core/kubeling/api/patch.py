"""The three PATCH bodies Kubernetes accepts, applied to JSON-shaped Python values.

* :func:`json_merge_patch` — ``application/merge-patch+json`` (RFC 7386).
* :func:`json_patch` — ``application/json-patch+json`` (RFC 6902).
* :func:`strategic_merge_patch` — ``application/strategic-merge-patch+json``, Kubernetes'
  schema-aware merge used by ``kubectl patch`` (its default) and client-side ``kubectl apply``.

No function mutates its inputs, and results never share containers with them, so a caller
may freely modify a result (set defaults, bump ``generation``) without touching a cached
original. Malformed patches raise :class:`PatchError` (a :class:`ValueError`) with a message
fit for a ``Status`` error body.

Strategic merge patch needs to know, per field, whether a list is merged and by which key.
That knowledge comes through the small :class:`PatchMeta` protocol: the attrs models provide
it for built-in kinds, :class:`DictPatchMeta` builds it from a nested dict, and
:data:`NO_META` knows nothing (every list is then replaced, maps still merge).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "NO_META",
    "STRATEGIC_MERGE_PATCH",
    "DictPatchMeta",
    "PatchError",
    "PatchMeta",
    "apply_patch",
    "json_merge_patch",
    "json_patch",
    "strategic_merge_patch",
]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class PatchError(ValueError):
    """A patch that cannot be applied: malformed, or failing against the target."""


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------

_CONTAINERS = (dict, list)


def _copy(value: Any) -> Any:
    """Deep-copy a JSON value: new dicts and lists, shared immutable scalars."""
    if isinstance(value, dict):
        return {k: (v if type(v) not in _CONTAINERS else _copy(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [(v if type(v) not in _CONTAINERS else _copy(v)) for v in value]
    return value


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, ``1 == 1.0``, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return False
        return all(_json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _key(value: Any) -> Hashable:
    """A hashable identity for a JSON value, equal exactly when :func:`_json_equal` is."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    return ("j", json.dumps(value, sort_keys=True, default=str))


def _show(value: Any, limit: int = 200) -> str:
    """A short JSON rendering of a value for error messages."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


# --------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)
# --------------------------------------------------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch (RFC 7386) and return the result.

    An object patch merges into the target key by key, recursively; a ``null`` value removes
    the key; any other patch value (arrays included) replaces the target outright. A
    non-object target under an object patch is treated as ``{}``.

    :param target: the current document.
    :param patch: the merge patch document.
    :returns: a new document; neither argument is modified or shared with it.
    """
    if not isinstance(patch, dict):
        return _copy(patch)
    return _merge_patch_into(_copy(target) if isinstance(target, dict) else {}, patch)


def _merge_patch_into(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 on a target we own, in place."""
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict):
            current = base.get(key)
            base[key] = _merge_patch_into(current if isinstance(current, dict) else {}, value)
        else:
            base[key] = _copy(value)
    return base


# --------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)
# --------------------------------------------------------------------------------------------


class _OpError(Exception):
    """Internal: why one operation failed, before the index and path are added."""


def _parse_pointer(pointer: Any, what: str = "path") -> list[str]:
    if not isinstance(pointer, str):
        raise _OpError(f'"{what}" must be a string JSON pointer, not {_kind(pointer)}')
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _OpError(f"invalid JSON pointer {pointer!r}: must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    for i, token in enumerate(tokens):
        if "~" in token:
            if any(
                ch == "~" and token[j + 1 : j + 2] not in ("0", "1") for j, ch in enumerate(token)
            ):
                raise _OpError(
                    f"invalid JSON pointer {pointer!r}: '~' must be followed by '0' or '1'"
                )
            tokens[i] = token.replace("~1", "/").replace("~0", "~")
    return tokens


def _array_index(token: str, length: int, *, allow_end: bool) -> int:
    """The index a token names in an array of ``length``, as RFC 6901 spells indexes."""
    if token == "-":
        if allow_end:
            return length
        raise _OpError("'-' names the element after the end of the array, which does not exist")
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise _OpError(f"invalid array index {token!r}")
    index = int(token)
    limit = length if allow_end else length - 1
    if index > limit:
        raise _OpError(f"array index {index} is out of range (array length {length})")
    return index


def _walk(doc: Any, tokens: list[str]) -> Any:
    """The value at ``tokens`` (which must exist)."""
    node = doc
    for depth, token in enumerate(tokens):
        if isinstance(node, dict):
            if token not in node:
                missing = "/" + "/".join(_escape_token(t) for t in tokens[: depth + 1])
                raise _OpError(f"path {missing!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), allow_end=False)]
        else:
            at = "/" + "/".join(_escape_token(t) for t in tokens[:depth])
            raise _OpError(f"cannot descend into {_kind(node)} at {at!r}")
    return node


def _escape_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _op_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True), value)
    else:
        raise _OpError(f"cannot add a member to {_kind(parent)}")
    return doc


def _op_remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    """Remove the value at ``tokens``; returns (document, removed value)."""
    if not tokens:
        raise _OpError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError("path does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), allow_end=False))
    raise _OpError(f"cannot remove a member of {_kind(parent)}")


def _op_replace(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError("path does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        parent[_array_index(last, len(parent), allow_end=False)] = value
    else:
        raise _OpError(f"cannot replace a member of {_kind(parent)}")
    return doc


def _apply_operation(doc: Any, op: Mapping[str, Any]) -> Any:
    name = op["op"]
    tokens = _parse_pointer(op["path"])
    if name in ("add", "replace", "test") and "value" not in op:
        raise _OpError('missing "value"')
    if name == "add":
        return _op_add(doc, tokens, _copy(op["value"]))
    if name == "remove":
        return _op_remove(doc, tokens)[0]
    if name == "replace":
        return _op_replace(doc, tokens, _copy(op["value"]))
    if name == "test":
        expected = op["value"]
        try:
            actual = _walk(doc, tokens)
        except _OpError:
            if expected is None:  # as Kubernetes: testing for null passes on a missing path
                return doc
            raise
        if not _json_equal(actual, expected):
            raise _OpError(f"test failed: value is {_show(actual)}, expected {_show(expected)}")
        return doc
    # move and copy
    if "from" not in op:
        raise _OpError('missing "from"')
    source = _parse_pointer(op["from"], "from")
    if name == "copy":
        return _op_add(doc, tokens, _copy(_walk(doc, source)))
    if tokens == source:
        _walk(doc, source)
        return doc
    if tokens[: len(source)] == source:
        raise _OpError(f"cannot move {op['from']!r} into one of its own children")
    doc, value = _op_remove(doc, source)
    return _op_add(doc, tokens, value)


_JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def json_patch(target: Any, operations: list[Any]) -> Any:
    """Apply a JSON patch (RFC 6902) and return the result.

    Operations ``add``, ``remove``, ``replace``, ``move``, ``copy`` and ``test`` run in order
    on JSON pointers (RFC 6901: ``~1`` is ``/``, ``~0`` is ``~``; ``-`` appends to an
    array in ``add``). The patch is atomic: any failure raises and nothing is returned.
    As in Kubernetes, a ``test`` for ``null`` passes when the path is absent.

    :param target: the current document.
    :param operations: the list of operation objects.
    :returns: a new document; neither argument is modified or shared with it.
    :raises PatchError: naming the 0-based operation index, its op and path, e.g.
        ``json patch operation 1 (test /spec/replicas): test failed: value is 3, expected 4``.
    """
    if not isinstance(operations, list):
        raise PatchError(f"json patch must be an array of operations, not {_kind(operations)}")
    doc = _copy(target)
    for index, op in enumerate(operations):
        if not isinstance(op, Mapping):
            raise PatchError(f"json patch operation {index}: must be an object, not {_kind(op)}")
        name = op.get("op")
        path = op.get("path")
        where = f"json patch operation {index} ({name} {path})"
        if not isinstance(name, str) or name not in _JSON_PATCH_OPS:
            shown = f'"{name}"' if isinstance(name, str) else _show(name)
            raise PatchError(
                f"json patch operation {index}: unknown op {shown}; expected one of "
                "add, remove, replace, move, copy, test"
            )
        if "path" not in op:
            raise PatchError(f'json patch operation {index} ({name}): missing "path"')
        try:
            doc = _apply_operation(doc, op)
        except _OpError as exc:
            raise PatchError(f"{where}: {exc}") from None
    return doc


# --------------------------------------------------------------------------------------------
# Strategic merge patch: schema metadata
# --------------------------------------------------------------------------------------------


@runtime_checkable
class PatchMeta(Protocol):
    """What strategic merge patch needs to know about one field of a schema.

    ``field(name)`` describes a child of an object (any name for a map of values; an unknown
    field gives a meta that knows nothing); ``item()`` describes a list's elements (or a
    map's values). ``patch_strategy`` is the field's ``patchStrategy`` tag / the OpenAPI
    ``x-kubernetes-patch-strategy`` (``"merge"``, ``"replace"``, ``"retainKeys"``,
    ``"merge,retainKeys"`` or None) and ``patch_merge_key`` its ``patchMergeKey``.
    """

    def field(self, name: str) -> PatchMeta:
        """The meta of an object's child field."""
        ...

    def item(self) -> PatchMeta:
        """The meta of a list's elements or a map's values."""
        ...

    @property
    def patch_strategy(self) -> str | None:
        """The field's patch strategy, e.g. ``"merge"`` or ``"merge,retainKeys"``."""
        ...

    @property
    def patch_merge_key(self) -> str | None:
        """The key identifying elements of a merged list of objects."""
        ...


class _NoMeta:
    """Knows nothing: every list is replaced, objects merge (like JSON merge patch)."""

    __slots__ = ()

    def field(self, name: str) -> PatchMeta:
        return self

    def item(self) -> PatchMeta:
        return self

    @property
    def patch_strategy(self) -> str | None:
        return None

    @property
    def patch_merge_key(self) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NO_META"


NO_META: PatchMeta = _NoMeta()
"""A :class:`PatchMeta` that knows nothing: every list is replaced, objects still merge."""


class DictPatchMeta:
    """A :class:`PatchMeta` described by a nested plain dict.

    Keys name fields; their values describe those fields in turn. Three keys describe the
    field itself: ``"$strategy"`` (its patch strategy), ``"$key"`` (its merge key) and
    ``"$item"`` (the description of its list elements, or of every value of a map).
    Fields not described know nothing::

        DictPatchMeta({
            "metadata": {"finalizers": {"$strategy": "merge"}},
            "spec": {
                "containers": {
                    "$strategy": "merge", "$key": "name",
                    "$item": {"ports": {"$strategy": "merge", "$key": "containerPort"}},
                },
                "strategy": {"$strategy": "retainKeys"},
            },
        })
    """

    __slots__ = ("_children", "_description", "_item")

    def __init__(self, description: Mapping[str, Any] | None = None) -> None:
        description = description or {}
        if not isinstance(description, Mapping):
            raise TypeError(f"a patch meta description must be a dict, not {description!r}")
        for key in ("$strategy", "$key"):
            value = description.get(key)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{key} must be a string, not {value!r}")
        self._description = description
        self._children: dict[str, PatchMeta] = {}
        self._item: PatchMeta | None = None

    def field(self, name: str) -> PatchMeta:
        """The meta of field ``name``; ``$item`` describes undeclared keys when present."""
        child = self._children.get(name)
        if child is None:
            child_description = None if name.startswith("$") else self._description.get(name)
            if child_description is None:
                child_description = self._description.get("$item")
            child = DictPatchMeta(child_description) if child_description else NO_META
            self._children[name] = child
        return child

    def item(self) -> PatchMeta:
        """The meta of list elements / map values, from ``$item``."""
        if self._item is None:
            description = self._description.get("$item")
            self._item = DictPatchMeta(description) if description else NO_META
        return self._item

    @property
    def patch_strategy(self) -> str | None:
        """The ``$strategy`` entry."""
        return self._description.get("$strategy")

    @property
    def patch_merge_key(self) -> str | None:
        """The ``$key`` entry."""
        return self._description.get("$key")

    def __repr__(self) -> str:
        return f"DictPatchMeta({self._description!r})"


def _strategy(meta: PatchMeta) -> str | None:
    """The field's strategy without ``retainKeys`` (which only matters when diffing)."""
    raw = meta.patch_strategy
    if not raw:
        return None
    for part in raw.split(","):
        part = part.strip()
        if part and part != "retainKeys":
            return part
    return None


# --------------------------------------------------------------------------------------------
# Strategic merge patch: directives
# --------------------------------------------------------------------------------------------

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_FROM = "$deleteFromPrimitiveList"

_DELETED = object()
"""Marks a map that ``$patch: delete`` removed (its key goes away)."""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _directive_field(key: str, prefix: str, path: str) -> str:
    """The list a ``$setElementOrder/<f>`` / ``$deleteFromPrimitiveList/<f>`` key names."""
    head, sep, name = key.partition("/")
    if head != prefix or not sep or not name:
        what = "setElementOrder list" if prefix == _SET_ORDER else "primitive list"
        raise PatchError(f"invalid patch format of {what}: {_join(path, key)!r}")
    return name


def _merge_key_error(element: Any, merge_key: str, path: str) -> PatchError:
    return PatchError(
        f"{path}: map {_show(element)} does not contain declared merge key: {merge_key}"
    )


# --------------------------------------------------------------------------------------------
# Strategic merge patch: the merge
# --------------------------------------------------------------------------------------------


def strategic_merge_patch(
    original: Mapping[str, Any], patch: Mapping[str, Any], meta: PatchMeta = NO_META
) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch and return the result.

    * Objects merge recursively; ``null`` deletes a key; a field whose strategy is
      ``replace`` is replaced outright.
    * Lists with strategy ``merge`` and a merge key merge element-wise by that key (matching
      elements merge recursively; the others are added). Lists with strategy ``merge`` and
      primitive elements (``finalizers``) merge as ordered sets. Other lists are replaced.
    * Ordering follows Kubernetes: ``$setElementOrder/<list>`` gives the order outright;
      otherwise patch elements keep their patch order and are interleaved with the
      remaining elements by their position in the original, so an element that is new
      to the list lands before the original elements not mentioned in the patch (exactly
      what ``kubectl patch`` does when it sends no ``$setElementOrder``).
    * Directives: ``$patch: replace`` (on an object: take it as given; as a list element:
      replace the list with the patch's other elements), ``$patch: delete`` (on an object:
      remove it; as a list element: remove the elements with its merge key value),
      ``$patch: merge`` (the default, accepted for clarity; Kubernetes rejects it),
      ``$retainKeys`` (drop original keys not listed), ``$deleteFromPrimitiveList/<list>``
      and ``$setElementOrder/<list>``. Directives never appear in the result.
    * Values added where the original has nothing (or has a value of another type) are
      cleaned as they would be merged into nothing: nulls dropped, directives applied.

    :param original: the current object.
    :param patch: the strategic merge patch.
    :param meta: schema metadata for the object (see :class:`PatchMeta`).
    :returns: a new object; neither argument is modified or shared with it.
    :raises PatchError: for malformed patches, e.g. a merge-list element without its merge
        key, an unknown ``$patch`` value or an invalid ``$retainKeys``.
    """
    if not isinstance(original, Mapping):
        raise PatchError(f"strategic merge patch target must be an object, not {_kind(original)}")
    if not isinstance(patch, Mapping):
        raise PatchError(f"strategic merge patch must be an object, not {_kind(patch)}")
    result = _merge_map(_copy(dict(original)), patch, meta, "")
    return {} if result is _DELETED else result


def _merge_map(
    original: dict[str, Any], patch: Mapping[str, Any], meta: PatchMeta, path: str
) -> Any:
    """Merge ``patch`` into ``original`` (owned, modified in place) and return the result,
    or :data:`_DELETED`."""
    if _PATCH in patch:
        directive = patch[_PATCH]
        if directive == "replace":
            return _merge_map({}, {k: v for k, v in patch.items() if k != _PATCH}, meta, path)
        if directive == "delete":
            return _DELETED
        if directive != "merge":
            raise PatchError(
                f"{path or '<root>'}: unknown patch type: {_show(directive)} in map: {_show(patch)}"
            )

    if _RETAIN_KEYS in patch:
        _apply_retain_keys(original, patch, path)

    handled: set[str] = set()
    for key, order in patch.items():
        if key.startswith(_SET_ORDER):
            name = _directive_field(key, _SET_ORDER, path)
            field_meta = meta.field(name)
            _apply_set_element_order(original, patch, name, order, field_meta, _join(path, name))
            if isinstance(patch.get(name), list):
                handled.add(name)  # merged together with its order; not again below

    for key, value in patch.items():
        if key in handled or key in (_PATCH, _RETAIN_KEYS) or key.startswith(_SET_ORDER):
            continue
        is_delete_list = key.startswith(_DELETE_FROM)
        if is_delete_list:
            key = _directive_field(key, _DELETE_FROM, path)
        if value is None:
            original.pop(key, None)
            continue
        field_meta = meta.field(key)
        field_path = _join(path, key)
        current = original.get(key)
        if is_delete_list:
            if not isinstance(value, list):
                raise PatchError(f"{field_path}: invalid patch format of primitive list")
            if isinstance(current, list):
                doomed = {_key(v) for v in value}
                original[key] = [v for v in current if _key(v) not in doomed]
            continue
        if isinstance(current, dict) and isinstance(value, Mapping):
            if _strategy(field_meta) == "replace":
                merged = _fresh(value, field_meta, field_path)
            else:
                merged = _merge_map(current, value, field_meta, field_path)
        elif isinstance(current, list) and isinstance(value, list):
            merged = _merge_list_field(current, value, field_meta, field_path)
        else:
            # Absent in the original, or of another type: take the patch value, cleaned.
            merged = _fresh(value, field_meta, field_path)
        if merged is _DELETED:
            original.pop(key, None)
        else:
            original[key] = merged
    return original


def _apply_retain_keys(original: dict[str, Any], patch: Mapping[str, Any], path: str) -> None:
    retain = patch[_RETAIN_KEYS]
    if not isinstance(retain, list):
        raise PatchError(f"{path or '<root>'}: invalid patch format of retainKeys: must be a list")
    keep = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        if (
            value is None
            or key in (_PATCH, _RETAIN_KEYS)
            or key.startswith((_SET_ORDER, _DELETE_FROM))
        ):
            continue
        if key not in keep:
            raise PatchError(
                f"{path or '<root>'}: invalid patch format of retainKeys: "
                f"{key!r} is in the patch but not in $retainKeys"
            )
    for key in [k for k in original if k not in keep]:
        del original[key]


def _fresh(value: Any, meta: PatchMeta, path: str) -> Any:
    """A patch value merged into nothing: a new value without nulls or directives."""
    if isinstance(value, Mapping):
        return _merge_map({}, value, meta, path)
    if isinstance(value, list):
        return _merge_list_field([], value, meta, path)
    return value


def _merge_list_field(
    original: list[Any], patch: list[Any], meta: PatchMeta, path: str
) -> list[Any]:
    """Merge or replace a list field according to its strategy."""
    if _strategy(meta) == "merge":
        merge_key = meta.patch_merge_key
        if original or merge_key or not any(isinstance(e, dict) for e in patch):
            return _merge_list(original, patch, meta, path)
    item_meta = meta.item()
    result = []
    for element in patch:
        if isinstance(element, Mapping):
            if _PATCH in element and (element[_PATCH] == "delete" or len(element) == 1):
                continue  # a deletion, or a bare directive: nothing to add
            element = _merge_map({}, element, item_meta, path)
        elif isinstance(element, list):
            element = _merge_list_field([], element, item_meta, path)
        result.append(element)
    return result


def _element_kind(original: list[Any], patch: list[Any], path: str) -> str:
    """``"map"`` or ``"scalar"`` for the elements of both lists (which must agree)."""
    kinds = set()
    for element in (*original, *patch):
        if isinstance(element, list):
            raise PatchError(f"{path}: lists of lists are not supported")
        kinds.add("map" if isinstance(element, Mapping) else "scalar")
    if len(kinds) > 1:
        raise PatchError(f"{path}: list element types are not identical")
    return kinds.pop() if kinds else "scalar"


def _merge_list(original: list[Any], patch: list[Any], meta: PatchMeta, path: str) -> list[Any]:
    """Merge a patch list into an original list (owned) of a ``merge``-strategy field."""
    if not original and not patch:
        return original
    if _element_kind(original, patch, path) == "scalar":
        merged: list[Any] = []
        seen: set[Hashable] = set()
        for element in (*original, *patch):
            k = _key(element)
            if k not in seen:
                seen.add(k)
                merged.append(element)
        return _order(merged, _key, [_key(v) for v in patch], original)

    merge_key = meta.patch_merge_key
    if not merge_key:
        raise PatchError(f"{path}: cannot merge lists without merge key")
    item_meta = meta.item()

    def key_of(element: Mapping[str, Any]) -> Hashable | None:
        return _key(element[merge_key]) if merge_key in element else None

    # Special elements first: deletions, a replacement of the whole list.
    rest: list[Mapping[str, Any]] = []
    replace = False
    for element in patch:
        directive = element.get(_PATCH)
        if directive is None or directive == "merge":
            if directive == "merge" and len(element) == 1:
                continue  # a bare {"$patch": "merge"}: merging is the default anyway
            if merge_key not in element:
                raise _merge_key_error(element, merge_key, path)
            rest.append(element)
        elif directive == "delete":
            if merge_key not in element:
                raise _merge_key_error(element, merge_key, path)
            doomed = _key(element[merge_key])
            original = [e for e in original if key_of(e) != doomed]
        elif directive == "replace":
            replace = True
        else:
            raise PatchError(
                f"{path}: unknown patch type: {_show(directive)} in map: {_show(element)}"
            )
    if replace:
        original = []

    server_list = list(original)
    for element in rest:
        k = _key(element[merge_key])
        for index, existing in enumerate(original):
            if key_of(existing) == k:
                original[index] = _merge_map(existing, element, item_meta, path)
                break
        else:
            original.append(_merge_map({}, element, item_meta, path))
    if replace:
        return original
    return _order(original, key_of, [_key(e[merge_key]) for e in rest], server_list)


def _order(
    merged: list[Any],
    key_of: Callable[[Any], Hashable | None],
    patch_order: list[Hashable],
    server_list: list[Any],
) -> list[Any]:
    """Kubernetes' element order for a merged list.

    Elements named in ``patch_order`` keep that relative order; the others keep their order
    in ``server_list`` (the original list); the two runs are interleaved by original
    position, an element absent from the original going out as soon as it heads its run.
    """
    patch_pos: dict[Hashable, int] = {}
    for index, k in enumerate(patch_order):
        patch_pos.setdefault(k, index)
    server_pos: dict[Hashable, int] = {}
    identity_pos: dict[int, int] = {}  # original elements without a merge key
    for index, element in enumerate(server_list):
        k = key_of(element)
        if k is None:
            identity_pos.setdefault(id(element), index)
        else:
            server_pos.setdefault(k, index)
    from_patch: list[tuple[int, int, Any]] = []
    server_only: list[tuple[int, Any]] = []
    for element in merged:
        k = key_of(element)
        in_server = identity_pos.get(id(element), -1) if k is None else server_pos.get(k, -1)
        if k is not None and k in patch_pos:
            from_patch.append((patch_pos[k], in_server, element))
        else:
            server_only.append((in_server, element))
    from_patch.sort(key=lambda entry: entry[0])
    server_only.sort(key=lambda entry: entry[0] if entry[0] >= 0 else len(server_list))
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(from_patch):
        if j >= len(from_patch):
            result.append(server_only[i][1])
            i += 1
        elif i >= len(server_only):
            result.append(from_patch[j][2])
            j += 1
        else:
            left_pos = server_only[i][0]
            right_pos = from_patch[j][1]
            if 0 <= left_pos < right_pos:
                result.append(server_only[i][1])
                i += 1
            else:
                result.append(from_patch[j][2])
                j += 1
    return result


def _apply_set_element_order(
    original: dict[str, Any],
    patch: Mapping[str, Any],
    name: str,
    order: Any,
    meta: PatchMeta,
    path: str,
) -> None:
    """Merge list ``name`` and order it by a ``$setElementOrder/<name>`` directive."""
    if not isinstance(order, list):
        raise PatchError(f"{path}: invalid patch format of setElementOrder list: must be a list")
    current = original.get(name)
    patch_list = patch.get(name)
    if current is not None and not isinstance(current, list):
        raise PatchError(f"{path}: $setElementOrder names a field that is not a list")
    if patch_list is not None and not isinstance(patch_list, list):
        raise PatchError(f"{path}: $setElementOrder names a field that is not a list")
    merge_key = meta.patch_merge_key

    def key_of(element: Any) -> Hashable | None:
        if merge_key and isinstance(element, Mapping):
            return _key(element[merge_key]) if merge_key in element else None
        return _key(element)

    order_keys: list[Hashable] = []
    for element in order:
        k = key_of(element)
        if k is None:
            raise _merge_key_error(element, merge_key or "", path)
        order_keys.append(k)
    if patch_list:
        _check_order_consistency(patch_list, order, order_keys, key_of, merge_key, path)

    if current is None and patch_list is None:
        return
    if patch_list is None:
        merged = current
    elif current is None:
        merged = _merge_list_field([], patch_list, meta, path)
    else:
        merged = _merge_list_field(current, patch_list, meta, path)
    original[name] = _order(merged, key_of, order_keys, list(current or ()))


def _check_order_consistency(
    patch_list: list[Any],
    order: list[Any],
    order_keys: list[Hashable],
    key_of: Callable[[Any], Hashable | None],
    merge_key: str | None,
    path: str,
) -> None:
    """The patch list's elements must appear in ``$setElementOrder`` in the same order."""
    position = 0
    for element in patch_list:
        if isinstance(element, Mapping) and _PATCH in element:
            continue  # deletions and other directives are not ordered
        k = key_of(element)
        if k is None:
            raise _merge_key_error(element, merge_key or "", path)
        while position < len(order_keys) and order_keys[position] != k:
            position += 1
        if position == len(order_keys):
            raise PatchError(
                f"{path}: the order in patch list {_show(patch_list)} doesn't match "
                f"$setElementOrder list {_show(order)}"
            )
        position += 1


# --------------------------------------------------------------------------------------------
# Dispatch by content type
# --------------------------------------------------------------------------------------------


def apply_patch(content_type: str, target: Any, patch: Any, meta: PatchMeta = NO_META) -> Any:
    """Apply a PATCH body by its ``Content-Type``.

    :param content_type: :data:`JSON_PATCH`, :data:`MERGE_PATCH` or
        :data:`STRATEGIC_MERGE_PATCH` (parameters such as ``; charset=utf-8`` are ignored).
    :param target: the current object.
    :param patch: the decoded patch body.
    :param meta: schema metadata, used by strategic merge patch only.
    :returns: the patched object.
    :raises PatchError: for a malformed or failing patch.
    :raises ValueError: for an unsupported content type (the caller answers 415).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON_PATCH:
        return json_patch(target, patch)
    if media_type == MERGE_PATCH:
        return json_merge_patch(target, patch)
    if media_type == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(target, patch, meta)
    raise ValueError(f"unsupported patch content type: {content_type}")
