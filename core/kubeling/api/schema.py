"""Shape checking and schema introspection derived from the attrs models.

The attrs models in :mod:`kubeling.api.objects` are the single source of truth for the shape
of every served kind.  :func:`schema_for` compiles a model class once into a :class:`Schema`
that

* **checks** a decoded JSON body (:meth:`Schema.check`): wrong JSON types are reported with
  the full field path (``spec.containers[0].ports[0].containerPort``), unknown fields are
  reported and pruned, and JSON numbers given for quantities are rewritten as canonical
  quantity strings -- the same corrections the Kubernetes API server makes when it decodes
  a request into its typed structs;
* answers the **strategic-merge-patch** metadata questions of :mod:`kubeling.api.patch`
  (:meth:`Schema.field`, :meth:`Schema.item`, :attr:`Schema.patch_strategy`,
  :attr:`Schema.patch_merge_key`), duck typed;
* exposes the **field tables** (:attr:`Schema.fields`, :class:`FieldInfo`) from which the
  OpenAPI documents are generated.

A Schema node describes one position in a document: the root of a kind, a field (then it
also carries that field's patch and list metadata), a list element or a map value.  Nodes of
kind ``"unknown"`` stand for positions the model does not describe; they answer every
question with "nothing known".

Field metadata keys read from the models: ``json``, ``doc``, ``format``, ``required``,
``patch_strategy``, ``patch_merge_key``, ``list_type``, ``list_map_keys``, ``map_type``.
For list and map fields ``format`` describes the elements (values).
"""

from __future__ import annotations

import binascii
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kubeling.api.quantity import canonicalize_quantity

__all__ = [
    "ANY",
    "LIST",
    "MAP",
    "OBJECT",
    "SCALAR",
    "UNKNOWN",
    "UNKNOWN_SCHEMA",
    "CheckResult",
    "FieldInfo",
    "Schema",
    "schema_for",
]

# Node kinds.
OBJECT = "object"
LIST = "list"
MAP = "map"
SCALAR = "scalar"
ANY = "any"
UNKNOWN = "unknown"

_UNKNOWN_MODES = ("strict", "warn", "ignore")


@attrs.frozen(kw_only=True)
class FieldInfo:
    """One field of a model, as the schema sees it.

    :ivar name: Python attribute name (``continue_``).
    :ivar json: wire name (``continue``).
    :ivar type: the annotation without ``| None`` (``list[Container]``, ``int | str``, ...).
    :ivar kind: node kind of the value: object, list, map, scalar or any.
    :ivar doc: short description, possibly empty.
    :ivar format: ``int32``, ``int64``, ``double``, ``byte``, ``date-time``,
        ``int-or-string``, ``quantity`` or None; for lists and maps, of the elements.
    :ivar required: whether Kubernetes marks the field required.
    :ivar patch_strategy: ``merge``, ``retainKeys``, ``merge,retainKeys``, ``replace`` or None.
    :ivar patch_merge_key: key identifying list elements for a ``merge`` patch, or None.
    :ivar list_type: ``atomic``, ``set`` or ``map`` (server-side apply), or None.
    :ivar list_map_keys: keys of a ``map`` list.
    :ivar map_type: ``atomic`` or ``granular`` for structs and maps, or None.
    """

    name: str
    json: str
    type: Any
    kind: str
    doc: str = ""
    format: str | None = None
    required: bool = False
    patch_strategy: str | None = None
    patch_merge_key: str | None = None
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None
    schema: Schema = attrs.field(default=None, repr=False, eq=False)


