"""The contract between kubeling's core and its plugins: every hook, by family.

A plugin is a module (or object) with functions decorated by :data:`kubeling.hookimpl`
whose names and parameters match the specs below.  It is found through the ``kubeling``
entry-point group::

    [project.entry-points.kubeling]
    myplugin = "kubeling_myplugin.hooks"

Most hooks take a ``register`` callback: the plugin calls it once per thing it
contributes.  The core's callback rejects duplicate names (naming both distributions),
validates what it is given, and records which distribution contributed what, which is what
``kubeling plugins`` shows.  Hooks run at start-up (and on config reload); the objects they
register are then called directly on every hot path.

Where a hook takes a ``ctx`` it is a :class:`kubeling.context.Context`: the validated
config, the data directory, the plugin host, and a way to get an API client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubeling import hookspec

if TYPE_CHECKING:
    import click

    from kubeling.config import Config
    from kubeling.context import Context
    from kubeling.leader import LeaderElector
    from kubeling.plugins import (
        RegisterAdmitter,
        RegisterAuthenticator,
        RegisterAuthorizer,
        RegisterComponent,
        RegisterConfigSection,
        RegisterController,
        RegisterKind,
        RegisterNamedFactory,
        RegisterSchedulerPlugin,
    )


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------


@hookspec
def kubeling_register_config_sections(register: RegisterConfigSection) -> None:
    """Contribute the attrs class of a plugin's own config section.

    ``register(path, cls)`` adds a section at the dotted ``path`` (``"scheduler"``,
    ``"kubelet"``); ``cls`` must be an ``attrs`` class whose every field has a default, so
    that a config file that leaves the section out is still valid.  Settings of a storage,
    runtime or proxier are registered with that backend instead (see
    :func:`kubeling_register_storages`).

    :param register: ``register(path: str, cls: type) -> None``.
    """


@hookspec
def kubeling_config_changed(old: Config, new: Config) -> None:
    """Announce that the config file changed while running and the new one is valid.

    Called after the new config has been validated and installed.  Besides plugin modules,
    every running component object that implements this hook receives it, so a component
    can apply new settings (a scheduler its score weights) without a restart.  An invalid
    file never reaches this hook: it is logged and ignored.

    :param old: the config that was in force.
    :param new: the config now in force.
    """


# ---------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------


@hookspec
def kubeling_register_storages(register: RegisterNamedFactory) -> None:
    """Contribute storage backends, picked by name with ``storage.backend``.

    ``register(name, factory, settings=None)``: ``factory(settings, ctx)`` returns a
    :class:`kubeling.storage.Storage` (not yet started).  ``settings`` is an attrs class
    whose instance appears in the config at ``storage.<name>`` and is passed to the factory
    (``None`` when the backend takes no settings).

    :param register: ``register(name: str, factory, *, settings: type | None = None)``.
    """


# ---------------------------------------------------------------------------------------
# API kinds, admission, authentication and authorization
# ---------------------------------------------------------------------------------------


@hookspec
def kubeling_register_kinds(register: RegisterKind) -> None:
    """Contribute API kinds the API server serves.

    ``register(kind)`` takes a :class:`kubeling.api.registry.KindInfo`: group, version,
    kind, plural, scope, the attrs model, its strategy (defaults, validation, status and
    generation rules), short names and categories.  Every kind, built-in or contributed,
    goes through the same request pipeline.

    :param register: ``register(kind: KindInfo) -> None``.
    """


@hookspec
def kubeling_register_admitters(register: RegisterAdmitter) -> None:
    """Contribute admission plugins, run on every create, update and delete.

    ``register(admitter)``: an object with ``name: str``, ``mutating: bool``,
    ``order: int`` (lower runs first) and ``admit(request)`` where ``request`` is a
    :class:`kubeling.api.admission.AdmissionRequest`.  Mutating admitters may change
    ``request.object``; any admitter rejects by raising
    :class:`kubeling.api.errors.ApiError` (usually ``Forbidden`` or ``Invalid``).
    Mutating admitters run before validation, validating ones after.

    :param register: ``register(admitter) -> None``.
    """


@hookspec
def kubeling_register_authenticators(register: RegisterAuthenticator) -> None:
    """Contribute authenticators, tried in the order ``api.authenticators`` lists them.

    ``register(name, authenticator)``: ``authenticator.authenticate(request)`` returns a
    :class:`kubeling.api.auth.UserInfo`, or ``None`` to let the next one try, or raises
    ``ApiError`` (401) for credentials that are present but wrong.

    :param register: ``register(name: str, authenticator) -> None``.
    """


@hookspec
def kubeling_register_authorizers(register: RegisterAuthorizer) -> None:
    """Contribute authorizers, asked in the order ``api.authorizers`` lists them.

    ``register(name, authorizer)``: ``authorizer.authorize(attributes)`` returns
    ``"allow"``, ``"deny"`` or ``"no-opinion"`` for a
    :class:`kubeling.api.auth.RequestAttributes` (user, verb, resource, namespace, name).

    :param register: ``register(name: str, authorizer) -> None``.
    """


# ---------------------------------------------------------------------------------------
# scheduling and controllers
# ---------------------------------------------------------------------------------------


@hookspec
def kubeling_register_scheduler_plugins(register: RegisterSchedulerPlugin) -> None:
    """Contribute scheduling-framework plugins, enabled by name in a scheduler profile.

    ``register(name, factory)``: ``factory(args, handle)`` builds the plugin from its args
    (the profile's ``plugin_config`` entry for this name, or ``{}``) and the framework
    handle.  The plugin is an object with a ``name`` and one method per extension point it
    implements (``pre_filter``, ``filter``, ``post_filter``, ``pre_score``, ``score``,
    ``normalize_score``, ``reserve``, ``unreserve``, ``permit``, ``pre_bind``, ``bind``,
    ``post_bind``), each returning a scheduling ``Status``.

    :param register: ``register(name: str, factory) -> None``.
    """


@hookspec
def kubeling_register_controllers(register: RegisterController) -> None:
    """Contribute reconcilers the controller manager runs.

    ``register(name, factory)``: ``factory(ctx)`` returns a controller object, run by the
    controller manager when ``controllers.disabled`` does not name it.

    :param register: ``register(name: str, factory) -> None``.
    """


# ---------------------------------------------------------------------------------------
# long-running components, runtimes and proxies
# ---------------------------------------------------------------------------------------


@hookspec
def kubeling_register_components(register: RegisterComponent) -> None:
    """Contribute long-running components (scheduler, controller manager, kubelet, proxy).

    ``register(name, factory, role="control-plane", leader_elected=False)``:
    ``factory(ctx)`` returns an object with ``async run()``, which runs until cancelled.
    ``role`` is ``"control-plane"`` or ``"node"``: ``kubeling up --role`` starts only the
    components of that role (``all``, the default, starts both).  Leader-elected components
    run only while this process holds the lease (see :func:`kubeling_leader_elector`).
    ``components.disabled`` in the config turns one off by name.

    :param register: ``register(name: str, factory, *, role: str = "control-plane",
        leader_elected: bool = False) -> None``.
    """


@hookspec
def kubeling_register_runtimes(register: RegisterNamedFactory) -> None:
    """Contribute container runtimes, picked by name with ``node.runtime``.

    ``register(name, factory, settings=None)``: ``factory(settings, ctx)`` returns a
    :class:`kubeling.runtime.Runtime`.  ``settings`` (an attrs class) appears in the config
    at ``node.<name>``.

    :param register: ``register(name: str, factory, *, settings: type | None = None)``.
    """


@hookspec
def kubeling_register_proxiers(register: RegisterNamedFactory) -> None:
    """Contribute service proxies, picked by name with ``proxy.backend``.

    ``register(name, factory, settings=None)``: ``factory(settings, ctx)`` returns a
    :class:`kubeling.proxy.Proxier`.  ``settings`` (an attrs class) appears in the config at
    ``proxy.<name>``.

    :param register: ``register(name: str, factory, *, settings: type | None = None)``.
    """


@hookspec(firstresult=True)
def kubeling_leader_elector(ctx: Context) -> LeaderElector | None:
    """Provide the leader elector that guards leader-elected components.

    Stops at the first non-None result.  Without any, leader-elected components simply run
    (a single control plane needs no election).

    :param ctx: the running context (config, client factory).
    :returns: a :class:`kubeling.leader.LeaderElector`, or ``None`` to leave it to others.
    """


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------


@hookspec
def kubeling_register_commands(cli: click.Group) -> None:
    """Add commands to the ``kubeling`` command line.

    :param cli: the top-level click group; call ``cli.add_command(...)`` or decorate with
        ``@cli.command()``.
    """


def all_hook_names() -> list[str]:
    """Names of every hook in this contract, in definition order."""
    return [
        name for name, value in globals().items()
        if name.startswith("kubeling_") and callable(value)
    ]

