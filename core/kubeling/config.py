"""Configuration: attrs classes, loaded with one cattrs converter from one YAML file.

The core defines the sections every cluster has (``api``, ``storage``, ``plugins``,
``components``, ``node``, ``proxy``, ``logging``).  Plugins contribute their own sections
through ``kubeling_register_config_sections`` and through the ``settings`` class of a
storage, runtime or proxier they register; :func:`build_config_class` folds them into one
frozen attrs class, so a config is one typed object and ``kubeling config defaults``
prints all of it.

Errors are collected, not raised one by one, and each names the file, the line, the dotted
key path and the problem, e.g.::

    cluster.yaml:3: storage.backnd: unknown key; did you mean 'backend'?
"""

import difflib
import enum
import os
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

__all__ = [
    "ApiConfig",
    "ComponentsConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "LoggingConfig",
    "NodeConfig",
    "PluginsConfig",
    "ProxyConfig",
    "StorageConfig",
    "build_config_class",
    "default_data_dir",
    "dump_config",
    "load_config",
    "parse_set_option",
    "read_yaml",
]


def default_data_dir() -> Path:
    """Where state lives unless ``--data-dir``/``data_dir`` says otherwise (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kubeling"


# ---------------------------------------------------------------------------------------
# the core sections
# ---------------------------------------------------------------------------------------


def _check_cidrs(value: str) -> None:
    """``10.96.0.0/12`` or ``10.96.0.0/12,fd00::/108``: at most one CIDR per IP family."""
    import ipaddress

    parts = [p.strip() for p in value.split(",")]
    try:
        nets = [ipaddress.ip_network(p, strict=True) for p in parts]
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR list: {exc}") from None
    if len(nets) > 2 or len({n.version for n in nets}) != len(nets):
        raise ValueError(f"{value!r}: at most two CIDRs, one IPv4 and one IPv6")
    for net in nets:
        if net.num_addresses < 8:
            raise ValueError(f"{net} is too small for services (at least 8 addresses)")


def _check_ports(value: str) -> None:
    """``FIRST-LAST`` with 1 <= FIRST <= LAST <= 65535."""
    first, _, last = value.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise ValueError(f"{value!r} is not a port range like 30000-32767") from None
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{value!r} is not a port range like 30000-32767")


@attrs.frozen(kw_only=True, slots=False)
class ApiConfig:
    """The API server."""

    listen: str = "127.0.0.1:6443"
    """``HOST:PORT`` the API server listens on (port 0 picks a free port)."""
    server: str | None = None
    """URL of an existing API server, for a ``--role node`` process that runs none itself."""
    max_request_bytes: int = 3 * 1024 * 1024
    """Request bodies larger than this are refused with 413."""
    watch_cache_events: int = 10_000
    """How many recent events each resource's watch cache keeps for watches that resume."""
    compaction_interval_seconds: float = 300.0
    """How often old storage history is compacted (0 disables compaction)."""
    compaction_retain_revisions: int = 10_000
    """How many revisions of history compaction keeps."""
    authenticators: list[str] = attrs.field(factory=list)
    """Authenticator names, tried in order; none means every request is anonymous."""
    authorizers: list[str] = attrs.field(factory=list)
    """Authorizer names, asked in order; none means every request is allowed."""
    service_cluster_ip_range: str = attrs.field(default="10.96.0.0/12",
                                                validator=lambda _i, _a, v: _check_cidrs(v))
    """CIDR(s) Service cluster IPs are allocated from; two, comma-separated, for dual stack
    (one IPv4 and one IPv6, the first is the primary family)."""
    service_node_port_range: str = attrs.field(default="30000-32767",
                                               validator=lambda _i, _a, v: _check_ports(v))
    """``FIRST-LAST``: the port range NodePort and LoadBalancer Services get node ports from."""
    advertise_address: str | None = None
    """IP this API server publishes as the endpoint of the ``kubernetes`` Service; defaults
    to the listen address, or to the host's primary address when listening on a wildcard or
    loopback address."""


@attrs.frozen(kw_only=True, slots=False)
class StorageConfig:
    """Where the API server keeps state."""

    backend: str = "sqlite"
    """Name of a registered storage backend (``sqlite``; ``etcd`` with kubeling-storage-etcd)."""


@attrs.frozen(kw_only=True, slots=False)
class PluginsConfig:
    """Which installed plugins take part."""

    disabled: list[str] = attrs.field(factory=list)
    """Entry-point names of installed plugins not to load."""


@attrs.frozen(kw_only=True, slots=False)
class ComponentsConfig:
    """Which registered long-running components run."""

    disabled: list[str] = attrs.field(factory=list)
    """Component names not to start (see ``kubeling plugins``)."""


@attrs.frozen(kw_only=True, slots=False)
class NodeConfig:
    """This machine as a node of the cluster."""

    name: str | None = None
    """Node name; defaults to the host name."""
    runtime: str | None = None
    """Container runtime name; none means Docker when dockerd answers, else no node."""


