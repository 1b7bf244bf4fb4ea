"""The plugin host: finds plugins, wires them at start-up, records who contributed what.

Start-up order (pytest's and tox's): add the hookspecs, load the ``kubeling`` entry points
(skipped when ``KUBELING_NO_ENTRY_POINTS=1``, for tests), block what ``plugins.disabled``
names, ``check_pending()`` so a misspelt hookimpl fails at once, then call every
``kubeling_register_*`` hook once, with a register callback that validates each
contribution and rejects duplicates.  One :class:`PluginHost` per process or test; there is
no module-level plugin manager.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, Protocol

import attrs
import pluggy

from kubeling import PROJECT_NAME, hookspecs
from kubeling.config import Config, build_config_class

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kubeling"
NO_ENTRY_POINTS_ENV = "KUBELING_NO_ENTRY_POINTS"
CORE_PLUGIN_NAME = "kubeling-core"

ROLES = ("control-plane", "node")


class PluginError(Exception):
    """A plugin could not be loaded or contributed something invalid."""


class MissingPluginError(PluginError):
    """The config names a backend no installed plugin registered."""


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What ``kubeling plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    hooks: list[str]


@attrs.frozen(kw_only=True)
class Contribution:
    """One thing a plugin registered."""

    family: str
    """``storage``, ``runtime``, ``kind``, ``component``, ..."""
    name: str
    value: Any
    plugin: str
    distribution: str | None
    settings: type | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


# The register callbacks' shapes, for the hookspecs' annotations.
class RegisterNamedFactory(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any], *,
                 settings: type | None = None) -> None: ...


class RegisterConfigSection(Protocol):
    def __call__(self, path: str, cls: type) -> None: ...


class RegisterKind(Protocol):
    def __call__(self, kind: Any) -> None: ...


class RegisterAdmitter(Protocol):
    def __call__(self, admitter: Any) -> None: ...


class RegisterAuthenticator(Protocol):
    def __call__(self, name: str, authenticator: Any) -> None: ...


class RegisterAuthorizer(Protocol):
    def __call__(self, name: str, authorizer: Any) -> None: ...


class RegisterSchedulerPlugin(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any]) -> None: ...


class RegisterController(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any]) -> None: ...


class RegisterComponent(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any], *, role: str = ...,
                 leader_elected: bool = ...) -> None: ...


# hook name -> (family, how its register callback is called)
_NAMED_FACTORY_HOOKS = {
    "kubeling_register_storages": "storage",
    "kubeling_register_runtimes": "runtime",
    "kubeling_register_proxiers": "proxier",
}
_SETTINGS_PARENT = {"storage": "storage", "runtime": "node", "proxier": "proxy"}
_INSTALL_HINT = {
    "storage": "kubeling-storage-{name}",
    "runtime": "kubeling-runtime-{name}",
    "proxier": "kubeling-proxy-{name}",
}


class Contributions:
    """Everything the plugins registered, by family and name."""

    def __init__(self) -> None:
        self._by_family: dict[str, dict[str, Contribution]] = {}

    def add(self, contribution: Contribution) -> None:
        family = self._by_family.setdefault(contribution.family, {})
        existing = family.get(contribution.name)
        if existing is not None:
            raise PluginError(
                f"{contribution.family} {contribution.name!r} is registered twice: by "
                f"{_who(existing)} and by {_who(contribution)}"
            )
        family[contribution.name] = contribution

    def family(self, family: str) -> dict[str, Contribution]:
        """Contributions of one family, by name, in registration order."""
        return dict(self._by_family.get(family, {}))

    def get(self, family: str, name: str) -> Contribution | None:
        return self._by_family.get(family, {}).get(name)

    def require(self, family: str, name: str, *, config_key: str) -> Contribution:
        """The contribution named by the config, or a MissingPluginError with a pip hint."""
        found = self.get(family, name)
        if found is not None:
            return found
        known = sorted(self._by_family.get(family, {}))
        hint = _INSTALL_HINT.get(family, "kubeling-{name}").format(name=name)
        raise MissingPluginError(
            f"{config_key}: no installed plugin provides the {family} {name!r} "
            f"(installed: {', '.join(known) or 'none'}); install it with "
            f"'pip install {hint}' or pick one of the installed ones"
        )

    def by_plugin(self, plugin: str) -> list[Contribution]:
        return [c for fam in self._by_family.values() for c in fam.values()
                if c.plugin == plugin]

    def all(self) -> list[Contribution]:
        return [c for fam in self._by_family.values() for c in fam.values()]


def _who(c: Contribution) -> str:
    return f"plugin {c.plugin!r}" + (f" (distribution {c.distribution})" if c.distribution else "")


class PluginHost:
    """Loads plugins into a fresh pluggy PluginManager and collects their contributions."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self.contributions = Contributions()
        self.config_class: type[Config] = Config
        self._collected = False

    # -- loading --------------------------------------------------------------------

    def load(self, *, disabled: Iterable[str] = (), extra: Sequence[Any] = (),
             entry_points: bool | None = None) -> None:
        """Register the core's own plugins, the installed ones and ``extra`` ones.

        :param disabled: entry-point names not to import (``plugins.disabled``).
        :param extra: plugin objects/modules to register directly (tests, embedding).
        :param entry_points: load the ``kubeling`` entry points; default unless the
            ``KUBELING_NO_ENTRY_POINTS`` environment variable is set.
        :raises PluginError: a plugin failed to import, or implements a hook wrongly.
        """
        disabled = set(disabled)
        from kubeling import builtin  # the core's own hook implementations

        self.register(builtin, name=CORE_PLUGIN_NAME, distribution="kubeling")
        if entry_points is None:
            entry_points = not os.environ.get(NO_ENTRY_POINTS_ENV)
        if entry_points:
            self._load_entry_points(disabled)
        for plugin in extra:
            self.register(plugin)
        for name in disabled:
            self.pm.set_blocked(name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
            raise PluginError(f"plugin {name!r}: {exc}") from None

    def _load_entry_points(self, disabled: set[str]) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                         key=lambda e: e.name):
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            if ep.name in disabled or self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} from distribution {dist_name or '?'} {version or ''}"
                    f" failed to import: {type(exc).__name__}: {exc} (disable it with "
                    f"'plugins.disabled: [{ep.name}]' or reinstall it)".replace("  ", " ")
                ) from None
            self.register(plugin, name=ep.name, distribution=dist_name, version=version)

    def register(self, plugin: Any, *, name: str | None = None,
                 distribution: str | None = None, version: str | None = None) -> str:
        """Register one plugin object; returns its name."""
        try:
            registered = self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name or plugin!r} cannot be registered: {exc}") \
                from None
        if registered is None:  # blocked
            return name or ""
        plugin_name = self.pm.get_name(plugin) or ""
        self._dists[plugin_name] = (distribution, version)
        return plugin_name

    # -- contributions --------------------------------------------------------------

    def collect(self) -> Contributions:
        """Call every register hook once; returns (and keeps) the contributions."""
        if self._collected:
            return self.contributions
        for hook_name, family in _NAMED_FACTORY_HOOKS.items():
            self._call_each(hook_name, lambda plugin, fam=family: self._named_factory(fam, plugin))
        self._call_each("kubeling_register_config_sections", self._config_section)
        self._call_each("kubeling_register_kinds", self._kind)
        self._call_each("kubeling_register_admitters", self._admitter)
        self._call_each("kubeling_register_authenticators",
                        lambda p: self._named_object("authenticator", "authenticate", p))
        self._call_each("kubeling_register_authorizers",
                        lambda p: self._named_object("authorizer", "authorize", p))
        self._call_each("kubeling_register_scheduler_plugins",
                        lambda p: self._named_callable("scheduler-plugin", p))
        self._call_each("kubeling_register_controllers",
                        lambda p: self._named_callable("controller", p))
        self._call_each("kubeling_register_components", self._component)
        sections: dict[str, type] = {}
        for c in self.contributions.family("config-section").values():
            sections[c.name] = c.value
        for family, parent in _SETTINGS_PARENT.items():
            for c in self.contributions.family(family).values():
                if c.settings is not None:
                    sections[f"{parent}.{c.name}"] = c.settings
        try:
            self.config_class = build_config_class(sections)
        except (ValueError, TypeError) as exc:
            raise PluginError(f"config sections: {exc}") from None
        self._collected = True
        return self.contributions

    def _call_each(self, hook_name: str, make_register: Callable[[str], Callable[..., None]]
                   ) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            register = make_register(impl.plugin_name)
            try:
                impl.function(register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    def _contribution(self, family: str, name: str, value: Any, plugin: str,
                      **kw: Any) -> Contribution:
        dist, _ = self._dists.get(plugin, (None, None))
        return Contribution(family=family, name=name, value=value, plugin=plugin,
                            distribution=dist, **kw)

    def _named_factory(self, family: str, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], *,
                     settings: type | None = None) -> None:
            _check_name(family, name)
            if not callable(factory):
                raise PluginError(f"{family} {name!r} from plugin {plugin!r}: factory is not "
                                  f"callable")
            if settings is not None and not attrs.has(settings):
                raise PluginError(f"{family} {name!r} from plugin {plugin!r}: settings must "
                                  f"be an attrs class")
            self.contributions.add(self._contribution(family, name, factory, plugin,
                                                      settings=settings))
        return register

    def _config_section(self, plugin: str) -> Callable[..., None]:
        def register(path: str, cls: type) -> None:
            if not attrs.has(cls):
                raise PluginError(f"config section {path!r} from plugin {plugin!r}: not an "
                                  f"attrs class")
            missing = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
            if missing:
                raise PluginError(f"config section {path!r} from plugin {plugin!r}: every "
                                  f"setting needs a default ({', '.join(missing)} has none)")
            self.contributions.add(self._contribution("config-section", path, cls, plugin))
        return register

    def _kind(self, plugin: str) -> Callable[..., None]:
        def register(kind: Any) -> None:
            key = f"{kind.group or 'core'}/{kind.version}/{kind.plural}"
            self.contributions.add(self._contribution("kind", key, kind, plugin))
        return register

    def _admitter(self, plugin: str) -> Callable[..., None]:
        def register(admitter: Any) -> None:
            name = getattr(admitter, "name", None)
            if not name or not callable(getattr(admitter, "admit", None)):
                raise PluginError(f"admitter from plugin {plugin!r} needs a name and an "
                                  f"admit(request) method")
            self.contributions.add(self._contribution("admitter", name, admitter, plugin))
        return register

    def _named_object(self, family: str, method: str, plugin: str) -> Callable[..., None]:
        def register(name: str, obj: Any) -> None:
            _check_name(family, name)
            if not callable(getattr(obj, method, None)):
                raise PluginError(f"{family} {name!r} from plugin {plugin!r} has no "
                                  f"{method}() method")
            self.contributions.add(self._contribution(family, name, obj, plugin))
        return register

    def _named_callable(self, family: str, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any]) -> None:
            _check_name(family, name)
            if not callable(factory):
                raise PluginError(f"{family} {name!r} from plugin {plugin!r}: factory is not "
                                  f"callable")
            self.contributions.add(self._contribution(family, name, factory, plugin))
        return register

    def _component(self, plugin: str) -> Callable[..., None]:
        def register(name: str, factory: Callable[..., Any], *, role: str = "control-plane",
                     leader_elected: bool = False) -> None:
            _check_name("component", name)
            if role not in ROLES:
                raise PluginError(f"component {name!r} from plugin {plugin!r}: role must be "
                                  f"one of {', '.join(ROLES)}, not {role!r}")
            self.contributions.add(self._contribution(
                "component", name, factory, plugin,
                options={"role": role, "leader_elected": leader_elected}))
        return register

    # -- introspection --------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution, version and implemented hooks."""
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda item: item[0]):
            if plugin is None:
                continue
            dist, version = self._dists.get(name, (None, None))
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
            out.append(PluginInfo(name=name, distribution=dist, version=version, module=module,
                                  hooks=hooks))
        return out

    def call_config_changed(self, old: Config, new: Config) -> None:
        """Announce a live config change to every plugin and registered component."""
        self.pm.hook.kubeling_config_changed(old=old, new=new)


def _check_name(family: str, name: Any) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise PluginError(f"{family} name must be a non-empty string without spaces, "
                          f"not {name!r}")

