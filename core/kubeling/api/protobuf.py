"""Kubernetes' protobuf encoding of API objects: decode request bodies, encode for tests.

kubectl and every client-go program send request bodies as
``application/vnd.kubernetes.protobuf``: the 4-byte magic ``k8s\\x00`` followed by a
``runtime.Unknown`` message whose ``typeMeta`` names the object's apiVersion and kind and
whose ``raw`` bytes are the object's own message.  :func:`decode_request` turns such a body
into exactly the dict the same object has in JSON, so the rest of the server never knows
which encoding a client used.  :func:`encode_object` is the inverse (tests use it to make
bodies without kubectl).

The wire format is read by hand (varints, fixed 32/64-bit values, length-delimited fields),
driven by the field tables in :mod:`kubeling.api.protobuf_fields`, which
``tools/gen_proto_fields.py`` generates; no protobuf library is needed, and none would
help much: the JSON shape needs Kubernetes-specific rules a generic library does not know.

What makes the result identical to JSON:

* Go's marshaller writes every *value* field, zero or not, while JSON drops zero values of
  ``omitempty`` fields: such fields (flag ``omitempty`` in the table) are dropped when zero,
  while zero values of pointer fields (``spec.replicas: 0``) and of required fields are kept;
* ``metav1.Time`` / ``MicroTime`` become RFC 3339 strings (``null`` for the zero time),
  ``Duration`` a Go duration string, ``IntOrString`` an int or a string, ``Quantity`` its
  string, ``RawExtension`` and ``FieldsV1`` the JSON they carry, ``bytes`` base64 text,
  map entries dicts;
* fields Go embeds inline (``Volume.volumeSource``, ``Probe.handler``, ...) are flattened
  into the parent object.

Unknown field numbers are skipped, as protobuf readers do, so newer clients still work.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kubeling.api.protobuf_fields import GROUP_VERSIONS, MESSAGES, Field

__all__ = [
    "CONTENT_TYPE",
    "MAGIC",
    "ProtobufError",
    "UnknownKindError",
    "decode_message",
    "decode_request",
    "encode_message",
    "encode_object",
    "go_duration",
    "message_for",
    "parse_go_duration",
]

MAGIC = b"k8s\x00"
"""The 4 bytes every Kubernetes protobuf body starts with."""

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
"""The media type of Kubernetes' protobuf encoding."""

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_RUNTIME = "k8s.io.apimachinery.pkg.runtime."
_TIME = _META + "Time"
_MICROTIME = _META + "MicroTime"
_DURATION = _META + "Duration"
_FIELDSV1 = _META + "FieldsV1"
_VERBS = _META + "Verbs"
_RAW = _RUNTIME + "RawExtension"
_UNKNOWN = _RUNTIME + "Unknown"
_INTSTR = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"

_MAX_DEPTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProtobufError(ValueError):
    """A body that is not valid Kubernetes protobuf, or does not fit the object's schema."""


class UnknownKindError(ProtobufError):
    """A well-formed body of an apiVersion/kind that has no known protobuf message."""


def message_for(api_version: str, kind: str) -> str:
    """The fully-qualified protobuf message name of a kind.

    meta/v1 kinds (``DeleteOptions``, ``Status``, ...) are found under any apiVersion, as
    clients send them with the apiVersion of the resource they act on.

    :param api_version: e.g. ``"v1"`` or ``"apps/v1"``.
    :param kind: e.g. ``"Deployment"``.
    :returns: e.g. ``"k8s.io.api.apps.v1.Deployment"``.
    :raises UnknownKindError: when no message is known for the pair.
    """
    package = GROUP_VERSIONS.get(api_version)
    if package is not None and f"{package}.{kind}" in MESSAGES:
        return f"{package}.{kind}"
    if _META + kind in MESSAGES:
        return _META + kind
    raise UnknownKindError(
        f"no protobuf encoding is known for kind {kind!r} of apiVersion {api_version!r}; "
        "send the object as application/json"
    )


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


def decode_request(body: bytes) -> dict[str, Any]:
    """Decode a Kubernetes protobuf request body into the object's JSON-shaped dict.

    :param body: the body: ``k8s\\x00`` then a ``runtime.Unknown`` message.
    :returns: the object as it would be in JSON, with ``apiVersion`` and ``kind`` set.
    :raises UnknownKindError: for a kind without a known protobuf message.
    :raises ProtobufError: for anything malformed, naming what and where.
    """
    return _decode_envelope(bytes(body), 0)