class Schema:
    """A compiled view of one position in a document (see the module docstring).

    Build with :func:`schema_for`; never construct directly.
    """

    __slots__ = ("_fields", "_item", "_model_schema", "format", "info", "kind", "model", "py_type")

    def __init__(
        self,
        kind: str,
        *,
        model: type | None = None,
        py_type: Any = None,
        fmt: str | None = None,
        item: Schema | None = None,
        info: FieldInfo | None = None,
    ) -> None:
        self.kind = kind
        self.model = model
        self.py_type = py_type
        self.format = fmt
        self.info = info
        self._item = item
        self._fields: dict[str, FieldInfo] | None = None
        self._model_schema: Schema | None = None

    def __repr__(self) -> str:
        what = self.model.__name__ if self.model is not None else _go_type(self)
        where = f" field {self.info.json!r}" if self.info is not None else ""
        return f"<Schema {self.kind} {what}{where}>"

    # ----- introspection ------------------------------------------------------------

    @property
    def fields(self) -> Mapping[str, FieldInfo]:
        """JSON name -> :class:`FieldInfo` of an object node; empty for other kinds."""
        if self.kind != OBJECT:
            return {}
        root = self._root()
        if root._fields is None:
            root._fields = _build_fields(root.model)  # type: ignore[arg-type]
        return root._fields

    @property
    def required(self) -> tuple[str, ...]:
        """JSON names of the required fields of an object node."""
        return tuple(name for name, f in self.fields.items() if f.required)

    def _root(self) -> Schema:
        if self._model_schema is None:
            self._model_schema = schema_for(self.model)  # type: ignore[arg-type]
        return self._model_schema

    # ----- strategic-merge-patch metadata protocol -------------------------------------

    def field(self, name: str) -> Schema:
        """Node of field ``name`` of an object, of any key's value of a map; else unknown."""
        if self.kind == MAP:
            return self.item()
        if self.kind != OBJECT:
            return UNKNOWN_SCHEMA
        info = self.fields.get(name)
        return info.schema if info is not None else UNKNOWN_SCHEMA

    def item(self) -> Schema:
        """Node of the elements of a list, or of the values of a map; unknown otherwise."""
        return self._item if self._item is not None else UNKNOWN_SCHEMA

    @property
    def patch_strategy(self) -> str | None:
        """Patch strategy of the field this node stands for, if any."""
        return self.info.patch_strategy if self.info is not None else None

    @property
    def patch_merge_key(self) -> str | None:
        """Merge key of the list field this node stands for, if any."""
        return self.info.patch_merge_key if self.info is not None else None

    @property
    def list_type(self) -> str | None:
        """Server-side-apply list type of the field this node stands for, if any."""
        return self.info.list_type if self.info is not None else None

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        """Key fields of a ``map`` list field."""
        return self.info.list_map_keys if self.info is not None else ()

    # ----- checking ---------------------------------------------------------------------

    def check(self, obj: Any, *, unknown: str = "warn") -> CheckResult:
        """Check a decoded JSON value against this schema, fixing it up in place.

        ``obj`` is modified in place: with ``unknown`` set to ``"warn"`` or ``"ignore"``
        unknown fields are deleted from the dicts that hold them, and in every mode JSON
        numbers in quantity fields are replaced by canonical quantity strings.  Both happen
        even when type errors are found; nothing else is ever changed.

        :param obj: the decoded body (usually a dict) to check.
        :param unknown: ``"strict"`` (unknown fields are kept and make the result not ok),
            ``"warn"`` or ``"ignore"`` (unknown fields are pruned; both report them in
            :attr:`CheckResult.unknown`, the caller decides whether to warn).
        :returns: the errors and unknown fields found.
        :raises ValueError: for an invalid ``unknown`` mode.
        """
        if unknown not in _UNKNOWN_MODES:
            raise ValueError(f"unknown must be one of {_UNKNOWN_MODES}, not {unknown!r}")
        run = _Run(unknown != "strict")
        if obj is not None:
            entry = _entry_for(self)
            types_, scalar, sub = entry
            if types_ is not None and obj.__class__ not in types_ and not _slow_accepts(obj, entry):
                message = f"cannot unmarshal {_json_kind(obj)} into value of type"
                run.errors.append(("", f"{message} {_go_type(self)}"))
                return CheckResult(tuple(run.errors), (), unknown)
            if scalar is not None:
                msg = scalar(obj)
                if msg is not None and not isinstance(msg, _Replace):
                    run.errors.append(("", msg))
            if sub is not None:
                sub(obj, run)
        if not run.errors and not run.unknown:
            return _OK[unknown]
        return CheckResult(tuple(run.errors), tuple(run.unknown), unknown)


UNKNOWN_SCHEMA = Schema(UNKNOWN)
"""The node for positions no model describes: no fields, no items, no metadata."""


