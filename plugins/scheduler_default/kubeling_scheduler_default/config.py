"""The ``scheduler`` config section: profiles like KubeSchedulerConfiguration's.

Example (``cluster.yaml``)::

    scheduler:
      profiles:
        - scheduler_name: default-scheduler
          plugins:
            score:
              enabled: [{name: NodeResourcesBalancedAllocation, weight: 5}]
              disabled: [{name: ImageLocality}]
        - scheduler_name: bin-packing
          plugin_config:
            - name: NodeResourcesFit
              args: {scoringStrategy: {type: MostAllocated}}

Plugin args use Kubernetes' (camelCase) names, so KubeSchedulerConfiguration examples
carry over.  Enabled/disabled lists merge into the default plugin set exactly as
Kubernetes merges them (``disabled: [{name: "*"}]`` drops every default).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "DEFAULT_PLUGINS",
    "EXTENSION_POINTS",
    "PluginConfig",
    "PluginRef",
    "PluginSet",
    "Plugins",
    "Profile",
    "SchedulerSettings",
    "merge_plugin_set",
]

EXTENSION_POINTS = ("pre_enqueue", "queue_sort", "pre_filter", "filter", "post_filter",
                    "pre_score", "score", "reserve", "permit", "pre_bind", "bind",
                    "post_bind")
"""Extension points in the order a pod meets them (``multi_point`` covers all)."""


@attrs.frozen(kw_only=True)
class PluginRef:
    """A plugin named in a profile, with its score weight (score only; default 1)."""

    name: str
    weight: int | None = None


@attrs.frozen(kw_only=True)
class PluginSet:
    """Plugins to add to and remove from the default set at one extension point."""

    enabled: list[PluginRef] = attrs.field(factory=list)
    disabled: list[PluginRef] = attrs.field(factory=list)
    """``{name: "*"}`` disables every default plugin at this point."""


@attrs.frozen(kw_only=True)
class Plugins:
    """Per extension point changes; ``multi_point`` enables a plugin everywhere it fits."""

    multi_point: PluginSet = attrs.field(factory=PluginSet)
    pre_enqueue: PluginSet = attrs.field(factory=PluginSet)
    queue_sort: PluginSet = attrs.field(factory=PluginSet)
    pre_filter: PluginSet = attrs.field(factory=PluginSet)
    filter: PluginSet = attrs.field(factory=PluginSet)
    post_filter: PluginSet = attrs.field(factory=PluginSet)
    pre_score: PluginSet = attrs.field(factory=PluginSet)
    score: PluginSet = attrs.field(factory=PluginSet)
    reserve: PluginSet = attrs.field(factory=PluginSet)
    permit: PluginSet = attrs.field(factory=PluginSet)
    pre_bind: PluginSet = attrs.field(factory=PluginSet)
    bind: PluginSet = attrs.field(factory=PluginSet)
    post_bind: PluginSet = attrs.field(factory=PluginSet)


@attrs.frozen(kw_only=True)
class PluginConfig:
    """Arguments of one plugin (Kubernetes' ``pluginConfig`` entry)."""

    name: str
    args: dict[str, Any] = attrs.field(factory=dict)


def _check_percentage(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not 0 <= value <= 100:
        raise ValueError(f"{attribute.name} must be between 0 and 100, not {value}")


@attrs.frozen(kw_only=True)
class Profile:
    """One scheduler profile, picked by pods whose ``spec.schedulerName`` names it."""

    scheduler_name: str = "default-scheduler"
    percentage_of_nodes_to_score: int | None = attrs.field(default=None,
                                                           validator=_check_percentage)
    """Overrides the section's value for this profile."""
    plugins: Plugins = attrs.field(factory=Plugins)
    plugin_config: list[PluginConfig] = attrs.field(factory=list)

    def args_for(self, name: str) -> dict[str, Any]:
        for entry in self.plugin_config:
            if entry.name == name:
                return dict(entry.args)
        return {}


def _default_profiles() -> list[Profile]:
    return [Profile()]


@attrs.frozen(kw_only=True)
class SchedulerSettings:
    """The ``scheduler`` section."""

    profiles: list[Profile] = attrs.field(factory=_default_profiles)
    percentage_of_nodes_to_score: int = attrs.field(default=0, validator=_check_percentage)
    """Share of nodes to find feasible before scoring; 0: Kubernetes' adaptive default
    (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes)."""
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0
    pod_max_in_unschedulable_pods_seconds: float = 300.0
    """An unschedulable pod no event has moved is retried after this long."""
    bind_concurrency: int = 128
    """Bindings in flight at once (binding runs off the scheduling loop)."""
    event_workers: int = 8
    """Tasks writing Events to the API."""


DEFAULT_PLUGINS: tuple[tuple[str, int | None], ...] = (
    ("SchedulingGates", None),
    ("PrioritySort", None),
    ("NodeUnschedulable", None),
    ("NodeName", None),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", None),
    ("NodeResourcesFit", 1),
    ("VolumeBinding", None),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", None),
)
"""Kubernetes' default multi-point plugins and score weights (of the volume plugins only
VolumeBinding's claim checks: kubeling provisions and attaches no volumes)."""


def merge_plugin_set(defaults: list[PluginRef], custom: PluginSet
                     ) -> tuple[list[PluginRef], set[str]]:
    """Kubernetes' ``mergePluginSet``: defaults minus disabled, re-configured in place,
    then the custom additions.  Returns the enabled list and the disabled names."""
    disabled = {p.name for p in custom.disabled}
    custom_by_name = {p.name: (i, p) for i, p in enumerate(custom.enabled)}
    replaced: set[int] = set()
    out: list[PluginRef] = []
    if "*" not in disabled:
        for plugin in defaults:
            if plugin.name in disabled:
                continue
            if plugin.name in custom_by_name:
                index, override = custom_by_name[plugin.name]
                plugin = override
                replaced.add(index)
            out.append(plugin)
    for index, plugin in enumerate(custom.enabled):
        if index not in replaced:
            out.append(plugin)
    return out, disabled