def decode_message(raw: bytes, message: str) -> Any:
    """Decode one protobuf message (no envelope) into its JSON value.

    :param raw: the message's bytes.
    :param message: its fully-qualified name, e.g. ``"k8s.io.api.core.v1.Pod"``.
    :returns: usually a dict; a string, number or None for the special types.
    :raises ProtobufError: for malformed input or an unknown message name.
    """
    if message not in MESSAGES:
        raise ProtobufError(f"unknown protobuf message {message}")
    data = bytes(raw)
    return _Decoder(data, 0).message(0, len(data), message, "")


def _decode_envelope(body: bytes, depth: int) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ProtobufError(
            "the request body is not Kubernetes protobuf: it does not start with k8s\\x00"
        )
    if depth > 4:
        raise ProtobufError("protobuf objects nested too deeply in RawExtensions")
    data = body[len(MAGIC) :]
    decoder = _Decoder(data, depth)
    envelope = decoder.unknown(0, len(data), "")
    api_version, kind = envelope["apiVersion"], envelope["kind"]
    if not api_version or not kind:
        raise ProtobufError("the protobuf envelope does not name the object's apiVersion and kind")
    encoding, content_type = envelope["contentEncoding"], envelope["contentType"]
    if encoding:
        raise ProtobufError(f"unsupported protobuf content encoding {encoding!r}")
    raw: bytes = envelope["raw"]
    if content_type.startswith("application/json"):
        obj = _json(raw, "raw")
        if not isinstance(obj, dict):
            raise ProtobufError("the JSON inside the protobuf envelope is not an object")
    elif content_type in ("", CONTENT_TYPE):
        message = message_for(api_version, kind)
        obj = _Decoder(raw, depth).message(0, len(raw), message, "")
    else:
        raise ProtobufError(f"unsupported content type {content_type!r} in the protobuf envelope")
    return {"apiVersion": api_version, "kind": kind, **obj}


def _json(raw: bytes, where: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"{where}: the embedded bytes are not valid JSON: {exc}") from None


_VARINT_TYPES = frozenset({"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"})
_FIXED64 = {"fixed64": "<Q", "sfixed64": "<q", "double": "<d"}
_FIXED32 = {"fixed32": "<I", "sfixed32": "<i", "float": "<f"}
_WIRE_OF = {
    **dict.fromkeys(_VARINT_TYPES, 0),
    **dict.fromkeys(_FIXED64, 1),
    **dict.fromkeys(_FIXED32, 5),
    "string": 2,
    "bytes": 2,
}