class CheckResult:
    """Outcome of :meth:`Schema.check`.

    :ivar errors: ``(path, message)`` pairs, e.g. ``("spec.replicas", "cannot unmarshal
        string into field of type int32")``; the path is ``""`` for the whole document.
    :ivar unknown: paths of unknown fields, e.g. ``"spec.containers[0].imagePullPolcy"``.
    :ivar mode: the ``unknown`` mode the check ran in.
    """

    __slots__ = ("errors", "mode", "unknown")

    def __init__(self, errors: tuple[tuple[str, str], ...], unknown: tuple[str, ...], mode: str):
        self.errors = errors
        self.unknown = unknown
        self.mode = mode

    @property
    def unknown_fields(self) -> tuple[str, ...]:
        """Same as :attr:`unknown`."""
        return self.unknown

    @property
    def ok(self) -> bool:
        """True when there are no type errors (and, in strict mode, no unknown fields)."""
        return not self.errors and not (self.mode == "strict" and self.unknown)

    def messages(self) -> list[str]:
        """One line per problem: ``"<path>: <message>"`` and ``unknown field "<path>"``."""
        out = [f"{path}: {msg}" if path else msg for path, msg in self.errors]
        out.extend(f'unknown field "{path}"' for path in self.unknown)
        return out

    def __repr__(self) -> str:
        return f"CheckResult(errors={self.errors!r}, unknown={self.unknown!r})"


_OK = {mode: CheckResult((), (), mode) for mode in _UNKNOWN_MODES}


# --------------------------------------------------------------------------------------
# Building schema nodes from models
# --------------------------------------------------------------------------------------

_CACHE: dict[type, Schema] = {}


def schema_for(model: type) -> Schema:
    """The (cached) root schema node of an attrs model class.

    :param model: an attrs class from :mod:`kubeling.api.objects` or a plugin's model
        following the same conventions.
    :returns: the compiled schema.
    :raises TypeError: if ``model`` is not an attrs class.
    """
    node = _CACHE.get(model)
    if node is None:
        if not attrs.has(model):
            raise TypeError(f"{model!r} is not an attrs class")
        node = Schema(OBJECT, model=model, py_type=model)
        _CACHE[model] = node
    return node


def _strip_none(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = tuple(a for a in typing.get_args(tp) if a is not type(None))
        if len(args) == 1:
            return args[0]
        if set(args) == {int, str}:
            return int | str
        raise TypeError(f"unsupported union {tp!r}")
    return tp


def _node(tp: Any, fmt: str | None, info: FieldInfo | None = None) -> Schema:
    """Schema node for an annotation; ``fmt`` applies to the scalar leaf."""
    tp = _strip_none(tp)
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return Schema(ANY, py_type=Any, info=info)
    if origin is list:
        (arg,) = typing.get_args(tp)
        return Schema(LIST, py_type=tp, item=_node(arg, fmt), info=info)
    if origin is dict:
        _, arg = typing.get_args(tp)
        return Schema(MAP, py_type=tp, item=_node(arg, fmt), info=info)
    if isinstance(tp, type) and attrs.has(tp):
        return Schema(OBJECT, model=tp, py_type=tp, info=info)
    if tp in (str, int, bool, float) or tp == int | str:
        return Schema(SCALAR, py_type=tp, fmt=fmt, info=info)
    raise TypeError(f"unsupported field type {tp!r}")


def _build_fields(model: type) -> dict[str, FieldInfo]:
    hints = typing.get_type_hints(model)
    out: dict[str, FieldInfo] = {}
    for a in attrs.fields(model):
        md = a.metadata
        wire = md.get("json", a.name)
        tp = _strip_none(hints.get(a.name, a.type))
        fmt = md.get("format")
        info = FieldInfo(
            name=a.name,
            json=wire,
            type=tp,
            kind=UNKNOWN,
            doc=md.get("doc", ""),
            format=fmt,
            required=bool(md.get("required", False)),
            patch_strategy=md.get("patch_strategy"),
            patch_merge_key=md.get("patch_merge_key"),
            list_type=md.get("list_type"),
            list_map_keys=tuple(md.get("list_map_keys", ())),
            map_type=md.get("map_type"),
        )
        node = _node(tp, fmt, info)
        # FieldInfo is frozen; fill in the back-references once.
        object.__setattr__(info, "kind", node.kind)
        object.__setattr__(info, "schema", node)
        out[wire] = info
    return out


# --------------------------------------------------------------------------------------
# Compiled checkers
#
# Every node compiles to an *entry* ``(types, scalar, sub)``:
#   types   frozenset of exact classes accepted on the fast path, or None for "anything";
#   scalar  ``f(value) -> None | str | _Replace`` extra check of a scalar (range, format);
#   sub     ``f(value, run) -> None`` recursive check of a list, map or object.
# --------------------------------------------------------------------------------------

_Entry = tuple[frozenset[type] | None, Callable[[Any], Any] | None, Callable[..., None] | None]


class _Replace:
    """Returned by a scalar check to replace the value (quantity numbers)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Key:
    """A map key on the path stack (rendered as ``[key]``)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class _Run:
    """State of one :meth:`Schema.check` call."""

    __slots__ = ("errors", "path", "prune", "unknown")

    def __init__(self, prune: bool) -> None:
        self.prune = prune
        self.path: list[Any] = []
        self.errors: list[tuple[str, str]] = []
        self.unknown: list[str] = []

    def error(self, last: Any, message: str) -> None:
        self.errors.append((_render(self.path, last), message))


def _render(path: list[Any], last: Any = None) -> str:
    parts: list[str] = []
    for seg in (*path, last) if last is not None else path:
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif isinstance(seg, _Key):
            parts.append(f"[{seg.key}]")
        else:
            parts.append(f".{seg}" if parts else seg)
    return "".join(parts)


_ENTRIES: dict[int, _Entry] = {}
_OBJECT_ENTRIES: dict[type, _Entry] = {}


def _entry_for(node: Schema) -> _Entry:
    if node.kind == OBJECT:
        return _object_entry(node.model)  # type: ignore[arg-type]
    entry = _ENTRIES.get(id(node))
    if entry is None:
        entry = _compile(node)
        _ENTRIES[id(node)] = entry
    return entry


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)


