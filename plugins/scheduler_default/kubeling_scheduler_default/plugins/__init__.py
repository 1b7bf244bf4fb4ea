"""The default scheduler plugins, by the names Kubernetes gives them.

Each module holds one plugin class and its pure helpers (``fits``/``score`` on a
:class:`~kubeling_scheduler_default.nodeinfo.NodeInfo`), testable on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubeling_scheduler_default.plugins.defaultbinder import DefaultBinder
from kubeling_scheduler_default.plugins.defaultpreemption import DefaultPreemption
from kubeling_scheduler_default.plugins.imagelocality import ImageLocality
from kubeling_scheduler_default.plugins.interpodaffinity import InterPodAffinity
from kubeling_scheduler_default.plugins.nodeaffinity import NodeAffinity
from kubeling_scheduler_default.plugins.nodename import NodeName
from kubeling_scheduler_default.plugins.nodeports import NodePorts
from kubeling_scheduler_default.plugins.noderesources import BalancedAllocation, Fit
from kubeling_scheduler_default.plugins.nodeunschedulable import NodeUnschedulable
from kubeling_scheduler_default.plugins.podtopologyspread import PodTopologySpread
from kubeling_scheduler_default.plugins.queuesort import PrioritySort
from kubeling_scheduler_default.plugins.schedulinggates import SchedulingGates
from kubeling_scheduler_default.plugins.tainttoleration import TaintToleration
from kubeling_scheduler_default.plugins.volumebinding import VolumeBinding

__all__ = ["DEFAULT_PLUGIN_CLASSES", "default_registry"]

DEFAULT_PLUGIN_CLASSES: dict[str, Callable[[Mapping[str, Any], Any], Any]] = {
    "SchedulingGates": SchedulingGates,
    "PrioritySort": PrioritySort,
    "NodeUnschedulable": NodeUnschedulable,
    "NodeName": NodeName,
    "TaintToleration": TaintToleration,
    "NodeAffinity": NodeAffinity,
    "NodePorts": NodePorts,
    "NodeResourcesFit": Fit,
    "VolumeBinding": VolumeBinding,
    "PodTopologySpread": PodTopologySpread,
    "InterPodAffinity": InterPodAffinity,
    "DefaultPreemption": DefaultPreemption,
    "NodeResourcesBalancedAllocation": BalancedAllocation,
    "ImageLocality": ImageLocality,
    "DefaultBinder": DefaultBinder,
}


def default_registry() -> dict[str, Callable[[Mapping[str, Any], Any], Any]]:
    """Name -> factory(args, handle) of every default plugin."""
    return dict(DEFAULT_PLUGIN_CLASSES)
