"""Label and field selectors, with Kubernetes' grammar, semantics and error messages.

Label selectors come from the ``labelSelector`` query parameter (``kubectl -l``) as a string,
or from ``metav1.LabelSelector`` objects inside specs (``matchLabels`` / ``matchExpressions``).
Field selectors come from the ``fieldSelector`` query parameter (``kubectl --field-selector``).

Both are parsed once into immutable objects whose ``matches`` is plain Python, cheap enough
to run against every object of a 10 000-item list and against every watch event:

>>> sel = parse_label_selector("app=web, tier in (front,edge), !canary")
>>> sel.matches({"app": "web", "tier": "edge"})
True
>>> fs = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed")
>>> fs.matches_object({"spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}})
True

Parse errors raise :class:`SelectorError` (a :class:`ValueError`) whose message is the one the
Kubernetes API server puts in its ``400 BadRequest`` ``Status``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Literal, NamedTuple

__all__ = [
    "DOES_NOT_EXIST",
    "DOUBLE_EQUALS",
    "EQUALS",
    "EXISTS",
    "GREATER_THAN",
    "IN",
    "LESS_THAN",
    "MATCH_EVERYTHING",
    "MATCH_NOTHING",
    "METADATA_FIELDS",
    "NOT_EQUALS",
    "NOT_IN",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "label_selector_from_dict",
    "label_selector_from_set",
    "object_field_getter",
    "parse_field_selector",
    "parse_label_selector",
    "validate_label_key",
    "validate_label_value",
]


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed or is not valid.

    The message follows the Kubernetes API server's wording, so it can go into a ``Status``
    error body unchanged.
    """


# --------------------------------------------------------------------------------------------
# Operators (the spelling of Kubernetes' selection.Operator values)
# --------------------------------------------------------------------------------------------

EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_ALL_OPERATORS = (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)