@attrs.frozen(kw_only=True, slots=False)
class ProxyConfig:
    """The service proxy on every node."""

    backend: str = "iptables"
    """Name of a registered proxier."""
    enabled: bool = True
    """Run the proxy component on nodes (it changes the host's packet filter rules)."""
    min_sync_period_seconds: float = 1.0
    """At most one sync of the rules per this many seconds; changes in between are batched."""
    sync_period_seconds: float = 30.0
    """A sync at least this often, even without changes."""


class LogLevel(enum.Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@attrs.frozen(kw_only=True, slots=False)
class LoggingConfig:
    level: LogLevel = LogLevel.info
    """debug, info, warning or error."""


@attrs.frozen(kw_only=True, slots=False)
class Config:
    """The whole configuration (core sections only; see :func:`build_config_class`)."""

    data_dir: str | None = None
    """Directory for all state; defaults to ``$XDG_DATA_HOME/kubeling``."""
    kubeconfig_out: str | None = None
    """Where ``kubeling up`` writes a kubeconfig; defaults to ``<data_dir>/kubeconfig``."""
    api: ApiConfig = attrs.field(factory=ApiConfig)
    storage: StorageConfig = attrs.field(factory=StorageConfig)
    plugins: PluginsConfig = attrs.field(factory=PluginsConfig)
    components: ComponentsConfig = attrs.field(factory=ComponentsConfig)
    node: NodeConfig = attrs.field(factory=NodeConfig)
    proxy: ProxyConfig = attrs.field(factory=ProxyConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def section(self, path: str) -> Any:
        """The section at a dotted path (``"storage.sqlite"``), or None when absent."""
        node: Any = self
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                return None
        return node


def build_config_class(sections: Mapping[str, type]) -> type[Config]:
    """A Config subclass that also holds the plugin-contributed ``sections``.

    :param sections: dotted path -> attrs class; ``"storage.sqlite"`` adds a ``sqlite``
        field to the storage section, ``"scheduler"`` a top-level ``scheduler`` section.
    """
    if not sections:
        return Config
    tree: dict[str, Any] = {}
    for path, cls in sections.items():
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"config section {path!r} nests inside a leaf section")
        if parts[-1] in node:
            raise ValueError(f"config section {path!r} registered twice")
        node[parts[-1]] = cls
    return typing.cast(type[Config], _extend(Config, tree))


def _extend(base: type, tree: Mapping[str, Any]) -> type:
    """Subclass ``base`` with the sections of ``tree`` (name -> attrs class or subtree)."""
    fields = attrs.fields_dict(base)
    extra: dict[str, Any] = {}
    for name, sub in tree.items():
        if isinstance(sub, dict):
            if name in fields and attrs.has(fields[name].type):
                inner = fields[name].type
            elif name in fields:
                raise ValueError(f"config section {name!r} clashes with a core setting")
            else:
                inner = attrs.make_class(name.capitalize() + "Config", {}, frozen=True,
                                         kw_only=True)
            new_cls = _extend(inner, sub)
        else:
            if name in fields:
                raise ValueError(f"config section {name!r} clashes with a core setting")
            if not attrs.has(sub):
                raise TypeError(f"config section {name!r}: {sub!r} is not an attrs class")
            new_cls = sub
        extra[name] = attrs.field(factory=new_cls, type=new_cls)
    cls = attrs.make_class(base.__name__, extra, bases=(base,), frozen=True, kw_only=True,
                           slots=False)
    cls.__doc__ = base.__doc__
    return cls


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


@attrs.frozen
class ConfigProblem:
    """One thing wrong with a config: where and what."""

    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = self.source or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config could not be loaded; ``problems`` lists every reason found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# ---------------------------------------------------------------------------------------
# reading YAML with line numbers
# ---------------------------------------------------------------------------------------


def read_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Parse YAML text; return the data and a map of key path -> 1-based line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem("", f"not valid YAML: {problem}", line, source)]) \
            from None
    if node is None:
        return {}, {}
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(node, (), lines)
    data = yaml.SafeLoader(text).get_single_data()
    return data, lines


def _collect_lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            out[(*path, key)] = key_node.start_mark.line + 1
            _collect_lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, str(index))] = item.start_mark.line + 1
            _collect_lines(item, (*path, str(index)), out)