class _Decoder:
    """Reads messages out of one buffer."""

    __slots__ = ("buf", "depth")

    def __init__(self, buf: bytes, depth: int) -> None:
        self.buf = buf
        self.depth = depth

    # ----- primitives -------------------------------------------------------------------

    def varint(self, pos: int, end: int, path: str) -> tuple[int, int]:
        buf = self.buf
        result = shift = 0
        while True:
            if pos >= end:
                raise ProtobufError(f"{path or 'object'}: truncated varint")
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise ProtobufError(f"{path or 'object'}: varint longer than 10 bytes")

    def length(self, pos: int, end: int, path: str) -> tuple[int, int]:
        size, pos = self.varint(pos, end, path)
        if size > end - pos:
            raise ProtobufError(f"{path or 'object'}: length {size} runs past the end of the data")
        return pos, pos + size

    def skip(self, pos: int, end: int, wire: int, path: str) -> int:
        if wire == 0:
            return self.varint(pos, end, path)[1]
        if wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            return self.length(pos, end, path)[1]
        else:
            raise ProtobufError(f"{path or 'object'}: unsupported wire type {wire}")
        if pos > end:
            raise ProtobufError(f"{path or 'object'}: truncated fixed-size value")
        return pos

    def scalar(self, pos: int, end: int, wire: int, ftype: str, path: str) -> tuple[Any, int]:
        expected = _WIRE_OF[ftype]
        if wire != expected:
            raise ProtobufError(f"{path}: wire type {wire} does not fit a {ftype} field")
        if wire == 0:
            value, pos = self.varint(pos, end, path)
            return _from_varint(value, ftype), pos
        if wire == 2:
            start, pos = self.length(pos, end, path)
            chunk = self.buf[start:pos]
            if ftype == "bytes":
                return base64.b64encode(chunk).decode("ascii"), pos
            try:
                return chunk.decode("utf-8"), pos
            except UnicodeDecodeError:
                raise ProtobufError(f"{path}: string is not valid UTF-8") from None
        fmt = _FIXED64.get(ftype) or _FIXED32[ftype]
        size = struct.calcsize(fmt)
        if pos + size > end:
            raise ProtobufError(f"{path}: truncated {ftype}")
        return struct.unpack_from(fmt, self.buf, pos)[0], pos + size

    def packed(self, pos: int, end: int, ftype: str, path: str) -> tuple[list[Any], int]:
        start, stop = self.length(pos, end, path)
        values: list[Any] = []
        wire = _WIRE_OF[ftype]
        while start < stop:
            value, start = self.scalar(start, stop, wire, ftype, path)
            values.append(value)
        return values, stop

    def raw_fields(self, pos: int, end: int, path: str) -> dict[int, Any]:
        """The last value of each field of a small message: ints and byte strings."""
        out: dict[int, Any] = {}
        while pos < end:
            key, pos = self.varint(pos, end, path)
            num, wire = key >> 3, key & 7
            if wire == 0:
                out[num], pos = self.varint(pos, end, path)
            elif wire == 2:
                start, pos = self.length(pos, end, path)
                out[num] = self.buf[start:pos]
            else:
                pos = self.skip(pos, end, wire, path)
        return out

    # ----- messages -------------------------------------------------------------------------

    def message(self, pos: int, end: int, name: str, path: str) -> Any:
        special = _SPECIAL_DECODERS.get(name)
        if special is not None:
            return special(self, pos, end, path)
        if self.depth > _MAX_DEPTH:
            raise ProtobufError(f"{path}: objects nested too deeply")
        table = MESSAGES[name]
        out: dict[str, Any] = {}
        self.depth += 1
        try:
            while pos < end:
                key, pos = self.varint(pos, end, path)
                num, wire = key >> 3, key & 7
                if num == 0:
                    raise ProtobufError(f"{path or 'object'}: field number 0")
                fld = table.get(num)
                if fld is None:
                    pos = self.skip(pos, end, wire, path)
                    continue
                pos = self.field(out, fld, pos, end, wire, path)
        finally:
            self.depth -= 1
        return out

    def field(
        self, out: dict[str, Any], fld: Field, pos: int, end: int, wire: int, path: str
    ) -> int:
        jname, kind, ftype, repeated, map_kv, flags = fld
        where = f"{path}.{jname}" if path else jname
        if kind == "scalar":
            assert ftype is not None
            if repeated:
                if wire == 2 and ftype not in ("string", "bytes"):
                    values, pos = self.packed(pos, end, ftype, where)
                    out.setdefault(jname, []).extend(values)
                    return pos
                value, pos = self.scalar(pos, end, wire, ftype, where)
                out.setdefault(jname, []).append(value)
                return pos
            value, pos = self.scalar(pos, end, wire, ftype, where)
            if not value and "omitempty" in flags:
                out.pop(jname, None)
            else:
                out[jname] = value
            return pos
        if wire != 2:
            raise ProtobufError(f"{where}: wire type {wire} does not fit a {kind} field")
        start, pos = self.length(pos, end, where)
        if kind == "map":
            assert map_kv is not None
            key, value = self.map_entry(start, pos, map_kv, where)
            out.setdefault(jname, {})[key] = value
            return pos
        assert ftype is not None
        if repeated:
            items = out.setdefault(jname, [])
            items.append(self.message(start, pos, ftype, f"{where}[{len(items)}]"))
        elif "inline" in flags:
            out.update(self.message(start, pos, ftype, path))
        else:
            out[jname] = self.message(start, pos, ftype, where)
        return pos

    def map_entry(self, pos: int, end: int, map_kv: tuple[str, str], path: str) -> tuple[str, Any]:
        key_type, value_type = map_kv
        key: Any = None
        value: Any = None
        have_value = False
        while pos < end:
            tag, pos = self.varint(pos, end, path)
            num, wire = tag >> 3, tag & 7
            if num == 1:
                key, pos = self.scalar(pos, end, wire, key_type, path)
            elif num == 2:
                if value_type in _WIRE_OF:
                    value, pos = self.scalar(pos, end, wire, value_type, f"{path}[{key!r}]")
                else:
                    if wire != 2:
                        raise ProtobufError(f"{path}: map value has wire type {wire}")
                    start, pos = self.length(pos, end, path)
                    value = self.message(start, pos, value_type, f"{path}[{key!r}]")
                have_value = True
            else:
                pos = self.skip(pos, end, wire, path)
        if key is None:
            key = _zero(key_type)
        if not have_value:
            value = (
                _zero(value_type)
                if value_type in _WIRE_OF
                else self.message(end, end, value_type, f"{path}[{key!r}]")
            )
        if not isinstance(key, str):
            key = str(key)  # JSON object keys are strings
        return key, value

    # ----- special types ----------------------------------------------------------------

    def time(self, pos: int, end: int, path: str, micro: bool = False) -> str | None:
        if pos == end:
            return None  # the zero time: Go writes no fields, JSON says null
        raw = self.raw_fields(pos, end, path)
        seconds = _signed(_int(raw, 1, path), 64)
        nanos = _signed(_int(raw, 2, path), 64)
        try:
            moment = _EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            raise ProtobufError(f"{path}: timestamp {seconds}s is out of range") from None
        if not 1 <= moment.year <= 9999:
            raise ProtobufError(f"{path}: timestamp {seconds}s is out of range")
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if micro:
            text += f".{(nanos // 1000) % 1_000_000:06d}"
        return text + "Z"

    def microtime(self, pos: int, end: int, path: str) -> str | None:
        return self.time(pos, end, path, micro=True)

    def duration(self, pos: int, end: int, path: str) -> str:
        return go_duration(_signed(_int(self.raw_fields(pos, end, path), 1, path), 64))

    def int_or_string(self, pos: int, end: int, path: str) -> int | str:
        raw = self.raw_fields(pos, end, path)
        if _int(raw, 1, path) == 1:
            return self._text(raw.get(3, b""), path)
        return _signed(_int(raw, 2, path), 32)

    def quantity(self, pos: int, end: int, path: str) -> str:
        text = self._text(self.raw_fields(pos, end, path).get(1, b""), path)
        return text or "0"

    def raw_extension(self, pos: int, end: int, path: str) -> Any:
        raw = self.raw_fields(pos, end, path).get(1, b"")
        if not raw:
            return None
        if raw.startswith(MAGIC):
            return _decode_envelope(raw, self.depth + 1)
        return _json(raw, path)

    def unknown(self, pos: int, end: int, path: str) -> dict[str, Any]:
        raw = self.raw_fields(pos, end, path)
        type_meta = raw.get(1, b"")
        if not isinstance(type_meta, bytes):
            raise ProtobufError(f"{path or 'envelope'}: typeMeta is not a message")
        tm = _Decoder(type_meta, self.depth).raw_fields(0, len(type_meta), path)
        return {
            "apiVersion": self._text(tm.get(1, b""), path),
            "kind": self._text(tm.get(2, b""), path),
            "raw": raw.get(2, b""),
            "contentEncoding": self._text(raw.get(3, b""), path),
            "contentType": self._text(raw.get(4, b""), path),
        }

    def nested_unknown(self, pos: int, end: int, path: str) -> Any:
        env = self.unknown(pos, end, path)
        body = MAGIC + _encode_unknown(
            env["apiVersion"], env["kind"], env["raw"], env["contentEncoding"], env["contentType"]
        )
        return _decode_envelope(body, self.depth + 1)

    def fields_v1(self, pos: int, end: int, path: str) -> Any:
        raw = self.raw_fields(pos, end, path).get(1, b"")
        return _json(raw, path) if raw else None

    def verbs(self, pos: int, end: int, path: str) -> list[str]:
        out: list[str] = []
        while pos < end:
            key, pos = self.varint(pos, end, path)
            if key == (1 << 3) | 2:
                value, pos = self.scalar(pos, end, 2, "string", path)
                out.append(value)
            else:
                pos = self.skip(pos, end, key & 7, path)
        return out

    def _text(self, value: Any, path: str) -> str:
        if not isinstance(value, bytes):
            raise ProtobufError(f"{path or 'object'}: expected a string")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError(f"{path or 'object'}: string is not valid UTF-8") from None