# --------------------------------------------------------------------------------------------
# Label key / value validation (Kubernetes' IsQualifiedName / IsValidLabelValue)
# --------------------------------------------------------------------------------------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(_QNAME_FMT)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QNAME_MAX = 63
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX = 253
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX = 63


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # Kubernetes' wording, including its double space before each " or ".
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _qualified_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if _byte_len(prefix) > _DNS1123_SUBDOMAIN_MAX:
                errs.append("prefix part " + _max_len_error(_DNS1123_SUBDOMAIN_MAX))
            if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
                errs.append(
                    "prefix part "
                    + _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
                )
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > _QNAME_MAX:
        errs.append("name part " + _max_len_error(_QNAME_MAX))
    if not _QNAME_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if _byte_len(value) > _LABEL_VALUE_MAX:
        errs.append(_max_len_error(_LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


def _go_quote(value: str) -> str:
    """Approximate Go's ``%q`` for a string."""
    return json.dumps(value, ensure_ascii=False)


def _go_string_slice(values: Iterable[str]) -> str:
    """Go's ``%#v`` of a ``[]string``."""
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _invalid(path: str, shown_value: str, detail: str) -> str:
    """One ``field.Invalid`` error, formatted as Kubernetes' ``field.Error.Error()``."""
    return f"{path}: Invalid value: {shown_value}: {detail}"


def _aggregate(errors: list[str]) -> str:
    """Kubernetes' ``utilerrors.Aggregate`` message: one error alone, else ``[a, b]``."""
    unique = list(dict.fromkeys(errors))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def validate_label_key(key: str) -> list[str]:
    """Return the problems with a label key (empty list when valid).

    A key is a qualified name: an optional DNS-subdomain prefix and ``/``, then a name of
    at most 63 alphanumerics, ``-``, ``_`` or ``.``, starting and ending alphanumerically.
    """
    return _qualified_name_errors(key)


def validate_label_value(value: str) -> list[str]:
    """Return the problems with a label value (empty list when valid): at most 63 characters,
    empty or alphanumerics, ``-``, ``_`` and ``.`` starting and ending alphanumerically."""
    return _label_value_errors(value)


# --------------------------------------------------------------------------------------------
# Requirements and label selectors
# --------------------------------------------------------------------------------------------

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_GO_INT_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``: None where Go returns an error."""
    if not _GO_INT_RE.fullmatch(text):
        return None
    number = int(text)
    if number < _INT64_MIN or number > _INT64_MAX:
        return None
    return number


_Predicate = Callable[[Mapping[str, str]], bool]


class Requirement(NamedTuple):
    """One ``key <operator> values`` term of a label selector.

    ``operator`` is one of :data:`EQUALS`, :data:`DOUBLE_EQUALS`, :data:`NOT_EQUALS`,
    :data:`IN`, :data:`NOT_IN`, :data:`EXISTS`, :data:`DOES_NOT_EXIST`,
    :data:`GREATER_THAN`, :data:`LESS_THAN`; ``values`` is sorted and de-duplicated.
    Build checked requirements with :meth:`Requirement.new`.
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def new(
        cls, key: str, operator: str, values: Iterable[str] = (), *, path: str = ""
    ) -> Requirement:
        """Build a requirement, validating it exactly as Kubernetes' ``NewRequirement`` does.

        :param key: the label key, a qualified name.
        :param operator: one of the operator constants of this module.
        :param values: the values; sorted and de-duplicated here.
        :param path: field path prefix for error messages (e.g. ``"spec.selector"``).
        :raises SelectorError: with the aggregated ``field.Invalid`` messages.
        """
        # a parsed value set is validated in sorted order, as Kubernetes' parser hands its
        # sets over sorted (error messages index the values in that order)
        raw = sorted(values) if isinstance(values, set | frozenset) else list(values)
        vals = tuple(sorted(set(raw)))
        prefix = f"{path}." if path else ""
        errors: list[str] = []
        key_errs = _qualified_name_errors(key)
        if key_errs:
            errors.append(_invalid(f"{prefix}key", _go_quote(key), "; ".join(key_errs)))
        values_path = f"{prefix}values"
        if operator in (IN, NOT_IN):
            if not raw:
                errors.append(
                    _invalid(
                        values_path,
                        _go_string_slice(raw),
                        "for 'in', 'notin' operators, values set can't be empty",
                    )
                )
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(raw) != 1:
                errors.append(
                    _invalid(
                        values_path,
                        _go_string_slice(raw),
                        "exact-match compatibility requires one single value",
                    )
                )
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if raw:
                errors.append(
                    _invalid(
                        values_path,
                        _go_string_slice(raw),
                        "values set must be empty for exists and does not exist",
                    )
                )
        elif operator in (GREATER_THAN, LESS_THAN):
            if len(raw) != 1:
                errors.append(
                    _invalid(
                        values_path,
                        _go_string_slice(raw),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    )
                )
            for i, v in enumerate(raw):
                if _parse_int64(v) is None:
                    errors.append(
                        _invalid(
                            f"{values_path}[{i}]",
                            _go_quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        )
                    )
        else:
            supported = ", ".join(_go_quote(op) for op in _ALL_OPERATORS)
            errors.append(
                f"{prefix}operator: Unsupported value: {_go_quote(operator)}: "
                f"supported values: {supported}"
            )
        for i, v in enumerate(raw):
            value_errs = _label_value_errors(v)
            if value_errs:
                errors.append(
                    _invalid(f"{values_path}[{i}][{key}]", _go_quote(v), "; ".join(value_errs))
                )
        if errors:
            raise SelectorError(_aggregate(errors))
        return cls(key, operator, vals)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfy this requirement (Kubernetes' ``Requirement.Matches``)."""
        return _compile_requirement(self)(labels if labels is not None else _NO_LABELS)

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        joined = ",".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({joined})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


_NO_LABELS: Mapping[str, str] = {}


def _compile_requirement(req: Requirement) -> _Predicate:
    """A closure testing one requirement against a labels mapping (never None)."""
    key, op, values = req
    if op in (EQUALS, DOUBLE_EQUALS, IN):
        if len(values) == 1:
            (value,) = values
            return lambda ls: ls.get(key) == value
        value_set = frozenset(values)
        return lambda ls: ls.get(key) in value_set
    if op in (NOT_EQUALS, NOT_IN):
        if len(values) == 1:
            (value,) = values
            return lambda ls: ls.get(key) != value
        value_set = frozenset(values)
        return lambda ls: ls.get(key) not in value_set
    if op == EXISTS:
        return lambda ls: key in ls
    if op == DOES_NOT_EXIST:
        return lambda ls: key not in ls
    if op in (GREATER_THAN, LESS_THAN):
        bound = _parse_int64(values[0]) if len(values) == 1 else None
        if bound is None:
            return lambda ls: False
        greater = op == GREATER_THAN

        def compare(ls: Mapping[str, str]) -> bool:
            raw = ls.get(key)
            if raw is None:
                return False
            number = _parse_int64(raw)
            if number is None:
                return False
            return number > bound if greater else number < bound

        return compare
    return lambda ls: False


class LabelSelector:
    """An immutable, pre-compiled label selector: the AND of its requirements.

    ``LabelSelector()`` (no requirements) matches everything; :data:`MATCH_NOTHING` matches
    nothing. Build them with :func:`parse_label_selector`, :func:`label_selector_from_dict`
    or :func:`label_selector_from_set`.
    """

    __slots__ = ("_match", "_nothing", "_requirements")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        reqs = tuple(sorted(requirements, key=lambda r: r.key))
        self._requirements = reqs
        self._nothing = nothing
        self._match = self._compile()

    def _compile(self) -> _Predicate:
        if self._nothing:
            return lambda ls: False
        reqs = self._requirements
        if not reqs:
            return lambda ls: True
        if all(r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1 for r in reqs):
            # The common case (matchLabels, app=x,tier=y): a C-level subset test of items.
            wanted = {r.key: r.values[0] for r in reqs}
            if len(wanted) == len(reqs):
                wanted_items = wanted.items()
                if len(wanted) == 1:
                    ((key, value),) = wanted_items
                    return lambda ls: ls.get(key) == value
                return lambda ls: wanted_items <= ls.items()
        predicates = tuple(_compile_requirement(r) for r in reqs)
        if len(predicates) == 1:
            return predicates[0]

        def match_all(ls: Mapping[str, str]) -> bool:
            # A plain loop: measurably faster than all() over a generator in this hot path.
            for predicate in predicates:  # noqa: SIM110
                if not predicate(ls):
                    return False
            return True

        return match_all

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """The requirements, sorted by key (as Kubernetes sorts them)."""
        return self._requirements

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches every label set).

        As in Kubernetes, the match-nothing selector is *not* empty.
        """
        return not self._nothing and not self._requirements

    @property
    def matches_nothing(self) -> bool:
        """True for the selector that matches no label set at all."""
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether a label set satisfies every requirement; ``None`` counts as no labels."""
        return self._match(labels if labels is not None else _NO_LABELS)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        """Whether an API object (a dict) matches, by its ``metadata.labels``."""
        metadata = obj.get("metadata")
        labels = metadata.get("labels") if metadata else None
        return self._match(labels if labels is not None else _NO_LABELS)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have to match (``key=v``, ``key==v`` or
        ``key in (v)``), else None. Lets callers use an index instead of a full scan."""
        if self._nothing:
            return None
        for req in self._requirements:
            if req.key == key:
                if req.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(req.values) == 1:
                    return req.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        if self._nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._nothing == other._nothing and self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash((self._nothing, self._requirements))


MATCH_EVERYTHING = LabelSelector()
"""The selector with no requirements: matches every label set."""

MATCH_NOTHING = LabelSelector(nothing=True)
"""The selector that matches no label set (Kubernetes' ``labels.Nothing()``)."""


# --------------------------------------------------------------------------------------------
# The label selector string grammar (what `kubectl -l` sends)
# --------------------------------------------------------------------------------------------

# Token kinds
_T_ERROR = "error"
_T_END = "end"
_T_IDENT = "identifier"
_T_IN = "in"
_T_NOTIN = "notin"
_T_OPEN = "("
_T_CLOSE = ")"
_T_COMMA = ","
_T_NOT = "!"
_T_EQ = "="
_T_EQEQ = "=="
_T_NEQ = "!="
_T_GT = ">"
_T_LT = "<"

_SYMBOL_TOKENS = {
    "(": _T_OPEN,
    ")": _T_CLOSE,
    ",": _T_COMMA,
    "!": _T_NOT,
    "=": _T_EQ,
    "==": _T_EQEQ,
    "!=": _T_NEQ,
    ">": _T_GT,
    "<": _T_LT,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_KEYWORDS = {"in": _T_IN, "notin": _T_NOTIN}


def _lex(text: str) -> list[tuple[str, str]]:
    """Split a selector into (kind, literal) tokens, ending with an end token."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append((_T_END, ""))
            return tokens
        ch = text[i]
        if ch in _SPECIAL:
            # Longest run of special symbols that still spells a token.
            j = i + 1
            while j < n and text[j] in _SPECIAL and text[i : j + 1] in _SYMBOL_TOKENS:
                j += 1
            literal = text[i:j]
            tokens.append((_SYMBOL_TOKENS[literal], literal))
            i = j
        else:
            j = i
            while j < n and text[j] not in _SPECIAL and text[j] not in _WHITESPACE:
                j += 1
            literal = text[i:j]
            tokens.append((_KEYWORDS.get(literal, _T_IDENT), literal))
            i = j


class _Parser:
    """Recursive-descent parser following Kubernetes' label selector grammar."""

    __slots__ = ("pos", "tokens")

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    # "in"/"notin" are keywords only where an operator is expected; elsewhere identifiers.
    def peek(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[self.pos]
        if values and kind in (_T_IN, _T_NOTIN):
            kind = _T_IDENT
        return kind, literal

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.peek(values)
        self.pos += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind in (_T_IDENT, _T_NOT):
                try:
                    requirements.append(self.requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                kind, literal = self.take()
                if kind == _T_END:
                    return requirements
                if kind == _T_COMMA:
                    next_kind, next_literal = self.peek()
                    if next_kind not in (_T_IDENT, _T_NOT):
                        raise SelectorError(
                            f"found '{next_literal}', expected: identifier after ','"
                        )
                    continue
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            if kind == _T_END:
                return requirements
            raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        operator: str | None = None
        kind, literal = self.take()
        if kind == _T_NOT:
            operator = DOES_NOT_EXIST
            kind, literal = self.take()
        if kind != _T_IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key = literal
        key_errs = _qualified_name_errors(key)
        if key_errs:
            raise SelectorError(_invalid("<nil>", _go_quote(key), "; ".join(key_errs)))
        if operator == DOES_NOT_EXIST or self.peek()[0] in (_T_END, _T_COMMA):
            # "!key" stands alone; whatever follows it is the caller's to reject.
            return Requirement.new(key, operator or EXISTS)
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return Requirement.new(key, operator, values)

    def operator(self) -> str:
        kind, literal = self.take(values=False)
        op = {
            _T_IN: IN,
            _T_NOTIN: NOT_IN,
            _T_EQ: EQUALS,
            _T_EQEQ: DOUBLE_EQUALS,
            _T_NEQ: NOT_EQUALS,
            _T_GT: GREATER_THAN,
            _T_LT: LESS_THAN,
        }.get(kind)
        if op is None:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")
        return op

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != _T_OPEN:
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == _T_CLOSE:  # "()" is the set holding the empty string
            self.take()
            return {""}
        if kind not in (_T_IDENT, _T_COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifier_list()
        if self.take()[0] != _T_CLOSE:
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == _T_IDENT:
                values.add(literal)
                next_kind, next_literal = self.peek()
                if next_kind == _T_COMMA:
                    continue
                if next_kind == _T_CLOSE:
                    return values
                raise SelectorError(f"found '{next_literal}', expected: ',' or ')'")
            if kind == _T_COMMA:
                # Empty members: "(,a)", "(a,)", "(a,,b)" all include the empty string.
                if not values:
                    values.add("")
                next_kind = self.peek()[0]
                if next_kind == _T_CLOSE:
                    values.add("")
                    return values
                if next_kind == _T_COMMA:
                    self.take()
                    values.add("")
                continue
            raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        kind = self.peek()[0]
        if kind in (_T_END, _T_COMMA):
            return {""}
        kind, literal = self.take()
        if kind == _T_IDENT:
            return {literal}
        raise SelectorError(f"found '{literal}', expected: identifier")


@functools.lru_cache(maxsize=1024)
def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector string as Kubernetes does (``labels.Parse``).

    Grammar: comma-separated requirements (AND), each one of ``key=value``, ``key==value``,
    ``key!=value``, ``key in (v1,v2)``, ``key notin (v1,v2)``, ``key`` (exists), ``!key``
    (does not exist), ``key>N`` / ``key<N`` (integer comparison). Whitespace between tokens
    is ignored; ``""`` is the empty selector, which matches everything. Results are cached,
    so parsing the same string again (every watch of a kubelet, say) is free.

    :param text: the ``labelSelector`` query parameter.
    :returns: the parsed, immutable selector.
    :raises SelectorError: with Kubernetes' message, e.g.
        ``unable to parse requirement: found '', expected: in, notin, =, ==, !=, gt, lt``.
    """
    if not text or text.isspace():
        return MATCH_EVERYTHING
    return LabelSelector(_Parser(text).parse())


def label_selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """A selector requiring exactly these ``key=value`` pairs (Kubernetes' ``SelectorFromSet``).

    Used for map-shaped selectors such as a Service's ``spec.selector`` or a
    ReplicationController's. ``None`` or ``{}`` give the match-everything selector; callers
    for whom "no selector" means "select nothing" (a Service without selector manages no
    endpoints) must check for that themselves. Keys and values are not validated here.
    """
    if not labels:
        return MATCH_EVERYTHING
    return LabelSelector(Requirement(k, EQUALS, (v,)) for k, v in labels.items())


_SELECTOR_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


def label_selector_from_dict(
    selector: Mapping[str, Any] | None,
    *,
    none_means: Literal["nothing", "everything"] = "nothing",
    path: str = "",
) -> LabelSelector:
    """Convert a ``metav1.LabelSelector`` dict into a :class:`LabelSelector`.

    ``{"matchLabels": {...}, "matchExpressions": [{"key", "operator", "values"}]}``, with
    operators ``In``, ``NotIn``, ``Exists`` and ``DoesNotExist``; all terms are ANDed.

    Kubernetes distinguishes the *absent* selector from the *empty* one: an empty selector
    (``{}``, or no terms) matches everything, while an absent one matches nothing
    (Kubernetes' ``LabelSelectorAsSelector``, used for workload selectors, pod affinity
    terms, PodDisruptionBudgets, ...). Where a field's documentation gives an absent
    selector another meaning, the caller says so with ``none_means="everything"``.

    :param selector: the selector object, or None when the field is absent.
    :param none_means: what ``None`` selects: ``"nothing"`` (default) or ``"everything"``.
    :param path: field path prefixed to error messages (e.g. ``"spec.selector"``).
    :returns: the selector.
    :raises SelectorError: for an unknown operator (``"Foo" is not a valid label selector
        operator``), ``In``/``NotIn`` without values, ``Exists``/``DoesNotExist`` with
        values, invalid keys or values, or a malformed object.
    """
    if selector is None:
        return MATCH_NOTHING if none_means == "nothing" else MATCH_EVERYTHING
    if not isinstance(selector, Mapping):
        raise SelectorError(
            f"{path or 'selector'}: must be an object, not {type(selector).__name__}"
        )
    prefix = f"{path}." if path else ""
    match_labels = selector.get("matchLabels") or {}
    match_expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise SelectorError(f"{prefix}matchLabels: must be an object of strings")
    if not isinstance(match_expressions, list):
        raise SelectorError(f"{prefix}matchExpressions: must be a list")
    if not match_labels and not match_expressions:
        return MATCH_EVERYTHING
    requirements: list[Requirement] = []
    for key, value in match_labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SelectorError(f"{prefix}matchLabels: must be an object of strings")
        requirements.append(Requirement.new(key, EQUALS, (value,), path=path))
    for index, expression in enumerate(match_expressions):
        expr_path = f"{prefix}matchExpressions[{index}]"
        if not isinstance(expression, Mapping):
            raise SelectorError(f"{expr_path}: must be an object")
        key = expression.get("key", "")
        operator = expression.get("operator", "")
        values = expression.get("values") or []
        if not isinstance(key, str):
            raise SelectorError(f"{expr_path}.key: must be a string")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"{expr_path}.values: must be a list of strings")
        op = _SELECTOR_OPERATORS.get(operator) if isinstance(operator, str) else None
        if op is None:
            shown = _go_quote(operator) if isinstance(operator, str) else json.dumps(operator)
            raise SelectorError(f"{shown} is not a valid label selector operator")
        requirements.append(Requirement.new(key, op, values, path=path))
    return LabelSelector(requirements)


# --------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------

METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
"""The field labels every kind supports (Kubernetes' default field label conversion)."""


class FieldRequirement(NamedTuple):
    """One ``field=value`` / ``field!=value`` term; ``operator`` is ``"="`` or ``"!="``
    (``==`` is parsed as ``=``). ``value`` is unescaped."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape_field_value(self.value)}"


def _escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    if "\\" not in value and "," not in value and "=" not in value:
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Kubernetes prints the rune's code point here (e.g. 61); we show the character.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash (the backslash stays in the term)."""
    terms: list[str] = []
    start = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _field_value_to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def _resolve_path(obj: Any, parts: tuple[str, ...]) -> str:
    for part in parts:
        if not isinstance(obj, Mapping):
            return ""
        obj = obj.get(part)
        if obj is None:
            return ""
    return _field_value_to_str(obj)


def object_field_getter(obj: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A field getter over an API object dict, for :meth:`FieldSelector.matches`.

    Resolves dotted paths such as ``metadata.name``, ``spec.nodeName`` or ``status.phase``.
    Missing fields (and non-scalar ones) read as ``""``, as Kubernetes reads unset string
    fields; booleans read as ``"true"``/``"false"`` (``spec.unschedulable``,
    ``spec.hostNetwork``), numbers in decimal.
    """

    def get(path: str) -> str | None:
        return _resolve_path(obj, tuple(path.split(".")))

    return get


class FieldSelector:
    """An immutable, parsed field selector: the AND of ``field=value`` / ``field!=value`` terms.

    An empty selector matches everything.
    """

    __slots__ = ("_paths", "_requirements")

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        reqs = tuple(sorted(requirements))
        self._requirements = reqs
        self._paths = tuple((tuple(r.field.split(".")), r.operator == "=", r.value) for r in reqs)

    @property
    def requirements(self) -> list[FieldRequirement]:
        """The ``(field, operator, value)`` terms, sorted."""
        return list(self._requirements)

    @property
    def empty(self) -> bool:
        """True when the selector has no terms and so matches everything."""
        return not self._requirements

    @property
    def fields(self) -> frozenset[str]:
        """The field labels the selector mentions."""
        return frozenset(r.field for r in self._requirements)

    def matches(self, get_field: Callable[[str], str | None]) -> bool:
        """Whether the object behind ``get_field`` matches every term.

        :param get_field: returns a field label's value; ``None`` counts as ``""``.
        """
        for field, operator, value in self._requirements:
            actual = get_field(field)
            if actual is None:
                actual = ""
            if (actual == value) != (operator == "="):
                return False
        return True

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        """Whether an API object dict matches, resolving field labels as dotted paths
        (the fast path of ``matches(object_field_getter(obj))``)."""
        for parts, equal, value in self._paths:
            if (_resolve_path(obj, parts) == value) != equal:
                return False
        return True

    def validate(self, supported_fields: Collection[str]) -> FieldSelector:
        """Check every field label against those a kind supports.

        :param supported_fields: the kind's selectable field labels (include
            :data:`METADATA_FIELDS`).
        :returns: ``self``, for chaining.
        :raises SelectorError: ``field label not supported: <field>`` for the first unknown
            field, as the API server words it.
        """
        for req in self._requirements:
            if req.field not in supported_fields:
                raise SelectorError(f"field label not supported: {req.field}")
        return self

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must equal to match (from a ``field=value`` term), else None.

        Lets the watch cache and storage use an index, e.g. a kubelet's
        ``spec.nodeName=<node>``.
        """
        for req in self._requirements:
            if req.field == field and req.operator == "=":
                return req.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash(self._requirements)


@functools.lru_cache(maxsize=1024)
def _parse_field_selector(text: str) -> FieldSelector:
    requirements: list[FieldRequirement] = []
    for term in _split_field_terms(text):
        if not term:
            continue
        # The first operator occurrence splits the term ("!=" and "==" before "=");
        # field labels cannot be escaped, values can.
        for i in range(len(term)):
            if term.startswith("!=", i) or term.startswith("==", i):
                field, operator, raw = term[:i], term[i : i + 2], term[i + 2 :]
                break
            if term[i] == "=":
                field, operator, raw = term[:i], "=", term[i + 1 :]
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        value = _unescape_field_value(raw)
        requirements.append(FieldRequirement(field, "!=" if operator == "!=" else "=", value))
    return FieldSelector(requirements)


def parse_field_selector(
    text: str, supported_fields: Collection[str] | None = None
) -> FieldSelector:
    """Parse a field selector string as Kubernetes does (``fields.ParseSelector``).

    Terms are ``field=value``, ``field==value`` or ``field!=value``, joined by commas (AND).
    In values, ``\\,``, ``\\=`` and ``\\\\`` escape a comma, an equals sign and a backslash;
    an unescaped ``,``/``=`` in a value or any other escape is an error. Whitespace is
    significant, as in Kubernetes. ``""`` matches everything. Results are cached.

    :param text: the ``fieldSelector`` query parameter.
    :param supported_fields: when given, every field label must be one of these, else
        ``field label not supported: <field>`` (see :meth:`FieldSelector.validate`).
    :returns: the parsed selector.
    :raises SelectorError: e.g. ``invalid selector: 'a'; can't understand 'a'``.
    """
    selector = _parse_field_selector(text)
    if supported_fields is not None:
        selector.validate(supported_fields)
    return selector
