"""Object encoding: JSON on the wire and in storage, with resourceVersion from storage.

Storage holds an object's JSON *without* ``metadata.resourceVersion``; the revision the
storage reports for the key is the resourceVersion (as in Kubernetes over etcd).  Objects
are stored with ``apiVersion``, ``kind`` and ``metadata`` first, so the resourceVersion can
be spliced into the stored bytes without re-encoding (what makes a 10,000-object list a
join of byte strings).
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from kubeling.api.errors import ApiError

__all__ = [
    "decode_body",
    "decode_stored",
    "dumps",
    "encode_for_storage",
    "loads",
    "parse_yaml",
    "stored_with_rv",
]

try:  # the C loader is much faster where PyYAML was built with libyaml
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader

PROTOBUF = "application/vnd.kubernetes.protobuf"

dumps = orjson.dumps
loads = orjson.loads


def decode_body(body: bytes, content_type: str) -> Any:
    """Parse a request body as JSON or YAML; malformed input is a 400 naming the problem."""
    if not body.strip():
        raise ApiError.bad_request("the request body is empty; an object was expected")
    if content_type.startswith(PROTOBUF):
        from kubeling.api.protobuf import ProtobufError, UnknownKindError, decode_request

        try:
            return decode_request(body)
        except UnknownKindError as exc:
            raise ApiError.unsupported_media_type(
                PROTOBUF, ("application/json", "application/yaml")) from exc
        except ProtobufError as exc:
            raise ApiError.bad_request(f"the request body is not valid Kubernetes protobuf: "
                                       f"{exc}") from None
    if "yaml" in content_type:
        return parse_yaml(_YamlLoader(body))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError.bad_request(f"the request body is not valid JSON: {exc}") from None


def parse_yaml(loader: Any) -> Any:
    """The one document a YAML loader (constructed over a request body) reads; malformed
    YAML is a 400 naming the line and column."""
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ApiError.bad_request(f"the request body is not valid YAML{where}: "
                                   f"{problem}") from None
    finally:
        loader.dispose()


def encode_for_storage(obj: dict[str, Any]) -> bytes:
    """The stored form: apiVersion, kind, metadata (without resourceVersion), the rest."""
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
    ordered: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "metadata": meta}
    for key, value in obj.items():
        if key not in ordered:
            ordered[key] = value
    return orjson.dumps(ordered)


def stored_with_rv(value: bytes, revision: int) -> bytes:
    """The stored bytes with ``"resourceVersion"`` spliced in first in ``metadata``."""
    marker = value.find(b'"metadata":{', 0, 200)
    if marker < 0:
        obj = orjson.loads(value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        return orjson.dumps(obj)
    cut = marker + 12
    rv = b'"resourceVersion":"' + str(revision).encode() + b'"'
    if value[cut:cut + 1] != b"}":
        rv += b","
    return value[:cut] + rv + value[cut:]


def decode_stored(value: bytes, revision: int) -> dict[str, Any]:
    """A stored object as a dict with its resourceVersion."""
    obj: dict[str, Any] = orjson.loads(value)
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = meta = {}
    meta["resourceVersion"] = str(revision)
    return obj
