"""Generate ``core/kubeling/api/protobuf_fields.py``: Kubernetes' protobuf field tables.

kubectl and every client-go program send request bodies in Kubernetes' protobuf encoding
(``application/vnd.kubernetes.protobuf``).  :mod:`kubeling.api.protobuf` decodes them with
a small wire-format reader driven by the table this tool writes: for every message of the
packages below, field number -> (JSON name, kind, type, repeated, map key/value, flags).

Inputs (none of them is committed; they are upstream files and binaries):

* ``.proto`` texts -- the ``generated.proto`` files of ``k8s.io/api`` and
  ``k8s.io/apimachinery`` (any release; later files on the command line add fields to
  earlier ones).  Only names, numbers, labels and types are read, never comments.
* optionally one or more Go binaries built with those packages (``kubectl`` is one), for
  two things a ``.proto`` text does not say:

  - client-go registers each package's ``FileDescriptorProto`` gzipped in the binary; its
    fields are merged with the texts' (and must agree with them);
  - the Go runtime type information of the API structs (ELF x86-64 binaries of Go >= 1.19):
    each field's kind and struct tag, e.g. ``Value int32 `json:"value" protobuf:"...,2,..."```.
    k8s' marshaller writes every *value* field, zero or not, so a zero on the wire is kept
    when JSON would keep it (pointer fields like ``*int32 replicas``, fields without
    ``omitempty``) and dropped when JSON's ``omitempty`` would drop it (flag ``omitempty``).
    Without a binary no zero value is dropped.

**Inline fields**: where Go embeds a struct with ``json:",inline"`` the protobuf message has a
nested message field instead (``Volume.volumeSource``, ``Probe.handler``, ...).  They are
detected by comparing with kubeling's attrs models (:mod:`kubeling.api.objects`, falling back
to the installed ``kubernetes`` client's ``attribute_map`` for messages without a model): a
message-typed field whose name is not a JSON field of the model, while most of the nested
message's fields are, is inline.  The Go struct tags, when a binary is given, confirm them
(and add any the models cannot show); disagreements are reported.

Usage (from the repository root)::

    .venv/bin/python tools/gen_proto_fields.py --proto-dir /tmp/proto/upstream \\
        --go-binary "$(readlink -f "$(command -v kubectl)")" [--check]

``--check`` regenerates in memory and exits 1 when the committed table differs.  A report
of the inline fields found and of model fields the protobuf tables lack goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import re
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "core" / "kubeling" / "api" / "protobuf_fields.py"

#: Protobuf packages whose messages go into the table, with the short alias used in the
#: generated module, and the apiVersion their top-level kinds are served under (if any).
PACKAGES: dict[str, tuple[str, str | None]] = {
    "k8s.io.apimachinery.pkg.apis.meta.v1": ("_META", "meta.k8s.io/v1"),
    "k8s.io.apimachinery.pkg.runtime": ("_RUNTIME", None),
    "k8s.io.apimachinery.pkg.util.intstr": ("_INTSTR", None),
    "k8s.io.apimachinery.pkg.api.resource": ("_RESOURCE", None),
    "k8s.io.api.core.v1": ("_CORE", "v1"),
    "k8s.io.api.apps.v1": ("_APPS", "apps/v1"),
    "k8s.io.api.batch.v1": ("_BATCH", "batch/v1"),
    "k8s.io.api.coordination.v1": ("_COORDINATION", "coordination.k8s.io/v1"),
    "k8s.io.api.discovery.v1": ("_DISCOVERY", "discovery.k8s.io/v1"),
    "k8s.io.api.networking.v1": ("_NETWORKING", "networking.k8s.io/v1"),
    "k8s.io.api.policy.v1": ("_POLICY", "policy/v1"),
    "k8s.io.api.scheduling.v1": ("_SCHEDULING", "scheduling.k8s.io/v1"),
    "k8s.io.api.autoscaling.v1": ("_AUTOSCALING", "autoscaling/v1"),
    "k8s.io.api.events.v1": ("_EVENTS", "events.k8s.io/v1"),
}

#: Messages the decoder converts to a JSON scalar or passes through as raw JSON; they are
#: never candidates for inlining.
SPECIAL = frozenset(
    {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs",
        "k8s.io.apimachinery.pkg.runtime.RawExtension",
        "k8s.io.apimachinery.pkg.runtime.Unknown",
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
        "k8s.io.apimachinery.pkg.api.resource.Quantity",
    }
)

SCALARS = frozenset(
    {
        "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
        "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
    }
)  # fmt: skip

#: FieldDescriptorProto.Type numbers -> scalar type names (11 message, 14 enum).
DESCRIPTOR_TYPES = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
    7: "fixed32", 8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32",
    16: "sfixed64", 17: "sint32", 18: "sint64", 14: "int32",
}  # fmt: skip

#: Go reflect kinds (internal/abi) the type-information reader cares about.
GO_ARRAY, GO_MAP, GO_PTR, GO_SLICE, GO_STRUCT = 17, 21, 22, 23, 25


# --------------------------------------------------------------------------------------
# The in-memory model
# --------------------------------------------------------------------------------------


@dataclass
class Field:
    """One protobuf field; ``type`` is a scalar name or a (later resolved) message name."""

    name: str
    number: int
    repeated: bool
    type: str | None
    map_kv: tuple[str, str] | None = None
    scope: str = ""

    def signature(self) -> tuple[object, ...]:
        """What two sources must agree on for the same field number."""
        return (self.name, self.repeated, self.type, self.map_kv)


@dataclass
class Message:
    """One protobuf message, keyed by fully-qualified name in :data:`Tables.messages`."""

    name: str
    fields: dict[int, Field] = field(default_factory=dict)


@dataclass
class Tables:
    """Messages collected from every input, merged."""

    messages: dict[str, Message] = field(default_factory=dict)

    def add(self, msg: Message, source: str) -> None:
        """Merge ``msg``; the same field number must mean the same field in every source."""
        have = self.messages.setdefault(msg.name, Message(msg.name))
        for num, fld in msg.fields.items():
            old = have.fields.get(num)
            if old is None:
                have.fields[num] = fld
                continue
            if old.signature() != fld.signature():
                raise SystemExit(
                    f"{source}: {msg.name} field {num} is {fld.signature()}, "
                    f"another input says {old.signature()}"
                )


# --------------------------------------------------------------------------------------
# .proto text
# --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/|(?P<tok>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_.][\w.]*|-?\d+|[{}<>;=,\[\]()])""",
    re.S,
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SystemExit(f"cannot tokenize .proto text at {text[pos : pos + 40]!r}")
        if m.group("tok") is not None:
            out.append(m.group("tok"))
        pos = m.end()
    return out


