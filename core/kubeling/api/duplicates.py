"""Keys a request body sets more than once, as Kubernetes' strict decoding reports them.

With ``fieldValidation`` ``Strict`` or ``Warn`` (the default) the Kubernetes API server
reports duplicate fields: in JSON as ``duplicate field "spec.replicas"`` (the path as for
unknown fields), in YAML as yaml.v2 does, ``line 7: key "replicas" already set in map``.
Bodies are decoded with orjson, which silently keeps the last value, so this module looks
again, only on those requests:

* :func:`json_duplicates` first asks a cheap question that never misses a duplicate (are
  there more ``"...":`` key tokens in the body than keys in what orjson decoded?), and only
  when the answer is yes re-parses with ``json.loads`` and an ``object_pairs_hook`` to
  name the fields;
* :func:`decode_yaml_noting_duplicates` parses YAML bodies (once) with a loader that notes
  repeated mapping keys.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import orjson
import yaml

from kubeling.api.encoding import decode_body, parse_yaml

__all__ = ["NO_DUPLICATES", "Duplicates", "decode_yaml_noting_duplicates", "json_duplicates"]

_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')
_KEY_END = re.compile(rb'"[ \t\r\n]*:')

try:  # the C parser where PyYAML was built with libyaml (constructors stay Python)
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


@attrs.frozen
class Duplicates:
    """What a body sets twice."""

    fields: tuple[str, ...] = ()
    """JSON: the paths of fields set more than once, in document order."""
    order: dict[str, int] = attrs.field(factory=dict, eq=False)
    """JSON, when there are duplicates: every field path's rank in document order."""
    yaml_lines: tuple[str, ...] = ()
    """YAML: ``line N: key "k" already set in map`` for each repeated key."""

    def __bool__(self) -> bool:
        return bool(self.fields or self.yaml_lines)


NO_DUPLICATES = Duplicates()


def _may_have_duplicates(body: bytes, parsed: Any) -> bool:
    """False only when ``body`` certainly has no duplicate keys.

    Every key token of the body ends in ``"`` + whitespace + ``:``, so counting those gives
    at least the number of key tokens.  In orjson's compact output of ``parsed`` each kept
    key ends in ``":``; other ``":`` come from quotes inside strings, always escaped
    (``\\":``), so subtracting the escaped ones gives at most the number of keys kept.
    Equal counts leave no room for a dropped duplicate.
    """
    out = orjson.dumps(parsed)
    kept_at_most = out.count(b'":') - out.count(b'\\":')
    if _SPACED_COLON.search(body) is None:
        tokens_at_least = body.count(b'":')
    else:
        tokens_at_least = len(_KEY_END.findall(body))
    return tokens_at_least != kept_at_most


def _parse_noting_duplicates(body: bytes) -> tuple[Any, dict[int, tuple[dict[str, Any],
                                                                          list[str]]]]:
    found: dict[int, tuple[dict[str, Any], list[str]]] = {}

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            repeated: list[str] = []
            for key, _ in pairs:
                if key in seen and key not in repeated:
                    repeated.append(key)
                seen.add(key)
            found[id(obj)] = (obj, repeated)  # holding obj keeps its id unique
        return obj

    return json.loads(body, object_pairs_hook=hook), found


def _paths(tree: Any, found: dict[int, tuple[dict[str, Any], list[str]]]
           ) -> tuple[list[str], dict[str, int]]:
    """The duplicate fields' paths and every path's document rank (an iterative walk)."""
    duplicates: list[str] = []
    order: dict[str, int] = {}
    stack: list[tuple[str, Any, bool]] = [("", tree, False)]
    while stack:
        path, node, keyed = stack.pop()
        if keyed:
            order[path] = len(order)
        children: list[tuple[str, Any, bool]] = []
        if isinstance(node, dict):
            entry = found.get(id(node))
            repeated = entry[1] if entry is not None and entry[0] is node else []
            for key, value in node.items():
                child = f"{path}.{key}" if path else key
                if key in repeated:
                    duplicates.append(child)
                children.append((child, value, True))
        elif isinstance(node, list):
            children = [(f"{path}[{i}]", item, False) for i, item in enumerate(node)]
        stack.extend(reversed(children))
    duplicates.sort(key=order.__getitem__)
    return duplicates, order


def json_duplicates(body: bytes, parsed: Any) -> Duplicates:
    """The fields a JSON ``body`` sets more than once.

    :param body: the request body.
    :param parsed: orjson's decoding of ``body``, not yet changed.
    :returns: their paths (``metadata.name``, ``spec.containers[0].image``), in document
        order, with the rank of every path for ordering other messages alongside.
    """
    if not _may_have_duplicates(body, parsed):
        return NO_DUPLICATES
    try:
        tree, found = _parse_noting_duplicates(body)
    except (ValueError, RecursionError):
        return NO_DUPLICATES
    if not found:
        return NO_DUPLICATES
    fields, order = _paths(tree, found)
    return Duplicates(fields=tuple(fields), order=order)


class _NotingLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """A safe loader that notes each mapping key set twice (yaml.v2's message)."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self.repeated: list[tuple[int, str]] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    again = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
                if again:
                    line = key_node.start_mark.line + 1
                    shown = json.dumps(key) if isinstance(key, str) else str(key)
                    self.repeated.append((line, f"line {line}: key {shown} already set in map"))
        return super().construct_mapping(node, deep=deep)


def decode_yaml_noting_duplicates(body: bytes) -> tuple[Any, Duplicates]:
    """Decode a YAML request body as :func:`~kubeling.api.encoding.decode_body` does (same
    400s), noting the mapping keys it sets more than once, as yaml.v2 words them.

    :param body: the request body.
    :returns: the decoded body, and ``line N: key "k" already set in map`` per repeated
        key, in document order.
    """
    if not body.strip():
        return decode_body(body, "application/yaml"), NO_DUPLICATES  # its 400
    loader = _NotingLoader(body)
    obj = parse_yaml(loader)
    # nested mappings are built after their parents: back to document order
    lines = tuple(text for _, text in sorted(loader.repeated, key=lambda pair: pair[0]))
    return obj, Duplicates(yaml_lines=lines) if lines else NO_DUPLICATES
