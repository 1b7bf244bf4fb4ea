"""The ``controllers`` config section: which controllers run and how they behave.

Defaults are Kubernetes' (kube-controller-manager's flags); tests shorten the periods.
"""

from __future__ import annotations

import attrs

__all__ = ["ControllersConfig"]


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, not {value}")


@attrs.frozen(kw_only=True)
class ControllersConfig:
    """The ``controllers`` config section of ``kubeling up``."""

    disabled: list[str] = attrs.field(factory=list)
    """Controller names not to run (``kubeling plugins`` lists them), e.g. ``[cronjob]``."""
    workers: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    """Workers per controller: keys reconciled concurrently (``--concurrent-*-syncs``)."""
    concurrent: dict[str, int] = attrs.field(factory=dict)
    """Per-controller worker counts overriding ``workers``, e.g. ``{replicaset: 10}``."""
    queue_base_delay_seconds: float = attrs.field(default=0.005, validator=_non_negative)
    """First retry delay of a failing key; doubles on every further failure."""
    queue_max_delay_seconds: float = attrs.field(default=1000.0, validator=_non_negative)
    """Upper bound of a failing key's retry delay."""
    queue_retry_qps: float = attrs.field(default=10.0, validator=_non_negative)
    """Overall rate of retries per controller (a token bucket; 0 disables it)."""
    queue_retry_burst: int = attrs.field(default=100, validator=attrs.validators.ge(1))
    """Burst of the retry token bucket."""
    max_retries: int = attrs.field(default=15, validator=attrs.validators.ge(0))
    """Failures of one key after which it is dropped (logged) until its next change."""
    burst_replicas: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    """Most pods a ReplicaSet/Job/DaemonSet creates or deletes in one sync."""
    expectations_timeout_seconds: float = attrs.field(default=300.0, validator=_non_negative)
    """How long a controller waits to observe its own creates/deletes before resyncing."""

    node_monitor_period_seconds: float = attrs.field(default=5.0, validator=_non_negative)
    """How often the node lifecycle controller checks node heartbeats."""
    node_monitor_grace_period_seconds: float = attrs.field(default=40.0,
                                                           validator=_non_negative)
    """A node whose Lease (or status) is not renewed for this long becomes ``Unknown``."""
    node_startup_grace_period_seconds: float = attrs.field(default=60.0,
                                                           validator=_non_negative)
    """Grace for a node that never reported status, counted from its creation."""
    node_eviction_rate: float = attrs.field(default=0.1, validator=_non_negative)
    """Nodes per second that get NoExecute taints in a healthy zone."""
    secondary_node_eviction_rate: float = attrs.field(default=0.01, validator=_non_negative)
    """Nodes per second in a partially disrupted large zone."""
    unhealthy_zone_threshold: float = attrs.field(default=0.55, validator=_non_negative)
    """Fraction of not-ready nodes (at least 3) that makes a zone partially disrupted."""
    large_cluster_size_threshold: int = attrs.field(default=50, validator=attrs.validators.ge(0))
    """A partially disrupted zone with at most this many nodes stops evicting."""

    terminated_pod_gc_threshold: int = attrs.field(default=12500,
                                                   validator=attrs.validators.ge(0))
    """Finished pods kept before the oldest are deleted (0 disables it)."""
    pod_gc_period_seconds: float = attrs.field(default=20.0, validator=_non_negative)
    """How often the pod garbage collector runs."""
    orphaned_pod_quarantine_seconds: float = attrs.field(default=40.0, validator=_non_negative)
    """How long a node must stay absent before its pods are deleted."""

    job_backoff_base_seconds: float = attrs.field(default=10.0, validator=_non_negative)
    """Delay before replacing a Job's first failed pod; doubles per failure."""
    job_backoff_max_seconds: float = attrs.field(default=360.0, validator=_non_negative)
    """Upper bound of that delay."""
    cronjob_check_seconds: float = attrs.field(default=10.0, validator=_non_negative)
    """Upper bound on how long the CronJob controller sleeps between schedule checks."""

    namespace_retry_seconds: float = attrs.field(default=2.0, validator=_non_negative)
    """How soon a namespace still holding content is checked again."""
    hpa_sync_period_seconds: float = attrs.field(default=15.0, validator=_non_negative)
    """How often each HorizontalPodAutoscaler is evaluated
    (``--horizontal-pod-autoscaler-sync-period``)."""
    hpa_downscale_stabilization_seconds: float = attrs.field(default=300.0,
                                                             validator=_non_negative)
    """A scale-down follows the highest recommendation of this window."""
    hpa_tolerance: float = attrs.field(default=0.1, validator=_non_negative)
    """Usage within this fraction of the target changes nothing."""
    endpoint_slice_max_endpoints: int = attrs.field(default=100,
                                                    validator=attrs.validators.ge(1))
    """Endpoints per EndpointSlice (``--max-endpoints-per-slice``)."""

    events_qps: float = attrs.field(default=1.0 / 300, validator=_non_negative)
    """Refill rate of the per-object event spam filter (Kubernetes: one per 5 minutes)."""
    events_burst: int = attrs.field(default=25, validator=attrs.validators.ge(1))
    """Events one object may get in a burst before the spam filter drops them."""

    def workers_for(self, name: str) -> int:
        """Workers of the controller ``name``."""
        return max(1, int(self.concurrent.get(name, self.workers)))