# ---------------------------------------------------------------------------------------
# structuring
# ---------------------------------------------------------------------------------------


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    def structure_str(value: Any, _: type) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"expected a string, got {_describe(value)}")
        return str(value)

    def structure_int(value: Any, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {_describe(value)}")
        return value

    def structure_float(value: Any, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {_describe(value)}")
        return float(value)

    def structure_bool(value: Any, _: type) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {_describe(value)}")
        return value

    conv.register_structure_hook(str, structure_str)
    conv.register_structure_hook(int, structure_int)
    conv.register_structure_hook(float, structure_float)
    conv.register_structure_hook(bool, structure_bool)
    return conv


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


_converter = _make_converter()


def _problems_from(exc: BaseException, cls: type, path: tuple[str, ...],
                   lines: Mapping[tuple[str, ...], int], source: str | None,
                   data: Any) -> list[ConfigProblem]:
    """Turn a cattrs validation error tree into ConfigProblems with key paths."""
    out: list[ConfigProblem] = []

    def line_for(p: tuple[str, ...]) -> int | None:
        while p:
            if p in lines:
                return lines[p]
            p = p[:-1]
        return None

    def walk(e: BaseException, p: tuple[str, ...], cls_: Any) -> None:
        if isinstance(e, ForbiddenExtraKeysError):
            known = list(attrs.fields_dict(e.cl)) if attrs.has(e.cl) else []
            for key in sorted(e.extra_fields):
                hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                msg = "unknown key"
                if hint:
                    msg += f"; did you mean {hint[0]!r}?"
                elif known:
                    msg += f" (known keys: {', '.join(known)})"
                out.append(ConfigProblem(".".join((*p, key)), msg, line_for((*p, key)), source))
            return
        if isinstance(e, ClassValidationError | IterableValidationError):
            for sub in e.exceptions:
                sub_path = p
                sub_type = None
                for note in getattr(sub, "__notes__", []):
                    name = getattr(note, "name", None)
                    index = getattr(note, "index", None)
                    if name is not None:
                        sub_path = (*p, str(name))
                    elif index is not None:
                        sub_path = (*p, str(index))
                    sub_type = getattr(note, "type", sub_type)
                walk(sub, sub_path, sub_type)
            return
        if isinstance(e, ExceptionGroup):
            for sub in e.exceptions:
                walk(sub, p, cls_)
            return
        message = str(e)
        if isinstance(e, KeyError):
            message = "required key is missing"
        elif isinstance(cls_, type) and issubclass(cls_, enum.Enum):
            value = message.split(" is not a valid")[0]
            choices = ", ".join(str(m.value) for m in cls_)
            message = f"{value} is not one of: {choices}"
        out.append(ConfigProblem(".".join(p), message, line_for(p), source))

    walk(exc, path, cls)
    return out


def load_config(
    data: Any,
    cls: type[Config] = Config,
    *,
    source: str | None = None,
    lines: Mapping[tuple[str, ...], int] | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Validate raw config data (as read from YAML) into ``cls``.

    :param data: the parsed YAML (a mapping, or None for an empty file).
    :param cls: the config class, usually from :func:`build_config_class`.
    :param source: the file name, for error messages.
    :param lines: key path -> line, from :func:`read_yaml`.
    :param overrides: ``KEY=VALUE`` strings (``--set``), applied on top of ``data``.
    :raises ConfigError: listing every problem found.
    """
    lines = dict(lines or {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("", f"the top level must be a mapping, not "
                                         f"{_describe(data)}", 1, source)])
    data = _deep_copy(data)
    problems: list[ConfigProblem] = []
    for item in overrides:
        try:
            key, value = parse_set_option(item)
        except ValueError as exc:
            problems.append(ConfigProblem("", str(exc), None, "--set"))
            continue
        error = _set_path(data, key, value)
        if error:
            problems.append(ConfigProblem(key, error, None, "--set"))
        else:
            lines.pop(tuple(key.split(".")), None)
    if problems:
        raise ConfigError(problems)
    try:
        return _converter.structure(data, cls)
    except Exception as exc:  # cattrs raises a tree of errors; flatten it
        problems = _problems_from(exc, cls, (), lines, source, data)
        if not problems:
            problems = [ConfigProblem("", str(exc), None, source)]
        raise ConfigError(problems) from None


def load_config_file(path: str | Path, cls: type[Config] = Config,
                     overrides: Sequence[str] = ()) -> Config:
    """Read and validate a YAML config file; see :func:`load_config`."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read: {exc.strerror}", None,
                                         source)]) from None
    data, lines = read_yaml(text, source)
    return load_config(data, cls, source=source, lines=lines, overrides=overrides)


def read_raw(path: str | Path | None) -> dict[str, Any]:
    """The raw mapping of a config file (empty without one); only YAML errors raise."""
    if path is None:
        return {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read: {exc.strerror}", None,
                                         str(path))]) from None
    data, _ = read_yaml(text, str(path))
    return data if isinstance(data, dict) else {}


def parse_set_option(item: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` (a ``--set`` option); the value is read as a YAML scalar/flow."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. storage.backend=sqlite")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> str | None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return f"cannot set a key inside {part!r}, which is not a mapping"
        node = child
    node[parts[-1]] = value
    return None


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def dump_config(config: Config) -> dict[str, Any]:
    """The config as plain data (what ``kubeling config defaults`` prints)."""
    return typing.cast(dict[str, Any], _unstructure(config))


def _unstructure(value: Any) -> Any:
    if attrs.has(type(value)):
        return {f.name: _unstructure(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_unstructure(v) for v in value]
    if isinstance(value, dict):
        return {k: _unstructure(v) for k, v in value.items()}
    return value


def section_docs(cls: type, prefix: str = "") -> dict[str, str]:
    """Dotted key -> type name, for every setting under ``cls`` (used by docs and CLI)."""
    out: dict[str, str] = {}
    for field in attrs.fields(cls):
        key = f"{prefix}{field.name}"
        field_type = field.type
        if attrs.has(field_type):
            out.update(section_docs(field_type, key + "."))
        else:
            out[key] = getattr(field_type, "__name__", str(field_type))
    return out