def _go_type(node: Schema) -> str:
    """Go-like name of a node's type for messages (``[]Container``, ``int32``)."""
    if node.kind == OBJECT:
        return node.model.__name__  # type: ignore[union-attr]
    if node.kind == LIST:
        return "[]" + _go_type(node.item())
    if node.kind == MAP:
        return "map[string]" + _go_type(node.item())
    if node.kind == SCALAR:
        fmt = node.format
        if fmt == "int-or-string" or node.py_type == int | str:
            return "IntOrString"
        if fmt == "quantity":
            return "Quantity"
        if fmt == "date-time":
            return "Time"
        if fmt == "byte":
            return "[]byte"
        if node.py_type is int:
            return fmt if fmt in ("int32", "int64") else "int64"
        if node.py_type is float:
            return "float64"
        return {str: "string", bool: "bool"}.get(node.py_type, "value")
    return "value"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"bool {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {_quote(shown)}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _type_message(value: Any, node: Schema) -> str:
    return f"cannot unmarshal {_json_kind(value)} into field of type {_go_type(node)}"


def _slow_accepts(value: Any, entry: _Entry) -> bool:
    """Accept instances of subclasses of the accepted types (never bool for a number)."""
    types_ = entry[0]
    if types_ is None:
        return True
    if isinstance(value, bool):
        return bool in types_
    return any(isinstance(value, t) for t in types_)


def _int_range(lo: int, hi: int, go: str) -> Callable[[Any], str | None]:
    def check(value: int) -> str | None:
        if lo <= value <= hi:
            return None
        return f"cannot unmarshal number {value} into field of type {go}"

    return check


def _check_quantity(value: Any) -> str | _Replace | None:
    try:
        canonical = canonicalize_quantity(value)
    except ValueError as exc:
        return str(exc)
    if value.__class__ is str:
        return None
    return _Replace(canonical)


def _check_time(value: str) -> str | None:
    if _RFC3339.match(value):
        return None
    return f"cannot parse {_quote(value)} as an RFC 3339 time"


def _check_base64(value: str) -> str | None:
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return f"illegal base64 data in {_quote(value[:40])}"
    return None


_STR = frozenset({str})
_INT = frozenset({int})
_BOOL = frozenset({bool})
_NUMBER = frozenset({int, float})
_INT_OR_STR = frozenset({int, str})
_QUANTITY = frozenset({str, int, float})
_LIST = frozenset({list})
_DICT = frozenset({dict})


def _compile(node: Schema) -> _Entry:
    kind = node.kind
    if kind in (ANY, UNKNOWN):
        return (None, None, None)
    if kind == SCALAR:
        return _compile_scalar(node)
    if kind == LIST:
        return (_LIST, None, _list_checker(node.item()))
    if kind == MAP:
        return (_DICT, None, _map_checker(node.item()))
    if kind == OBJECT:
        return _object_entry(node.model)  # type: ignore[arg-type]
    raise AssertionError(kind)