class _ProtoParser:
    """A parser for the subset of proto2 that ``generated.proto`` files use."""

    def __init__(self, text: str, source: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0
        self.source = source
        self.package = ""
        self.messages: list[Message] = []
        self.enums: list[str] = []

    def _peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def _next(self) -> str:
        if self.pos >= len(self.toks):
            raise SystemExit(f"{self.source}: unexpected end of file")
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def _expect(self, want: str) -> None:
        got = self._next()
        if got != want:
            raise SystemExit(f"{self.source}: expected {want!r}, found {got!r}")

    def _skip_statement(self) -> None:
        depth = 0
        while True:
            tok = self._next()
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return
            elif tok == ";" and depth == 0:
                return

    def parse(self) -> _ProtoParser:
        """Read the whole file."""
        while (tok := self._peek()) is not None:
            if tok == "package":
                self._next()
                self.package = self._next()
                self._expect(";")
            elif tok == "message":
                self._next()
                self._message(self.package)
            elif tok == "enum":
                self._next()
                self.enums.append(f"{self.package}.{self._next()}")
                self._skip_block()
            elif tok == ";":
                self._next()
            else:  # syntax, import, option, service, extend
                self._skip_statement()
        return self

    def _skip_block(self) -> None:
        self._expect("{")
        depth = 1
        while depth:
            tok = self._next()
            depth += tok == "{"
            depth -= tok == "}"

    def _message(self, scope: str) -> None:
        name = f"{scope}.{self._next()}"
        msg = Message(name)
        self.messages.append(msg)
        self._expect("{")
        while (tok := self._next()) != "}":
            if tok == "message":
                self._message(name)
            elif tok == "enum":
                self.enums.append(f"{name}.{self._next()}")
                self._skip_block()
            elif tok == "oneof":
                self._next()
                self._expect("{")
                while self._peek() != "}":
                    self._field(msg, None)
                self._next()
            elif tok in ("option", "reserved", "extensions", "extend"):
                self.pos -= 1
                self._skip_statement()
            elif tok == ";":
                continue
            else:
                self._field(msg, tok)

    def _field(self, msg: Message, first: str | None) -> None:
        tok = first if first is not None else self._next()
        map_kv = None
        if tok == "map":
            self._expect("<")
            key = self._next()
            self._expect(",")
            value = self._next()
            self._expect(">")
            repeated, ftype, map_kv = True, None, (key, value)
        elif tok in ("optional", "required", "repeated"):
            repeated, ftype = tok == "repeated", self._next()
        else:
            repeated, ftype = False, tok
        fname = self._next()
        self._expect("=")
        number = int(self._next())
        if self._peek() == "[":  # field options: none of them matters here
            while self._next() != "]":
                pass
        self._expect(";")
        msg.fields[number] = Field(fname, number, repeated, ftype, map_kv, msg.name)


def read_proto(path: Path) -> tuple[list[Message], list[str]]:
    """Parse one ``.proto`` file into messages (types not yet resolved) and enum names."""
    parser = _ProtoParser(path.read_text(encoding="utf-8"), str(path)).parse()
    return parser.messages, parser.enums


# --------------------------------------------------------------------------------------
# FileDescriptorProtos embedded in a Go binary
# --------------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield key >> 3, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield key >> 3, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            yield key >> 3, buf[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield key >> 3, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")


def _descriptor_message(raw: bytes, scope: str, out: list[Message]) -> None:
    parts = list(_fields(raw))
    name = f"{scope}.{next(v for f, v in parts if f == 1).decode()}"  # type: ignore[union-attr]
    nested: dict[str, bytes] = {}
    for num, value in parts:
        if num == 3:
            assert isinstance(value, bytes)
            sub = list(_fields(value))
            sub_name = next(v for f, v in sub if f == 1).decode()  # type: ignore[union-attr]
            is_map = any(f == 7 and (7, 1) in list(_fields(v)) for f, v in sub)  # type: ignore[arg-type]
            if is_map:
                nested[f"{name}.{sub_name}"] = value
            else:
                _descriptor_message(value, name, out)
    msg = Message(name)
    for num, value in parts:
        if num != 2:
            continue
        assert isinstance(value, bytes)
        fd: dict[int, int | bytes] = dict(_fields(value))
        fname = fd[1].decode()  # type: ignore[union-attr]
        number = int(fd[3])  # type: ignore[arg-type]
        repeated = fd.get(4) == 3
        kind = int(fd[5])  # type: ignore[arg-type]
        type_name = fd.get(6, b"").decode()  # type: ignore[union-attr]
        map_kv = None
        ftype: str | None
        if kind == 11 and type_name.lstrip(".") in nested:
            entry_fields = [
                dict(_fields(v))  # type: ignore[arg-type]
                for f, v in _fields(nested[type_name.lstrip(".")])
                if f == 2
            ]
            entry = {d[1]: d for d in entry_fields}
            map_kv = (_descriptor_type(entry[b"key"]), _descriptor_type(entry[b"value"]))
            ftype = None
        elif kind == 11:
            ftype = type_name
        else:
            ftype = DESCRIPTOR_TYPES[kind]
        msg.fields[number] = Field(fname, number, repeated, ftype, map_kv, name)
    out.append(msg)


def _descriptor_type(fd: dict[int, int | bytes]) -> str:
    kind = int(fd[5])  # type: ignore[arg-type]
    if kind == 11:
        return fd[6].decode()  # type: ignore[union-attr]
    return DESCRIPTOR_TYPES[kind]


def read_go_descriptors(data: bytes) -> Iterator[tuple[str, list[Message]]]:
    """Yield (proto file name, messages) for each k8s.io descriptor gzipped in a binary."""
    for match in re.finditer(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                data[match.start() : match.start() + (4 << 20)]
            )
            parts = list(_fields(raw))
        except (zlib.error, ValueError, IndexError):
            continue
        names = [v for f, v in parts if f == 1]
        packages = [v for f, v in parts if f == 2]
        if not names or not packages or not isinstance(names[0], bytes):
            continue
        if not names[0].startswith(b"k8s.io/") or not names[0].endswith(b".proto"):
            continue
        package = packages[0].decode()  # type: ignore[union-attr]
        if package not in PACKAGES:
            continue
        messages: list[Message] = []
        for num, value in parts:
            if num == 4:
                _descriptor_message(value, package, messages)  # type: ignore[arg-type]
        yield names[0].decode(), messages


# --------------------------------------------------------------------------------------
# Go runtime type information: struct fields, their kinds and tags
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoField:
    """What a Go API struct says about the field carrying one protobuf field number."""

    json_name: str
    omitempty: bool
    pointer: bool
    inline: bool


class _GoTypes:
    """Reads ``internal/abi`` type descriptors out of an ELF x86-64 Go binary (Go >= 1.19).

    Types are found from the ``.typelink`` table (offsets from the start of ``.rodata``,
    which is where the linker puts ``runtime.types``) and by following element and field
    types.  Layouts: ``abi.Type`` is 48 bytes with the kind at byte 23 and the name offset
    at byte 40; a struct type adds its package path pointer and its fields slice (24-byte
    entries: name pointer, type pointer, offset); names are a flag byte, a varint length,
    the bytes, then (flag 2) a varint-length tag; flag 8 marks an embedded field.
    """

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("not a little-endian 64-bit ELF file")
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
        strtab = headers[shstrndx][4]
        self.sections: dict[str, tuple[int, int, int]] = {}
        for name_off, _type, _flags, addr, offset, size in headers:
            end = data.index(b"\0", strtab + name_off)
            self.sections[data[strtab + name_off : end].decode()] = (addr, offset, size)
        if ".typelink" not in self.sections or ".rodata" not in self.sections:
            raise ValueError("no .typelink/.rodata sections (not a Go binary?)")
        self.data = data
        self.base = self.sections[".rodata"][0]
        self.ranges = sorted(v for v in self.sections.values() if v[0])

    def offset(self, addr: int) -> int:
        for start, off, size in self.ranges:
            if start <= addr < start + size:
                return off + addr - start
        raise ValueError(f"address {addr:#x} is in no section")

    def q(self, off: int) -> int:
        return struct.unpack_from("<Q", self.data, off)[0]

    def name(self, off: int) -> tuple[str, str, int]:
        flags = self.data[off]
        size, pos = _varint(self.data, off + 1)
        text = self.data[pos : pos + size].decode("utf-8", "replace")
        pos += size
        tag = ""
        if flags & 2:
            tag_size, pos = _varint(self.data, pos)
            tag = self.data[pos : pos + tag_size].decode("utf-8", "replace")
        return text, tag, flags

    def header(self, addr: int) -> tuple[int, int, int, str]:
        off = self.offset(addr)
        tflag, kind = self.data[off + 20], self.data[off + 23] & 0x1F
        name_off = struct.unpack_from("<i", self.data, off + 40)[0]
        text = self.name(self.offset(self.base + name_off))[0]
        return off, kind, tflag, text[1:] if tflag & 2 else text

    def structs(self) -> Iterator[tuple[str, str, list[tuple[str, str, int]]]]:
        """Yield (package path, type name, [(field name, tag, kind)]) of every struct."""
        _addr, off, size = self.sections[".typelink"]
        stack = [self.base + o for o in struct.unpack_from(f"<{size // 4}i", self.data, off)]
        seen: set[int] = set()
        while stack:
            addr = stack.pop()
            if not addr or addr in seen:
                continue
            seen.add(addr)
            try:
                off, kind, tflag, type_name = self.header(addr)
            except (ValueError, IndexError, struct.error):
                continue
            if kind in (GO_PTR, GO_SLICE, GO_ARRAY):
                stack.append(self.q(off + 48))
            elif kind == GO_MAP:
                stack += [self.q(off + 48), self.q(off + 56)]
            elif kind == GO_STRUCT:
                fields_addr, count = self.q(off + 56), self.q(off + 64)
                fields = []
                for i in range(count if count < 10_000 else 0):
                    entry = self.offset(fields_addr) + 24 * i
                    field_name, tag, _flags = self.name(self.offset(self.q(entry)))
                    field_type = self.q(entry + 8)
                    stack.append(field_type)
                    fields.append((field_name, tag, self.header(field_type)[1]))
                if tflag & 1:  # uncommon type data follows: package path
                    pkg_off = struct.unpack_from("<i", self.data, off + 80)[0]
                    package = self.name(self.offset(self.base + pkg_off))[0]
                    yield package, type_name.rpartition(".")[2], fields


_TAG = re.compile(r'(\w+):"((?:[^"\\]|\\.)*)"')


def read_go_struct_tags(data: bytes) -> dict[tuple[str, int], GoField]:
    """(message, field number) -> :class:`GoField`, for the API structs of :data:`PACKAGES`.

    :raises ValueError: when the binary cannot be read this way.
    """
    out: dict[tuple[str, int], GoField] = {}
    for package, type_name, fields in _GoTypes(data).structs():
        proto_package = package.replace("/", ".")
        if proto_package not in PACKAGES:
            continue
        for _field_name, tag, kind in fields:
            tags = dict(_TAG.findall(tag))
            if "protobuf" not in tags or "json" not in tags:
                continue
            number = int(tags["protobuf"].split(",")[1])
            json_name, *options = tags["json"].split(",")
            out[(f"{proto_package}.{type_name}", number)] = GoField(
                json_name, "omitempty" in options, kind == GO_PTR, "inline" in options
            )
    return out


# --------------------------------------------------------------------------------------
# Resolution, models, inline detection
# --------------------------------------------------------------------------------------


def resolve(messages: Iterable[Message], known: set[str], enums: set[str]) -> None:
    """Turn relative message type names into fully-qualified ones (proto scoping rules).

    :param messages: the messages whose field types to resolve, in place.
    :param known: every message and enum name of every input.
    :param enums: the enum names (enums are int32 on the wire).
    """

    def lookup(name: str, scope: str) -> str:
        if name in SCALARS:
            return name
        if name.startswith("."):
            found = name[1:]
            if found not in known:
                raise SystemExit(f"unknown type {name} (referenced from {scope})")
            return "int32" if found in enums else found
        parts = scope.split(".")
        for i in range(len(parts), -1, -1):
            candidate = ".".join([*parts[:i], name]) if i else name
            if candidate in known:
                return "int32" if candidate in enums else candidate
        raise SystemExit(f"unknown type {name} (referenced from {scope}); missing an input?")

    for msg in messages:
        for fld in msg.fields.values():
            if fld.type is not None:
                fld.type = lookup(fld.type, fld.scope)
            if fld.map_kv is not None:
                fld.map_kv = (lookup(fld.map_kv[0], fld.scope), lookup(fld.map_kv[1], fld.scope))


@dataclass
class ModelInfo:
    """JSON field names of a message's model, and where they came from."""

    names: frozenset[str]
    source: str


def model_infos(messages: Iterable[str]) -> dict[str, ModelInfo]:
    """JSON field tables for the messages: kubeling's attrs models, else the client's."""
    sys.path.insert(0, str(ROOT / "core"))
    from kubeling.api.objects import MODULES
    from kubeling.api.schema import schema_for

    infos: dict[str, ModelInfo] = {}
    for mod_name in MODULES:
        module = importlib.import_module(f"kubeling.api.objects.{mod_name}")
        for obj in vars(module).values():
            openapi = getattr(obj, "openapi_name", None)
            if not inspect.isclass(obj) or not isinstance(openapi, str):
                continue
            proto_name = "k8s.io." + openapi.removeprefix("io.k8s.")
            if proto_name in infos:
                continue
            fields = schema_for(obj).fields
            infos[proto_name] = ModelInfo(
                frozenset(fields) - {"apiVersion", "kind"},
                f"kubeling.api.objects.{mod_name}.{obj.__name__}",
            )
    try:
        client_models = importlib.import_module("kubernetes.client.models")
    except ImportError:  # pragma: no cover - the client is a core dependency
        return infos
    for name in messages:
        if name in infos:
            continue
        package, _, short = name.rpartition(".")
        parts = package.split(".")
        version = parts[-1].capitalize()
        group = parts[-2].capitalize() if parts[:3] == ["k8s", "io", "api"] else ""
        for candidate in (f"{group}{version}{short}", f"{version}{short}"):
            cls = getattr(client_models, candidate, None)
            if cls is not None and hasattr(cls, "attribute_map"):
                infos[name] = ModelInfo(
                    frozenset(cls.attribute_map.values()) - {"apiVersion", "kind"},
                    f"kubernetes.client.models.{candidate}",
                )
                break
    return infos


def detect_inline(tables: Tables, infos: dict[str, ModelInfo]) -> set[tuple[str, int]]:
    """(message, field number) pairs whose nested message Go embeds inline in JSON."""
    inline: set[tuple[str, int]] = set()

    def flat_names(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        out: set[str] = set()
        for num, fld in tables.messages[name].fields.items():
            if (name, num) in inline and fld.type not in seen:
                out |= flat_names(fld.type, seen | {name})  # type: ignore[arg-type]
            else:
                out.add(fld.name)
        return out

    changed = True
    while changed:
        changed = False
        for name, msg in tables.messages.items():
            info = infos.get(name)
            if info is None:
                continue
            for num, fld in msg.fields.items():
                if (name, num) in inline or fld.repeated or fld.type is None:
                    continue
                if fld.type in SPECIAL or fld.type not in tables.messages:
                    continue
                if fld.name in info.names:
                    continue
                nested = flat_names(fld.type)
                if nested and len(nested & info.names) >= max(1, math.ceil(len(nested) / 2)):
                    inline.add((name, num))
                    changed = True
    return inline


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _type_expr(name: str | None) -> str:
    if name is None:
        return "None"
    if name in SCALARS:
        return f'"{name}"'
    package, _, short = name.rpartition(".")
    alias = PACKAGES.get(package, (None, None))[0]
    if alias is None:
        return f'"{name}"'
    return f'{alias} + "{short}"'


def _emit_tuple(prefix: str, items: list[str], indent: str) -> list[str]:
    one = f"{indent}{prefix}({', '.join(items)}),"
    if len(one) <= 100:
        return [one]
    return [f"{indent}{prefix}(", *(f"{indent}    {item}," for item in items), f"{indent}),"]


def _use_go_json_names(tables: Tables, go_fields: dict[tuple[str, int], GoField]) -> None:
    """Name fields as their Go struct's ``json`` tag does where it differs from the proto name.

    The two differ for a few fields (``IngressClassParametersReference.apiGroup`` is
    ``aPIGroup`` in the proto); the decoder writes JSON, so the JSON name wins.  Inline
    fields (an empty JSON name) keep their proto name.
    """
    for (message, number), go in sorted(go_fields.items()):
        msg = tables.messages.get(message)
        fld = msg.fields.get(number) if msg is not None else None
        if fld is None or not go.json_name or go.json_name in ("-", fld.name):
            continue
        print(
            f"JSON name from the Go struct tag: {message}.{fld.name} -> {go.json_name}",
            file=sys.stderr,
        )
        fld.name = go.json_name


def render(
    tables: Tables,
    inline: set[tuple[str, int]],
    go_fields: dict[tuple[str, int], GoField],
    sources: list[str],
) -> str:
    """The generated module's text."""
    lines = [
        '"""Protobuf field tables of the Kubernetes API packages kubeling serves.',
        "",
        "Generated by tools/gen_proto_fields.py from the generated.proto files of k8s.io/api and",
        "k8s.io/apimachinery and from a client-go binary (its protobuf descriptors, and its Go",
        "struct tags for ``omitempty``).  Only field names, numbers, types and those two facts",
        "are recorded.  Do not edit by hand: change the generator and run it again.",
        "",
        "``MESSAGES`` maps a fully-qualified message name to ``{number: field}``, where a field",
        "is ``(json_name, kind, type, repeated, map_kv, flags)``:",
        "",
        '* ``kind`` is ``"scalar"``, ``"message"`` or ``"map"``;',
        "* ``type`` is the scalar type or the fully-qualified message name (None for maps);",
        "* ``map_kv`` is ``(key type, value type)`` for maps, else None;",
        "* ``flags`` holds comma-separated words: ``inline`` (Go embeds the nested message in",
        "  its parent's JSON object) and ``omitempty`` (a scalar value field whose zero value",
        "  JSON omits; zeros of other fields that are on the wire are kept).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["GROUP_VERSIONS", "INLINE_FIELDS", "MESSAGES", "SOURCES", "Field"]',
        "",
    ]
    for package, (alias, _gv) in PACKAGES.items():
        lines.append(f'{alias} = "{package}."')
    lines += [
        "",
        "Field = tuple[str, str, str | None, bool, tuple[str, str] | None, str]",
        '"""(json_name, kind, type, repeated, map_kv, flags); see the module docstring."""',
        "",
        "SOURCES: tuple[str, ...] = (",
        *(f'    "{src}",' for src in sources),
        ")",
        '"""The inputs this table was generated from."""',
        "",
        "GROUP_VERSIONS: dict[str, str] = {",
    ]
    for package, (_alias, gv) in PACKAGES.items():
        if gv is not None:
            lines.append(f'    "{gv}": "{package}",')
    lines += [
        "}",
        '"""apiVersion -> protobuf package of its kinds."""',
        "",
        "INLINE_FIELDS: tuple[tuple[str, str], ...] = (",
    ]
    for parent, num in sorted(inline):
        fld = tables.messages[parent].fields[num]
        lines += _emit_tuple("", [_type_expr(parent), f'"{fld.name}"'], "    ")
    lines += [
        ")",
        '"""(message, proto field name) pairs flattened into the parent JSON object."""',
        "",
        "MESSAGES: dict[str, dict[int, Field]] = {",
    ]
    for name in sorted(tables.messages):
        msg = tables.messages[name]
        lines.append(f"    {_type_expr(name)}: {{")
        for num in sorted(msg.fields):
            fld = msg.fields[num]
            flags = []
            if (name, num) in inline:
                flags.append("inline")
            scalar = fld.map_kv is None and fld.type in SCALARS
            go = go_fields.get((name, num))
            omitempty = (go.omitempty and not go.pointer) if go else fld.type == "bytes"
            if scalar and not fld.repeated and omitempty:
                flags.append("omitempty")
            if fld.map_kv is not None:
                kind, kv = "map", f"({_type_expr(fld.map_kv[0])}, {_type_expr(fld.map_kv[1])})"
            else:
                kind, kv = ("scalar" if scalar else "message"), "None"
            items = [
                f'"{fld.name}"',
                f'"{kind}"',
                _type_expr(fld.type),
                str(fld.repeated),
                kv,
                f'"{",".join(flags)}"',
            ]
            lines += _emit_tuple(f"{num}: ", items, "        ")
        lines.append("    },")
    lines += ["}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto", action="append", default=[], type=Path, help=".proto file")
    parser.add_argument(
        "--proto-dir", action="append", default=[], type=Path, help="directory of .proto files"
    )
    parser.add_argument(
        "--go-binary", action="append", default=[], type=Path, help="client-go binary"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    args = parser.parse_args(argv)

    batches: list[tuple[str, list[Message]]] = []
    enums: set[str] = set()
    sources: list[str] = []
    files = list(args.proto)
    for directory in args.proto_dir:
        files += sorted(directory.rglob("*.proto"))
    for path in files:
        messages, file_enums = read_proto(path)
        kept = [m for m in messages if _in_packages(m.name)]
        enums.update(file_enums)
        if kept:
            batches.append((str(path), kept))
            sources.append(f"proto: {_short_source(path)}")
    go_fields: dict[tuple[str, int], GoField] = {}
    for binary in args.go_binary:
        data = binary.read_bytes()
        seen = 0
        for proto_name, messages in read_go_descriptors(data):
            batches.append((f"{binary}:{proto_name}", messages))
            seen += 1
        if not seen:
            raise SystemExit(f"{binary}: no k8s.io protobuf descriptors found")
        try:
            tags = read_go_struct_tags(data)
        except ValueError as exc:
            raise SystemExit(f"{binary}: cannot read Go type information: {exc}") from None
        for key, value in tags.items():
            go_fields.setdefault(key, value)
        sources.append(f"Go binary: {binary.name} ({seen} descriptors, {len(tags)} struct tags)")
    known = {m.name for _, messages in batches for m in messages} | enums
    tables = Tables()
    for source, messages in batches:
        resolve(messages, known, enums)
        for msg in messages:
            tables.add(msg, source)
    missing = sorted(set(PACKAGES) - {m.rpartition(".")[0] for m in tables.messages})
    if missing:
        raise SystemExit(f"no input defines these packages: {', '.join(missing)}")

    _use_go_json_names(tables, go_fields)
    infos = model_infos(tables.messages)
    inline = detect_inline(tables, infos)
    go_inline = {key for key, go in go_fields.items() if go.inline and key[0] in tables.messages}
    for parent, num in sorted(go_inline ^ inline):
        fld = tables.messages[parent].fields[num]
        side = "Go struct tags" if (parent, num) in go_inline else "the models"
        print(f"inline only by {side}: {parent}.{fld.name}", file=sys.stderr)
    inline |= go_inline
    _report(tables, infos, inline)
    text = render(tables, inline, go_fields, sources)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(tables.messages)} messages)", file=sys.stderr)
    return 0


def _in_packages(name: str) -> bool:
    return any(name.startswith(package + ".") for package in PACKAGES)


def _short_source(path: Path) -> str:
    text = str(path)
    marker = text.find("k8s.io/")
    return text[marker:] if marker >= 0 else path.name


def _report(tables: Tables, infos: dict[str, ModelInfo], inline: set[tuple[str, int]]) -> None:
    """Tell the developer what was detected and what the protobuf tables lack."""
    for parent, num in sorted(inline):
        fld = tables.messages[parent].fields[num]
        print(f"inline: {parent}.{fld.name} ({fld.type})", file=sys.stderr)
    for name, info in sorted(infos.items()):
        msg = tables.messages.get(name)
        if msg is None:
            if info.source.startswith("kubeling"):
                print(f"no protobuf message for model {info.source}", file=sys.stderr)
            continue
        covered: set[str] = set()
        for num, fld in msg.fields.items():
            if (name, num) in inline and fld.type in tables.messages:
                covered |= {f.name for f in tables.messages[fld.type].fields.values()}
            covered.add(fld.name)
        lacking = sorted(info.names - covered)
        if lacking and info.source.startswith("kubeling"):
            print(f"model fields without a protobuf field: {name}: {lacking}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