_SPECIAL_DECODERS: dict[str, Callable[[_Decoder, int, int, str], Any]] = {
    _TIME: _Decoder.time,
    _MICROTIME: _Decoder.microtime,
    _DURATION: _Decoder.duration,
    _INTSTR: _Decoder.int_or_string,
    _QUANTITY: _Decoder.quantity,
    _RAW: _Decoder.raw_extension,
    _UNKNOWN: _Decoder.nested_unknown,
    _FIELDSV1: _Decoder.fields_v1,
    _VERBS: _Decoder.verbs,
}


def _int(raw: dict[int, Any], num: int, path: str) -> int:
    value = raw.get(num, 0)
    if not isinstance(value, int):
        raise ProtobufError(f"{path or 'object'}: field {num} should be an integer")
    return value


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value &= 0xFFFFFFFF
        if value >= 1 << 31:
            value -= 1 << 32
    return value


def _from_varint(value: int, ftype: str) -> int | bool:
    if ftype == "bool":
        return value != 0
    if ftype == "int64":
        return _signed(value, 64)
    if ftype == "int32":
        return _signed(value, 32)
    if ftype in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if ftype == "uint32":
        return value & 0xFFFFFFFF
    return value & ((1 << 64) - 1)


def _zero(ftype: str) -> Any:
    if ftype == "string" or ftype == "bytes":
        return ""
    if ftype == "bool":
        return False
    if ftype in ("double", "float"):
        return 0.0
    return 0