def _compile_scalar(node: Schema) -> _Entry:
    fmt, tp = node.format, node.py_type
    if fmt == "quantity":
        return (_QUANTITY, _check_quantity, None)
    if fmt == "int-or-string" or tp == int | str:
        return (_INT_OR_STR, None, None)
    if tp is str:
        if fmt == "date-time":
            return (_STR, _check_time, None)
        if fmt == "byte":
            return (_STR, _check_base64, None)
        return (_STR, None, None)
    if tp is bool:
        return (_BOOL, None, None)
    if tp is int:
        if fmt == "int32":
            return (_INT, _int_range(*_INT32, "int32"), None)
        return (_INT, _int_range(*_INT64, fmt or "int64"), None)
    if tp is float:
        return (_NUMBER, None, None)
    raise AssertionError(tp)


def _object_entry(model: type) -> _Entry:
    entry = _OBJECT_ENTRIES.get(model)
    if entry is None:
        table: dict[str, tuple[_Entry, Schema]] = {}
        # Register before compiling the fields so that recursive models terminate.
        entry = (_DICT, None, _object_checker(table))
        _OBJECT_ENTRIES[model] = entry
        for wire, info in schema_for(model).fields.items():
            table[wire] = (_entry_for(info.schema), info.schema)
    return entry


def _object_checker(table: dict[str, tuple[_Entry, Schema]]) -> Callable[[dict, _Run], None]:
    get = table.get

    def check_object(obj: dict, run: _Run) -> None:
        bad: list[str] | None = None
        for key, value in obj.items():
            found = get(key)
            if found is None:
                if bad is None:
                    bad = [key]
                else:
                    bad.append(key)
                continue
            if value is None:
                continue
            entry = found[0]
            types_, scalar, sub = entry
            if (
                types_ is not None
                and value.__class__ not in types_
                and not _slow_accepts(value, entry)
            ):
                run.error(key, _type_message(value, found[1]))
                continue
            if scalar is not None:
                msg = scalar(value)
                if msg is not None:
                    if msg.__class__ is _Replace:
                        obj[key] = msg.value
                    else:
                        run.error(key, msg)
            elif sub is not None:
                path = run.path
                path.append(key)
                sub(value, run)
                path.pop()
        if bad is not None:
            rendered = _render(run.path)
            prefix = rendered + "." if rendered else ""
            run.unknown.extend(prefix + key for key in bad)
            if run.prune:
                for key in bad:
                    del obj[key]

    return check_object


def _list_checker(item: Schema) -> Callable[[list, _Run], None]:
    # Object entries are registered before their fields are compiled, so this is safe
    # for recursive models too.
    entry = _entry_for(item)
    types_, scalar, sub = entry

    def check_list(values: list, run: _Run) -> None:
        path = run.path
        for index, value in enumerate(values):
            if value is None:
                continue
            if (
                types_ is not None
                and value.__class__ not in types_
                and not _slow_accepts(value, entry)
            ):
                run.error(index, _type_message(value, item))
                continue
            if scalar is not None:
                msg = scalar(value)
                if msg is not None:
                    if msg.__class__ is _Replace:
                        values[index] = msg.value
                    else:
                        run.error(index, msg)
            elif sub is not None:
                path.append(index)
                sub(value, run)
                path.pop()

    if types_ is not None and scalar is None and sub is None:
        # A list of plain scalars (strings, ints, bools): one tight loop.
        plain = types_

        def check_plain_list(values: list, run: _Run) -> None:
            for value in values:
                if value.__class__ not in plain and value is not None:
                    check_list(values, run)
                    return

        return check_plain_list
    if types_ is None:
        return _noop
    return check_list


def _map_checker(item: Schema) -> Callable[[dict, _Run], None]:
    entry = _entry_for(item)
    types_, scalar, sub = entry

    def check_map(values: dict, run: _Run) -> None:
        path = run.path
        for key, value in values.items():
            if value is None:
                continue
            if (
                types_ is not None
                and value.__class__ not in types_
                and not _slow_accepts(value, entry)
            ):
                run.error(_Key(key), _type_message(value, item))
                continue
            if scalar is not None:
                msg = scalar(value)
                if msg is not None:
                    if msg.__class__ is _Replace:
                        values[key] = msg.value
                    else:
                        run.error(_Key(key), msg)
            elif sub is not None:
                path.append(_Key(key))
                sub(value, run)
                path.pop()

    if types_ is not None and scalar is None and sub is None:
        plain = types_

        def check_plain_map(values: dict, run: _Run) -> None:
            for value in values.values():
                if value.__class__ not in plain and value is not None:
                    check_map(values, run)
                    return

        return check_plain_map
    if types_ is None:
        return _noop
    return check_map


def _noop(value: Any, run: _Run) -> None:
    return None
