"""Hook implementations: the ``scheduler`` config section, the PriorityClass kind, the
default scheduling plugins and the scheduler component."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubeling import hookimpl
from kubeling.plugins import PluginError
from kubeling_scheduler_default.config import SchedulerSettings
from kubeling_scheduler_default.kinds import PriorityAdmitter, priority_class_kind
from kubeling_scheduler_default.plugins import DEFAULT_PLUGIN_CLASSES

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import (
        RegisterComponent,
        RegisterConfigSection,
        RegisterKind,
        RegisterSchedulerPlugin,
    )

__all__ = [
    "kubeling_register_admitters",
    "kubeling_register_components",
    "kubeling_register_config_sections",
    "kubeling_register_kinds",
    "kubeling_register_scheduler_plugins",
    "make_scheduler",
]


@hookimpl
def kubeling_register_config_sections(register: RegisterConfigSection) -> None:
    """The ``scheduler`` section: profiles, percentageOfNodesToScore, backoff."""
    register("scheduler", SchedulerSettings)


@hookimpl
def kubeling_register_kinds(register: RegisterKind) -> None:
    """scheduling.k8s.io/v1 PriorityClass."""
    register(priority_class_kind())


@hookimpl
def kubeling_register_admitters(register: Any) -> None:
    """Priority admission: pods get the priority of their PriorityClass at creation."""
    register(PriorityAdmitter())


@hookimpl
def kubeling_register_scheduler_plugins(register: RegisterSchedulerPlugin) -> None:
    """Kubernetes' default plugins, under Kubernetes' names."""
    for name, factory in DEFAULT_PLUGIN_CLASSES.items():
        register(name, factory)


def make_scheduler(ctx: Context) -> Any:
    """Build the scheduler component from the config and every registered plugin."""
    from kubeling_scheduler_default.scheduler import Scheduler

    settings = ctx.section("scheduler") or SchedulerSettings()
    registry = {name: c.value for name, c in
                ctx.host.contributions.family("scheduler-plugin").items()}
    try:
        return Scheduler(client=ctx.client("kubeling-scheduler"), settings=settings,
                         registry=registry, informers=ctx.informers)
    except ValueError as exc:
        raise PluginError(f"scheduler: {exc}") from None


@hookimpl
def kubeling_register_components(register: RegisterComponent) -> None:
    """The scheduler: control plane, one active instance (leader-elected)."""
    register("scheduler", make_scheduler, role="control-plane", leader_elected=True)