def go_duration(nanos: int) -> str:
    """Format nanoseconds as Go's ``time.Duration.String`` does (``1h2m3.5s``, ``1.5ms``).

    :param nanos: the duration in nanoseconds.
    :returns: the Go duration string.
    """
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000:
        return f"{sign}{n}ns"
    if n < 1_000_000:
        return f"{sign}{_decimal(n, 3)}µs"
    if n < 1_000_000_000:
        return f"{sign}{_decimal(n, 6)}ms"
    secs, frac = divmod(n, 1_000_000_000)
    hours, rest = divmod(secs, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    fraction = f"{frac:09d}".rstrip("0")
    return f"{sign}{text}{seconds}{'.' + fraction if fraction else ''}s"


def _decimal(n: int, digits: int) -> str:
    whole, frac = divmod(n, 10**digits)
    fraction = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{fraction}" if fraction else str(whole)


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------


def encode_object(
    obj: dict[str, Any], api_version: str | None = None, kind: str | None = None
) -> bytes:
    """Encode a JSON-shaped object as a Kubernetes protobuf body (magic + ``Unknown``).

    Only the fields present in ``obj`` are written (so :func:`decode_request` gives the
    same dict back, except for zero values of ``omitempty`` fields, which JSON would drop).

    :param obj: the object as in JSON.
    :param api_version: defaults to ``obj["apiVersion"]``.
    :param kind: defaults to ``obj["kind"]``.
    :returns: the request body.
    :raises ProtobufError: for a kind without a message, unknown fields or wrong types.
    """
    api_version = api_version or obj.get("apiVersion")
    kind = kind or obj.get("kind")
    if not api_version or not kind:
        raise ProtobufError("encode_object needs the object's apiVersion and kind")
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    raw = encode_message(body, message_for(api_version, kind))
    return MAGIC + _encode_unknown(api_version, kind, raw, "", "")


def encode_message(value: Any, message: str) -> bytes:
    """Encode a JSON value as one protobuf message (no envelope).

    :param value: the JSON value (a dict for ordinary messages).
    :param message: the fully-qualified message name.
    :returns: the message's bytes.
    :raises ProtobufError: for unknown fields or wrong types.
    """
    if message not in MESSAGES:
        raise ProtobufError(f"unknown protobuf message {message}")
    return bytes(_encode(value, message, ""))


def _encode_unknown(api_version: str, kind: str, raw: bytes, encoding: str, ctype: str) -> bytes:
    type_meta = _len_field(1, api_version.encode()) + _len_field(2, kind.encode())
    return (
        _len_field(1, type_meta)
        + _len_field(2, raw)
        + _len_field(3, encoding.encode())
        + _len_field(4, ctype.encode())
    )


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(num: int, wire: int) -> bytes:
    return _put_varint((num << 3) | wire)


def _len_field(num: int, data: bytes) -> bytes:
    return _key(num, 2) + _put_varint(len(data)) + data


_JSON_INDEX: dict[str, dict[str, tuple[int, Field, bool]]] = {}


def _json_index(message: str) -> dict[str, tuple[int, Field, bool]]:
    """JSON name -> (field number, field, is-inline) of a message, inline names included."""
    index = _JSON_INDEX.get(message)
    if index is None:
        index = {}
        for num, fld in MESSAGES[message].items():
            if "inline" in fld[5] and fld[2] is not None:
                for name in _json_index(fld[2]):
                    index.setdefault(name, (num, fld, True))
            else:
                index[fld[0]] = (num, fld, False)
        _JSON_INDEX[message] = index
    return index


def _encode(value: Any, message: str, path: str) -> bytes:
    special = _SPECIAL_ENCODERS.get(message)
    if special is not None:
        return special(value, path)
    if not isinstance(value, dict):
        raise ProtobufError(f"{path or 'object'}: expected an object, got {type(value).__name__}")
    index = _json_index(message)
    parts: list[tuple[int, bytes]] = []
    inline: dict[int, dict[str, Any]] = {}
    for name, item in value.items():
        entry = index.get(name)
        where = f"{path}.{name}" if path else name
        if entry is None:
            if name in ("apiVersion", "kind"):
                continue  # TypeMeta of an embedded object (DeleteOptions): not in protobuf
            raise ProtobufError(f"{where}: unknown field for protobuf message {message}")
        num, fld, is_inline = entry
        if is_inline:
            inline.setdefault(num, {})[name] = item
            continue
        parts.append((num, _encode_field(num, fld, item, where)))
    for num, sub in inline.items():
        ftype = MESSAGES[message][num][2]
        assert ftype is not None
        parts.append((num, _len_field(num, _encode(sub, ftype, path))))
    parts.sort(key=lambda part: part[0])
    return b"".join(data for _num, data in parts)


def _encode_field(num: int, fld: Field, item: Any, where: str) -> bytes:
    _jname, kind, ftype, repeated, map_kv, _flags = fld
    if item is None:
        if kind == "message" and not repeated and ftype in _NULLABLE_SPECIALS:
            return _len_field(num, b"")  # null Time etc.: the zero value
        return b""
    if kind == "map":
        assert map_kv is not None
        if not isinstance(item, dict):
            raise ProtobufError(f"{where}: expected an object, got {type(item).__name__}")
        out = bytearray()
        for key in sorted(item):
            entry = _encode_scalar(1, map_kv[0], key, where)
            if map_kv[1] in _WIRE_OF:
                entry += _encode_scalar(2, map_kv[1], item[key], f"{where}[{key!r}]")
            else:
                entry += _len_field(2, _encode(item[key], map_kv[1], f"{where}[{key!r}]"))
            out += _len_field(num, entry)
        return bytes(out)
    assert ftype is not None
    if repeated:
        if not isinstance(item, list):
            raise ProtobufError(f"{where}: expected a list, got {type(item).__name__}")
        if kind == "scalar":
            return b"".join(
                _encode_scalar(num, ftype, v, f"{where}[{i}]") for i, v in enumerate(item)
            )
        return b"".join(
            _len_field(num, _encode(v, ftype, f"{where}[{i}]")) for i, v in enumerate(item)
        )
    if kind == "scalar":
        return _encode_scalar(num, ftype, item, where)
    return _len_field(num, _encode(item, ftype, where))


def _encode_scalar(num: int, ftype: str, value: Any, where: str) -> bytes:
    if ftype == "string":
        if not isinstance(value, str):
            raise ProtobufError(f"{where}: expected a string, got {type(value).__name__}")
        return _len_field(num, value.encode("utf-8"))
    if ftype == "bytes":
        if isinstance(value, bytes):
            return _len_field(num, value)
        if not isinstance(value, str):
            raise ProtobufError(f"{where}: expected base64 text, got {type(value).__name__}")
        try:
            return _len_field(num, base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise ProtobufError(f"{where}: not valid base64") from None
    if ftype == "bool":
        if not isinstance(value, bool):
            raise ProtobufError(f"{where}: expected a boolean, got {type(value).__name__}")
        return _key(num, 0) + _put_varint(int(value))
    if ftype in _FIXED64 or ftype in _FIXED32:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtobufError(f"{where}: expected a number, got {type(value).__name__}")
        fmt = _FIXED64.get(ftype) or _FIXED32[ftype]
        wire = 1 if ftype in _FIXED64 else 5
        try:
            return _key(num, wire) + struct.pack(fmt, value)
        except struct.error as exc:
            raise ProtobufError(f"{where}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtobufError(f"{where}: expected an integer, got {type(value).__name__}")
    bits = 32 if ftype.endswith("32") else 64
    unsigned = ftype.startswith("uint")
    low = 0 if unsigned else -(1 << (bits - 1))
    high = (1 << bits) - 1 if unsigned else (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise ProtobufError(f"{where}: {value} does not fit a {ftype}")
    if ftype in ("sint32", "sint64"):
        value = (value << 1) ^ (value >> (bits - 1))
    return _key(num, 0) + _put_varint(value)


_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def _encode_time(value: Any, path: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ProtobufError(f"{path}: expected an RFC 3339 time string")
    m = _TIME_RE.match(value)
    if m is None:
        raise ProtobufError(f"{path}: {value!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ProtobufError(f"{path}: {value!r}: {exc}") from None
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        moment -= offset if m.group(9) == "+" else -offset
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    nanos = int((m.group(7) or "0").ljust(9, "0"))
    out = _key(1, 0) + _put_varint(seconds) if seconds else b""
    if nanos:
        out += _key(2, 0) + _put_varint(nanos)
    return out or _key(1, 0) + _put_varint(0)


_DURATION_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_go_duration(text: str) -> int:
    """Parse a Go duration string (``1h30m``, ``-1.5s``, ``0``) into nanoseconds.

    :param text: the duration text.
    :returns: nanoseconds.
    :raises ProtobufError: when the text is not a Go duration.
    """
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    total = 0
    pos = 0
    while pos < len(body):
        m = _DURATION_RE.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            raise ProtobufError(f"{text!r} is not a Go duration")
        whole, _, frac = m.group(1).partition(".")
        unit = _DURATION_UNITS[m.group(2)]
        total += int(whole or "0") * unit
        if frac:
            total += int(frac) * unit // 10 ** len(frac)
        pos = m.end()
    if not body:
        raise ProtobufError(f"{text!r} is not a Go duration")
    return -total if text.startswith("-") else total


def _encode_duration(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise ProtobufError(f"{path}: expected a duration string")
    try:
        nanos = parse_go_duration(value)
    except ProtobufError as exc:
        raise ProtobufError(f"{path}: {exc}") from None
    return _key(1, 0) + _put_varint(nanos)


def _encode_int_or_string(value: Any, path: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtobufError(f"{path}: expected an integer or a string")
    if isinstance(value, str):
        return _key(1, 0) + _put_varint(1) + _len_field(3, value.encode("utf-8"))
    if not -(1 << 31) <= value < 1 << 31:
        raise ProtobufError(f"{path}: {value} does not fit an int32")
    return _key(1, 0) + _put_varint(0) + _key(2, 0) + _put_varint(value)


def _encode_quantity(value: Any, path: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProtobufError(f"{path}: expected a quantity string")
    return _len_field(1, str(value).encode("utf-8"))


def _encode_raw_json(value: Any, path: str) -> bytes:
    if value is None:
        return b""
    return _len_field(1, orjson.dumps(value))


def _encode_verbs(value: Any, path: str) -> bytes:
    if not isinstance(value, list):
        raise ProtobufError(f"{path}: expected a list of strings")
    return b"".join(_encode_scalar(1, "string", v, f"{path}[{i}]") for i, v in enumerate(value))


def _encode_nested_unknown(value: Any, path: str) -> bytes:
    if not isinstance(value, dict):
        raise ProtobufError(f"{path}: expected an object")
    return encode_object(value)[len(MAGIC) :]


_SPECIAL_ENCODERS: dict[str, Callable[[Any, str], bytes]] = {
    _TIME: _encode_time,
    _MICROTIME: _encode_time,
    _DURATION: _encode_duration,
    _INTSTR: _encode_int_or_string,
    _QUANTITY: _encode_quantity,
    _RAW: _encode_raw_json,
    _UNKNOWN: _encode_nested_unknown,
    _FIELDSV1: _encode_raw_json,
    _VERBS: _encode_verbs,
}

_NULLABLE_SPECIALS = frozenset({_TIME, _MICROTIME, _RAW, _FIELDSV1})
