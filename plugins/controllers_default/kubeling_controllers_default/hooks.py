"""The plugin's hook implementations: the controller manager, its controllers, its config
section and the DefaultTolerationSeconds admission plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubeling import hookimpl
from kubeling_controllers_default.admission import DefaultTolerationSeconds
from kubeling_controllers_default.config import ControllersConfig
from kubeling_controllers_default.manager import ControllerManager

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import (
        RegisterAdmitter,
        RegisterComponent,
        RegisterConfigSection,
        RegisterController,
    )

__all__ = [
    "CONTROLLERS",
    "kubeling_register_admitters",
    "kubeling_register_components",
    "kubeling_register_config_sections",
    "kubeling_register_controllers",
]


def _lazy(module: str, cls: str) -> Callable[[Any], Any]:
    """A factory importing its controller class on first use (fast ``kubeling --help``)."""

    def factory(ctx: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(f"kubeling_controllers_default.{module}"),
                       cls)(ctx)

    factory.__name__ = f"{cls}_factory"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"Build a :class:`kubeling_controllers_default.{module}.{cls}`."
    return factory


CONTROLLERS: dict[str, tuple[str, str]] = {
    "replicaset": ("replicaset", "ReplicaSetController"),
    "replicationcontroller": ("replicaset", "ReplicationControllerController"),
    "deployment": ("deployment", "DeploymentController"),
    "daemonset": ("daemonset", "DaemonSetController"),
    "statefulset": ("statefulset", "StatefulSetController"),
    "job": ("job", "JobController"),
    "ttl-after-finished": ("job", "TTLAfterFinishedController"),
    "cronjob": ("cronjob", "CronJobController"),
    "disruption": ("disruption", "DisruptionController"),
    "horizontalpodautoscaler": ("podautoscaler", "HorizontalPodAutoscalerController"),
    "endpoints": ("endpoints", "EndpointsController"),
    "endpointslice": ("endpoints", "EndpointSliceController"),
    "garbagecollector": ("garbagecollector", "GarbageCollector"),
    "nodelifecycle": ("nodelifecycle", "NodeLifecycleController"),
    "taint-eviction": ("nodelifecycle", "TaintEvictionController"),
    "podgc": ("podgc", "PodGCController"),
    "persistentvolume-binder": ("volumebinder", "PersistentVolumeBinder"),
    "namespace": ("namespace", "NamespaceController"),
    "serviceaccount": ("namespace", "ServiceAccountController"),
}
"""Controller name -> (module, class) of every controller this plugin registers."""


@hookimpl
def kubeling_register_config_sections(register: RegisterConfigSection) -> None:
    """The ``controllers`` section: which controllers run, workers, periods."""
    register("controllers", ControllersConfig)


@hookimpl
def kubeling_register_components(register: RegisterComponent) -> None:
    """The controller manager, a leader-elected control-plane component."""

    def factory(ctx: Context) -> ControllerManager:
        return ControllerManager(ctx)

    register("controller-manager", factory, role="control-plane", leader_elected=True)


@hookimpl
def kubeling_register_controllers(register: RegisterController) -> None:
    """Every default controller, by the name ``controllers.disabled`` uses."""
    for name, (module, cls) in CONTROLLERS.items():
        register(name, _lazy(module, cls))


@hookimpl
def kubeling_register_admitters(register: RegisterAdmitter) -> None:
    """DefaultTolerationSeconds: pods tolerate not-ready/unreachable nodes for 300 s."""
    register(DefaultTolerationSeconds())
