"""Strategies of the core/v1 kinds: Namespace, Node, Pod, Service, Endpoints, ConfigMap,
Secret, ServiceAccount and Event.

Defaults, validation messages and field paths follow the Kubernetes v1.32 API server; the
table columns follow ``kubectl get`` (kubectl upper-cases the column names).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    as_list,
    base64_problem,
    cidr_causes,
    dns_label_causes,
    dns_subdomain_causes,
    ensure_dict,
    field_str,
    format_age,
    format_labels,
    ip_causes,
    is_int,
    join_limited,
    label_name_causes,
    label_value_causes,
    meta,
    non_special_ip_causes,
    parse_ip,
    parse_time,
    port_num_or_name_causes,
    port_number_causes,
    protocol_causes,
    sub,
)
from kubeling.api.kinds._podspec import (
    TAINT_EFFECTS,
    default_pod_spec,
    pod_qos_class,
    pod_spec_update_causes,
    validate_pod_spec,
)
from kubeling.api.strategy import TableColumn
from kubeling.api.validation import (
    is_dns1035_label,
    is_dns1123_label,
    is_qualified_name,
    validate_labels,
)

__all__ = [
    "ConfigMapStrategy",
    "EndpointsStrategy",
    "EventStrategy",
    "NamespaceStrategy",
    "NodeStrategy",
    "PodStrategy",
    "SecretStrategy",
    "ServiceAccountStrategy",
    "ServiceStrategy",
    "endpoints_cell",
    "node_roles",
    "node_status",
    "pod_ready",
    "pod_restarts",
    "pod_status_reason",
    "service_external_ip",
    "service_ports",
]

IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
MAX_DATA_BYTES = 1024 * 1024
CONFIG_KEY_ERROR = ("a valid config key must consist of alphanumeric characters, '-', '_' or "
                    "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')")


def _column(name: str, value: Any, *, type: str = "string", priority: int = 0,
            description: str = "") -> TableColumn:
    return TableColumn(name, value, type=type, priority=priority, description=description)


# =====================================================================================
# Namespace
# =====================================================================================


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


class NamespaceStrategy(BuiltinStrategy):
    """Namespaces: ``Active`` on create with the ``kubernetes`` finalizer in
    ``spec.finalizers``; ``Terminating`` once deleted, kept until the namespace controller
    has emptied it and cleared ``spec.finalizers`` (through the ``finalize`` subresource)."""

    name_check = staticmethod(is_dns1123_label)
    field_selectors = ("status.phase", "name")
    return_deleted_object = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        spec = ensure_dict(obj, "spec")
        finalizers = list(as_list(spec.get("finalizers")))
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        spec["finalizers"] = finalizers

    def default(self, obj: Obj) -> None:
        m = ensure_dict(obj, "metadata")
        if m.get("name"):
            ensure_dict(m, "labels")["kubernetes.io/metadata.name"] = m["name"]

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for finalizer in as_list(sub(obj, "spec", "finalizers")):
            causes.extend(_finalizer_name_causes("spec.finalizers", finalizer))
        return causes

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        finalizers = sub(old, "spec", "finalizers")
        spec = ensure_dict(new, "spec")
        if finalizers is None:
            spec.pop("finalizers", None)
        else:
            spec["finalizers"] = copy.deepcopy(finalizers)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        phase = sub(new, "status", "phase")
        if phase not in (None, "", "Active", "Terminating"):
            return [Cause.not_supported("status.phase", phase, ("Active", "Terminating"))]
        return []

    def has_pending_finalizers(self, obj: Obj) -> bool:
        return super().has_pending_finalizers(obj) or bool(sub(obj, "spec", "finalizers"))

    def prepare_for_delete(self, obj: Obj) -> None:
        ensure_dict(obj, "status")["phase"] = "Terminating"

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"status.phase": field_str(sub(obj, "status", "phase")),
                "name": field_str(meta(obj).get("name"))}

    def table_columns(self) -> list[TableColumn]:
        return [_column("Status", lambda o: sub(o, "status", "phase") or "",
                        description="The status of the namespace"), AGE]


def _finalizer_name_causes(field: str, value: Any) -> list[Cause]:
    if not isinstance(value, str):
        return [Cause.invalid(field, value, "must be a string")]
    causes = [Cause.invalid(field, value, p) for p in is_qualified_name(value)]
    if "/" not in value and value not in STANDARD_FINALIZERS:
        causes.append(Cause.invalid(field, value, "name is neither a standard finalizer name "
                                                  "nor is it fully qualified"))
    return causes


# =====================================================================================
# Node
# =====================================================================================


class NodeStrategy(BuiltinStrategy):
    """Nodes: the node agent creates them with their status; ``spec.podCIDRs`` and
    ``spec.providerID`` may only be set once."""

    field_selectors = ("spec.unschedulable",)

    def prepare_for_create(self, obj: Obj) -> None:
        """A node is registered with its status (the node agent fills it): keep it."""

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if spec.get("podCIDR") and not spec.get("podCIDRs"):
            spec["podCIDRs"] = [spec["podCIDR"]]
        elif spec.get("podCIDRs") and not spec.get("podCIDR"):
            spec["podCIDR"] = as_list(spec["podCIDRs"])[0]
        _default_node_status(obj)

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        # Kubernetes reports taint problems under metadata.taints (sic)
        causes = _taint_causes(as_list(spec.get("taints")), "metadata.taints")
        cidrs = as_list(spec.get("podCIDRs"))
        for i, cidr in enumerate(cidrs):
            causes.extend(cidr_causes(f"spec.podCIDRs[{i}]", cidr))
        if len(cidrs) > 1:
            families = {_family(c) for c in cidrs}
            if len(cidrs) > 2 or len(families) != 2:
                causes.append(Cause.invalid("spec.podCIDRs", cidrs,
                                            "may specify no more than one CIDR for each IP "
                                            "family"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        old_cidrs = as_list(sub(old, "spec", "podCIDRs"))
        if old_cidrs and as_list(sub(new, "spec", "podCIDRs")) != old_cidrs:
            causes.append(Cause.forbidden("spec.podCIDRs", 'node updates may not change podCIDR '
                                                           'except from "" to valid'))
        old_provider = sub(old, "spec", "providerID")
        if old_provider and sub(new, "spec", "providerID") != old_provider:
            causes.append(Cause.forbidden("spec.providerID", 'node updates may not change '
                                                             'providerID except from "" to '
                                                             'valid'))
        return causes

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        _default_node_status(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        seen: list[Any] = []
        for i, address in enumerate(as_list(sub(new, "status", "addresses"))):
            if address in seen:
                causes.append(Cause.duplicate(f"status.addresses[{i}]", address))
            seen.append(address)
        return causes

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"spec.unschedulable": field_str(bool(sub(obj, "spec", "unschedulable")))}

    def table_columns(self) -> list[TableColumn]:
        info = ("status", "nodeInfo")
        return [
            _column("Status", node_status, description="The status of the node"),
            _column("Roles", node_roles, description="The roles of the node"),
            AGE,
            _column("Version", lambda o: sub(o, *info, "kubeletVersion") or "",
                    description="Kubelet Version reported by the node."),
            _column("Internal-IP", lambda o: _node_address(o, "InternalIP"), priority=1,
                    description="The node's first internal IP address."),
            _column("External-IP", lambda o: _node_address(o, "ExternalIP"), priority=1,
                    description="The node's first external IP address."),
            _column("OS-Image", lambda o: sub(o, *info, "osImage") or "<unknown>", priority=1,
                    description="OS image reported by the node."),
            _column("Kernel-Version", lambda o: sub(o, *info, "kernelVersion") or "<unknown>",
                    priority=1, description="Kernel version reported by the node."),
            _column("Container-Runtime",
                    lambda o: sub(o, *info, "containerRuntimeVersion") or "<unknown>",
                    priority=1, description="Container runtime version reported by the node."),
        ]


def _default_node_status(obj: Obj) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None \
            and isinstance(status.get("capacity"), dict):
        status["allocatable"] = copy.deepcopy(status["capacity"])


def _family(cidr: Any) -> int:
    try:
        return ipaddress.ip_network(cidr, strict=False).version
    except (ValueError, TypeError):
        return 0


def _taint_causes(taints: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[Any, Any]] = set()
    for i, taint in enumerate(taints):
        tpath = f"{path}[{i}]"
        taint = as_dict(taint)
        causes.extend(label_name_causes(f"{tpath}.key", taint.get("key", "")))
        value = taint.get("value") or ""
        problems = label_value_causes(f"{tpath}.value", value)
        if problems:
            details = ";".join(c.message.split(": ", 2)[-1] for c in problems)
            causes.append(Cause.invalid(f"{tpath}.value", value, details))
        effect = taint.get("effect")
        if not effect:
            causes.append(Cause.required(f"{tpath}.effect"))
        elif effect not in TAINT_EFFECTS:
            causes.append(Cause.not_supported(f"{tpath}.effect", effect, TAINT_EFFECTS))
        key = (taint.get("key"), effect)
        if key in seen:
            shown = {k: taint[k] for k in ("key", "value", "effect", "timeAdded") if taint.get(k)}
            dup = Cause.duplicate(tpath, shown)
            causes.append(Cause(dup.field, dup.message + ": taints must be unique by key and "
                                                         "effect pair", dup.reason))
            continue
        seen.add(key)
    return causes


def node_status(node: Obj) -> str:
    """``Ready``/``NotReady``/``Unknown``, plus ``,SchedulingDisabled`` when cordoned."""
    ready = next((c for c in as_list(sub(node, "status", "conditions"))
                  if as_dict(c).get("type") == "Ready"), None)
    if ready is None:
        parts = ["Unknown"]
    else:
        parts = ["Ready" if ready.get("status") == "True" else "NotReady"]
    if sub(node, "spec", "unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Obj) -> str:
    """Roles from ``node-role.kubernetes.io/<role>`` labels (and ``kubernetes.io/role``)."""
    roles = set()
    for key, value in as_dict(meta(node).get("labels")).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Obj, kind: str) -> str:
    for address in as_list(sub(node, "status", "addresses")):
        if as_dict(address).get("type") == kind:
            return str(address.get("address") or "")
    return "<none>"


# =====================================================================================
# Pod
# =====================================================================================


class PodStrategy(BuiltinStrategy):
    """Pods: defaults of the pod spec, ``Pending`` with a QoS class on create, an
    immutable spec (but for images, a lowered active deadline and added tolerations) and
    a graceful delete while the pod runs on a node."""

    field_selectors = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                       "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                       "status.podIP", "status.nominatedNodeName")
    return_deleted_object = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj.pop("status", None)
        status: Obj = {"phase": "Pending", "qosClass": pod_qos_class(obj)}
        if as_list(sub(obj, "spec", "schedulingGates")):
            status["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastProbeTime": None, "lastTransitionTime": None}]
        obj["status"] = status

    def default(self, obj: Obj) -> None:
        default_pod_spec(ensure_dict(obj, "spec"), pod=True)

    def validate_spec(self, obj: Obj) -> list[Cause]:
        return validate_pod_spec(obj.get("spec"), "spec")

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        return pod_spec_update_causes(new, old)

    def validate_ephemeral_update(self, new: Obj, old: Obj) -> list[Cause]:
        """``pods/ephemeralcontainers`` (``kubectl debug``): ephemeral containers may only
        be added; a new one has a unique name, an image, no ports, probes, lifecycle or
        resources, and a ``targetContainerName`` naming one of the pod's containers.  New
        ones get the defaults of a container (pull policy, termination message)."""
        spec = ensure_dict(new, "spec")
        wanted = spec.get("ephemeralContainers")
        if wanted is None:
            spec.pop("ephemeralContainers", None)
            wanted = []
        if not isinstance(wanted, list) or not all(isinstance(c, dict) for c in wanted):
            return [Cause.invalid("spec.ephemeralContainers", "...", "must be a list of "
                                  "containers")]
        before = {c.get("name"): c for c in as_list(sub(old, "spec", "ephemeralContainers"))}
        causes: list[Cause] = []
        for name, container in before.items():
            now = next((c for c in wanted if c.get("name") == name), None)
            if now is None:
                causes.append(Cause.forbidden("spec.ephemeralContainers",
                                              f'existing ephemeral containers "{name}" may not '
                                              f"be removed"))
            elif now != container:
                causes.append(Cause.forbidden("spec.ephemeralContainers",
                                              f'existing ephemeral containers "{name}" may not '
                                              f"be changed"))
        old_spec = as_dict(old.get("spec"))
        regular = [c.get("name") for c in [*as_list(old_spec.get("containers")),
                                           *as_list(old_spec.get("initContainers"))]]
        seen = set(regular)
        for i, container in enumerate(wanted):
            path = f"spec.ephemeralContainers[{i}]"
            name = container.get("name")
            if name in before:
                seen.add(name)
                continue
            if not container.get("image"):
                container.setdefault("imagePullPolicy", "IfNotPresent")
            elif not container.get("imagePullPolicy"):
                image = str(container["image"])
                latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
                container["imagePullPolicy"] = "Always" if latest and "@" not in image \
                    else "IfNotPresent"
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            if not name:
                causes.append(Cause.required(f"{path}.name"))
            elif name in seen:
                causes.append(Cause.duplicate(f"{path}.name", name))
            else:
                causes.extend(Cause.invalid(f"{path}.name", name, msg)
                              for msg in is_dns1123_label(str(name)))
            seen.add(name)
            if not container.get("image"):
                causes.append(Cause.required(f"{path}.image"))
            for key in ("ports", "livenessProbe", "readinessProbe", "startupProbe",
                        "lifecycle", "resources"):
                if container.get(key):
                    causes.append(Cause.forbidden(f"{path}.{key}",
                                                  "cannot be set for an Ephemeral Container"))
            target = container.get("targetContainerName")
            if target and target not in regular:
                causes.append(Cause(f"{path}.targetContainerName",
                                    f'Not found: "{target}"', "FieldValueNotFound"))
        return causes

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        status = ensure_dict(new, "status")
        if not status.get("qosClass") and sub(old, "status", "qosClass"):
            status["qosClass"] = old["status"]["qosClass"]
        _sync_ips(status, "podIP", "podIPs")
        _sync_ips(status, "hostIP", "hostIPs")

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        if status.get("nominatedNodeName"):
            causes.extend(dns_subdomain_causes("status.nominatedNodeName",
                                               status["nominatedNodeName"]))
        for key in ("podIPs", "hostIPs"):
            for i, entry in enumerate(as_list(status.get(key))):
                causes.extend(ip_causes(f"status.{key}[{i}].ip", as_dict(entry).get("ip")))
        return causes

    def deletion_grace_period(self, obj: Obj, requested: int | None) -> int:
        """Graceful while bound to a node and not finished: the requested period, else
        ``spec.terminationGracePeriodSeconds``; negative periods count as 1 second."""
        spec = as_dict(obj.get("spec"))
        if not spec.get("nodeName") or sub(obj, "status", "phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            period = requested
        else:
            grace = spec.get("terminationGracePeriodSeconds")
            period = grace if is_int(grace) else 30
        return 1 if period < 0 else period

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        spec = as_dict(obj.get("spec"))
        status = as_dict(obj.get("status"))
        ips = as_list(status.get("podIPs"))
        pod_ip = as_dict(ips[0]).get("ip") if ips else status.get("podIP")
        return {
            "spec.nodeName": field_str(spec.get("nodeName")),
            "spec.restartPolicy": field_str(spec.get("restartPolicy")),
            "spec.schedulerName": field_str(spec.get("schedulerName")),
            "spec.serviceAccountName": field_str(spec.get("serviceAccountName")),
            "spec.hostNetwork": field_str(bool(spec.get("hostNetwork"))),
            "status.phase": field_str(status.get("phase")),
            "status.podIP": field_str(pod_ip),
            "status.nominatedNodeName": field_str(status.get("nominatedNodeName")),
        }

    def table_columns(self) -> list[TableColumn]:
        return [
            _column("Ready", pod_ready,
                    description="Ready containers of the pod, out of its containers."),
            _column("Status", pod_status_reason,
                    description="The aggregate status of the pod's containers."),
            _column("Restarts", pod_restarts,
                    description="Container restarts, and how long ago the last one was."),
            AGE,
            _column("IP", _pod_ip, priority=1, description="The pod's IP address."),
            _column("Node", lambda o: sub(o, "spec", "nodeName") or "<none>", priority=1,
                    description="The node the pod is bound to."),
            _column("Nominated Node", lambda o: sub(o, "status", "nominatedNodeName") or "<none>",
                    priority=1, description="The node preemption made room on for the pod."),
            _column("Readiness Gates", _readiness_gates, priority=1,
                    description="Readiness gates that hold true, out of those declared."),
        ]


def _sync_ips(status: Obj, single: str, plural: str) -> None:
    """Keep ``podIP``/``podIPs`` (and ``hostIP``/``hostIPs``) in step, as conversion does."""
    ips = as_list(status.get(plural))
    if status.get(single) and not ips:
        status[plural] = [{"ip": status[single]}]
    elif ips and not status.get(single):
        status[single] = as_dict(ips[0]).get("ip")


def _is_sidecar(container: Any) -> bool:
    return as_dict(container).get("restartPolicy") == "Always"


def _condition_true(pod: Obj, kind: str) -> bool:
    return any(as_dict(c).get("type") == kind and c.get("status") == "True"
               for c in as_list(sub(pod, "status", "conditions")))


def _pod_summary(pod: Obj) -> tuple[int, int, str, int, Any]:
    """(ready, total, status reason, restarts, time of the last restart) as kubectl counts."""
    spec = as_dict(pod.get("spec"))
    status = as_dict(pod.get("status"))
    init_specs = {as_dict(c).get("name"): as_dict(c) for c in as_list(spec.get("initContainers"))}
    total = len(as_list(spec.get("containers"))) + sum(1 for c in init_specs.values()
                                                       if _is_sidecar(c))
    ready = 0
    reason = status.get("reason") or status.get("phase") or ""
    if any(as_dict(c).get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in as_list(status.get("conditions"))):
        reason = "SchedulingGated"
    restarts = sidecar_restarts = 0
    last_restart = last_sidecar_restart = None

    def later(current: Any, state: Obj) -> Any:
        finished = parse_time(sub(state, "lastState", "terminated", "finishedAt"))
        if finished is not None and (current is None or finished > current):
            return finished
        return current

    initializing = False
    init_statuses = as_list(status.get("initContainerStatuses"))
    for index, cs in enumerate(init_statuses):
        cs = as_dict(cs)
        count = cs.get("restartCount") or 0
        restarts += count
        last_restart = later(last_restart, cs)
        sidecar = _is_sidecar(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = later(last_sidecar_restart, cs)
        state = as_dict(cs.get("state"))
        terminated = as_dict(state.get("terminated"))
        waiting = as_dict(state.get("waiting"))
        if state.get("terminated") is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if state.get("terminated") is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(as_list(spec.get('initContainers')))}"
        initializing = True
        break

    if not initializing or _condition_true(pod, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(as_list(status.get("containerStatuses"))):
            cs = as_dict(cs)
            restarts += cs.get("restartCount") or 0
            last_restart = later(last_restart, cs)
            state = as_dict(cs.get("state"))
            waiting = as_dict(state.get("waiting"))
            terminated = as_dict(state.get("terminated"))
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif state.get("terminated") is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif state.get("terminated") is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"

    if meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def pod_ready(pod: Obj) -> str:
    """The READY cell: ``1/2``."""
    ready, total, *_ = _pod_summary(pod)
    return f"{ready}/{total}"


def pod_status_reason(pod: Obj) -> str:
    """The STATUS cell: phase, or the reason a container waits or ended, ``Init:0/1``,
    ``Terminating`` once deleted."""
    return _pod_summary(pod)[2]


def pod_restarts(pod: Obj) -> str:
    """The RESTARTS cell: ``0``, or ``3 (5m ago)``."""
    *_, restarts, last = _pod_summary(pod)
    if restarts and last is not None:
        return f"{restarts} ({format_age(last.isoformat())} ago)"
    return str(restarts)


def _pod_ip(pod: Obj) -> str:
    ips = as_list(sub(pod, "status", "podIPs"))
    ip = as_dict(ips[0]).get("ip") if ips else sub(pod, "status", "podIP")
    return ip or "<none>"


def _readiness_gates(pod: Obj) -> str:
    gates = as_list(sub(pod, "spec", "readinessGates"))
    if not gates:
        return "<none>"
    conditions = {as_dict(c).get("type"): as_dict(c).get("status")
                  for c in as_list(sub(pod, "status", "conditions"))}
    true = sum(1 for g in gates if conditions.get(as_dict(g).get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


# =====================================================================================
# Service
# =====================================================================================


SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def _needs_node_ports(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind == "NodePort" or (kind == "LoadBalancer"
                                  and spec.get("allocateLoadBalancerNodePorts") is not False)


class ServiceStrategy(BuiltinStrategy):
    """Services: type ``ClusterIP`` and the port, traffic-policy and IP-family defaults;
    the cluster IP, once set, stays.  Allocating cluster IPs and node ports is not done
    here."""

    name_check = staticmethod(is_dns1035_label)
    allow_create_on_update = True
    return_deleted_object = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}
        spec = ensure_dict(obj, "spec")
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if not spec.get("sessionAffinity"):
            spec["sessionAffinity"] = "None"
        if spec["sessionAffinity"] == "None":
            spec.pop("sessionAffinityConfig", None)
        elif spec["sessionAffinity"] == "ClientIP":
            config = ensure_dict(ensure_dict(spec, "sessionAffinityConfig"), "clientIP")
            if config.get("timeoutSeconds") is None:
                config["timeoutSeconds"] = 10800
        if not spec.get("type"):
            spec["type"] = "ClusterIP"
        for port in as_list(spec.get("ports")):
            if not isinstance(port, dict):
                continue
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
        if _externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
            spec["externalTrafficPolicy"] = "Cluster"
        if spec.get("internalTrafficPolicy") is None and spec["type"] != "ExternalName":
            spec["internalTrafficPolicy"] = "Cluster"
        if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        if spec["type"] != "ExternalName":
            self._default_ip_families(spec)

    @staticmethod
    def _default_ip_families(spec: Obj) -> None:
        headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else \
                "SingleStack"
        if not spec.get("ipFamilies"):
            families = []
            for ip in as_list(spec.get("clusterIPs")) or [spec.get("clusterIP")]:
                parsed = parse_ip(ip)
                if parsed is not None:
                    families.append("IPv4" if parsed.version == 4 else "IPv6")
            spec["ipFamilies"] = families or ["IPv4"]

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        kind = spec.get("type")
        headless = spec.get("clusterIP") == "None"
        ports = as_list(spec.get("ports"))
        causes: list[Cause] = []
        if not ports and not headless and kind != "ExternalName":
            causes.append(Cause.required("spec.ports"))
        names: set[str] = set()
        for i, port in enumerate(ports):
            causes.extend(_service_port_causes(as_dict(port), f"spec.ports[{i}]",
                                               require_name=len(ports) > 1, names=names))
        if kind not in SERVICE_TYPES:
            causes.append(Cause.not_supported("spec.type", kind, SERVICE_TYPES))
        affinity = spec.get("sessionAffinity")
        if not affinity:
            causes.append(Cause.required("spec.sessionAffinity"))
        elif affinity not in ("ClientIP", "None"):
            causes.append(Cause.not_supported("spec.sessionAffinity", affinity,
                                              ("ClientIP", "None")))
        elif affinity == "ClientIP":
            timeout = sub(spec, "sessionAffinityConfig", "clientIP", "timeoutSeconds")
            if not is_int(timeout) or not 0 < timeout <= 86400:
                causes.append(Cause.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                    "must be greater than 0 and less than 86400"))
        causes.extend(validate_labels(spec.get("selector"), "spec.selector"))
        for i, ip in enumerate(as_list(spec.get("externalIPs"))):
            causes.extend(ip_causes(f"spec.externalIPs[{i}]", ip))
        for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
            value = spec.get(key)
            if value and value not in TRAFFIC_POLICIES:
                causes.append(Cause.not_supported(f"spec.{key}", value, TRAFFIC_POLICIES))
        if spec.get("externalTrafficPolicy") and not _externally_accessible(spec):
            causes.append(Cause.invalid("spec.externalTrafficPolicy",
                                        spec["externalTrafficPolicy"],
                                        "may only be set for externally-accessible services"))
        causes.extend(self._cluster_ip_causes(spec))
        if kind == "ExternalName":
            name = (spec.get("externalName") or "").removesuffix(".")
            if not name:
                causes.append(Cause.required("spec.externalName"))
            else:
                causes.extend(dns_subdomain_causes("spec.externalName", name))
        for i, port in enumerate(ports):
            port = as_dict(port)
            if port.get("nodePort") and kind not in ("NodePort", "LoadBalancer"):
                causes.append(Cause.forbidden(f"spec.ports[{i}].nodePort",
                                              f"may not be used when `type` is '{kind}'"))
            elif port.get("nodePort"):
                causes.extend(port_number_causes(f"spec.ports[{i}].nodePort",
                                                 port["nodePort"]))
        seen: list[tuple[Any, Any]] = []
        for i, port in enumerate(ports):
            port = as_dict(port)
            key = (port.get("protocol"), port.get("port"))
            if key in seen:
                causes.append(Cause.duplicate(f"spec.ports[{i}]",
                                              {"port": key[1], "protocol": key[0]}))
            seen.append(key)
        return causes

    @staticmethod
    def _cluster_ip_causes(spec: Obj) -> list[Cause]:
        kind = spec.get("type")
        cluster_ip = spec.get("clusterIP") or ""
        ips = as_list(spec.get("clusterIPs"))
        causes: list[Cause] = []
        if kind == "ExternalName":
            if ips:
                causes.append(Cause.forbidden("spec.clusterIPs",
                                              "may not be set for ExternalName services"))
            if spec.get("ipFamilies"):
                causes.append(Cause.forbidden("spec.ipFamilies",
                                              "may not be set for ExternalName services"))
            if spec.get("ipFamilyPolicy") is not None:
                causes.append(Cause.forbidden("spec.ipFamilyPolicy",
                                              "may not be set for ExternalName services"))
            return causes
        if cluster_ip:
            if not ips:
                causes.append(Cause.required("spec.clusterIPs"))
            elif ips[0] != cluster_ip:
                causes.append(Cause.invalid("spec.clusterIPs", ips,
                                            "first value must match `clusterIP`"))
        elif ips:
            causes.append(Cause.invalid("spec.clusterIPs", ips,
                                        "must be empty when `clusterIP` is not specified"))
        for i, ip in enumerate(ips):
            if i == 0 and ip == "None":
                if len(ips) > 1:
                    causes.append(Cause.invalid("spec.clusterIPs", ips,
                                                "'None' must be the first and only value"))
                continue
            causes.extend(ip_causes(f"spec.clusterIPs[{i}]", ip))
        if len(ips) > 2:
            causes.append(Cause.invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
        if ips and ips[0] == "None" and kind in ("NodePort", "LoadBalancer"):
            causes.append(Cause.invalid("spec.clusterIPs[0]", "None",
                                        f"may not be set to 'None' for {kind} services"))
        policy = spec.get("ipFamilyPolicy")
        if policy is not None and policy not in IP_FAMILY_POLICIES:
            causes.append(Cause.not_supported("spec.ipFamilyPolicy", policy,
                                              IP_FAMILY_POLICIES))
        seen: set[str] = set()
        for i, family in enumerate(as_list(spec.get("ipFamilies"))):
            if family not in ("IPv4", "IPv6"):
                causes.append(Cause.not_supported(f"spec.ipFamilies[{i}]", family,
                                                  ("IPv4", "IPv6")))
            if family in seen:
                causes.append(Cause.duplicate(f"spec.ipFamilies[{i}]", family))
            seen.add(family)
        return causes

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = ensure_dict(new, "spec"), as_dict(old.get("spec"))
        new_type = spec.get("type") or "ClusterIP"
        old_type = old_spec.get("type") or "ClusterIP"
        # a PUT without the allocated values keeps them (kubectl apply, replace)
        keeps_ip = "ExternalName" not in (new_type, old_type)
        if keeps_ip and not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
            if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
                spec["clusterIPs"] = copy.deepcopy(old_spec["clusterIPs"])
        cluster_ip = spec.get("clusterIP")
        plural_untouched = spec.get("clusterIPs") == old_spec.get("clusterIPs")
        if cluster_ip and (not spec.get("clusterIPs")
                           or (plural_untouched and cluster_ip != old_spec.get("clusterIP"))):
            spec["clusterIPs"] = [cluster_ip]
        new_ports = as_list(spec.get("ports"))
        if _needs_node_ports({**spec, "type": new_type}) and _needs_node_ports(old_spec):
            old_by_name = {as_dict(p).get("name"): as_dict(p).get("nodePort")
                           for p in as_list(old_spec.get("ports"))}
            used = {as_dict(p).get("nodePort") for p in new_ports}
            for port in new_ports:
                if isinstance(port, dict) and not port.get("nodePort"):
                    value = old_by_name.get(port.get("name"))
                    if value and value not in used:
                        port["nodePort"] = value
        # fields that lose their meaning when the type changes go with the old type
        if new_type not in ("NodePort", "LoadBalancer"):
            old_ports = {as_dict(p).get("name"): as_dict(p).get("nodePort")
                         for p in as_list(old_spec.get("ports"))}
            for port in new_ports:
                if isinstance(port, dict) and port.get("nodePort") \
                        and old_ports.get(port.get("name")) == port["nodePort"]:
                    del port["nodePort"]
        if new_type == "ExternalName" and old_type != "ExternalName":
            if spec.get("clusterIPs") == old_spec.get("clusterIPs"):
                for key in ("clusterIP", "clusterIPs"):
                    spec.pop(key, None)
            for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
                if spec.get(key) == old_spec.get(key):
                    spec.pop(key, None)
        if not _externally_accessible({**spec, "type": new_type}):
            spec.pop("externalTrafficPolicy", None)
        if new_type != "LoadBalancer":
            spec.pop("allocateLoadBalancerNodePorts", None)

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
        if "ExternalName" in (spec.get("type"), old_spec.get("type")):
            return []
        if spec.get("clusterIP") == "None" and old_spec.get("clusterIP") == "None":
            return []
        new_ips = as_list(spec.get("clusterIPs"))
        old_ips = as_list(old_spec.get("clusterIPs"))
        if not old_ips and old_spec.get("clusterIP"):
            old_ips = [old_spec["clusterIP"]]
        if not old_ips:
            return []
        if not new_ips:
            return [Cause.invalid("spec.clusterIPs[0]", new_ips,
                                  "primary clusterIP can not be unset")]
        causes = []
        for i, ip in enumerate(old_ips[:len(new_ips)]):
            if new_ips[i] != ip:
                causes.append(Cause.invalid(f"spec.clusterIPs[{i}]", new_ips,
                                            "may not change once set"))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, ingress in enumerate(as_list(sub(new, "status", "loadBalancer", "ingress"))):
            ingress = as_dict(ingress)
            if ingress.get("ip"):
                causes.extend(ip_causes(f"status.loadBalancer.ingress[{i}].ip", ingress["ip"]))
            if ingress.get("hostname"):
                causes.extend(dns_subdomain_causes(f"status.loadBalancer.ingress[{i}].hostname",
                                                   ingress["hostname"]))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [
            _column("Type", lambda o: sub(o, "spec", "type") or "",
                    description="The type of the service."),
            _column("Cluster-IP", _cluster_ip, description="The service's cluster IP."),
            _column("External-IP", lambda o: service_external_ip(o, wide=False),
                    description="External addresses of the service."),
            _column("Port(s)", lambda o: service_ports(o) or "<none>",
                    description="The ports the service exposes."),
            AGE,
            _column("Selector", lambda o: format_labels(sub(o, "spec", "selector")),
                    priority=1, description="The labels of the pods the service routes to."),
        ]


def _service_port_causes(port: Obj, path: str, *, require_name: bool,
                         names: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    name = port.get("name")
    if require_name and not name:
        causes.append(Cause.required(f"{path}.name"))
    elif name:
        causes.extend(dns_label_causes(f"{path}.name", name))
        if name in names:
            causes.append(Cause.duplicate(f"{path}.name", name))
        names.add(name)
    causes.extend(port_number_causes(f"{path}.port", port.get("port")))
    causes.extend(protocol_causes(f"{path}.protocol", port.get("protocol")))
    causes.extend(port_num_or_name_causes(f"{path}.targetPort", port.get("targetPort")))
    if port.get("appProtocol") is not None:
        causes.extend(label_name_causes(f"{path}.appProtocol", port["appProtocol"]))
    return causes


def _cluster_ip(service: Obj) -> str:
    ips = as_list(sub(service, "spec", "clusterIPs"))
    if ips:
        return str(ips[0])
    return sub(service, "spec", "clusterIP") or "<none>"


def service_ports(service: Obj) -> str:
    """``80/TCP,443:30443/TCP``: each port, with its node port when it has one."""
    pieces = []
    for port in as_list(sub(service, "spec", "ports")):
        port = as_dict(port)
        protocol = port.get("protocol") or "TCP"
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces)


def service_external_ip(service: Obj, *, wide: bool) -> str:
    """The EXTERNAL-IP cell: external IPs, load-balancer ingress, or the external name."""
    spec = as_dict(service.get("spec"))
    kind = spec.get("type")
    external = [str(ip) for ip in as_list(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = [str(as_dict(i).get("ip") or as_dict(i).get("hostname") or "")
                   for i in as_list(sub(service, "status", "loadBalancer", "ingress"))]
        lb = ",".join(i for i in ingress if i)
        if not wide and len(lb) > 16:
            lb = lb[:13] + "..."
        if external:
            return ",".join([*(lb.split(",") if lb else []), *external])
        return lb or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


# =====================================================================================
# Endpoints
# =====================================================================================


class EndpointsStrategy(BuiltinStrategy):
    """Endpoints: the addresses and ports behind a Service (written by its controller)."""

    has_status = False
    allow_create_on_update = True

    def default(self, obj: Obj) -> None:
        for subset in as_list(obj.get("subsets")):
            for port in as_list(as_dict(subset).get("ports")):
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, subset in enumerate(as_list(obj.get("subsets"))):
            path = f"subsets[{i}]"
            subset = as_dict(subset)
            if not as_list(subset.get("addresses")) and \
                    not as_list(subset.get("notReadyAddresses")):
                causes.append(Cause.required(path, "must specify `addresses` or "
                                                   "`notReadyAddresses`"))
            for key in ("addresses", "notReadyAddresses"):
                for j, address in enumerate(as_list(subset.get(key))):
                    causes.extend(_endpoint_address_causes(as_dict(address),
                                                           f"{path}.{key}[{j}]"))
            ports = as_list(subset.get("ports"))
            for j, port in enumerate(ports):
                port = as_dict(port)
                ppath = f"{path}.ports[{j}]"
                if len(ports) > 1 and not port.get("name"):
                    causes.append(Cause.required(f"{ppath}.name"))
                elif port.get("name"):
                    causes.extend(dns_label_causes(f"{ppath}.name", port["name"]))
                causes.extend(port_number_causes(f"{ppath}.port", port.get("port")))
                causes.extend(protocol_causes(f"{ppath}.protocol", port.get("protocol")))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [_column("Endpoints", endpoints_cell,
                        description="Endpoints of the service (address:port)."), AGE]


def _endpoint_address_causes(address: Obj, path: str) -> list[Cause]:
    ip = address.get("ip")
    causes = ip_causes(f"{path}.ip", ip) if parse_ip(ip) is None else \
        non_special_ip_causes(f"{path}.ip", ip)
    if address.get("hostname"):
        causes.extend(dns_label_causes(f"{path}.hostname", address["hostname"]))
    if address.get("nodeName"):
        causes.extend(dns_subdomain_causes(f"{path}.nodeName", address["nodeName"]))
    return causes


def endpoints_cell(endpoints: Obj) -> str:
    """``10.0.0.1:80,10.0.0.2:80 + 3 more...``, or ``<none>`` without subsets."""
    subsets = as_list(endpoints.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    total = 0
    for subset in subsets:
        subset = as_dict(subset)
        addresses = [str(as_dict(a).get("ip") or "") for a in as_list(subset.get("addresses"))]
        ports = as_list(subset.get("ports"))
        if not ports:
            total += len(addresses)
            shown.extend(addresses)
            continue
        for port in ports:
            total += len(addresses)
            number = as_dict(port).get("port")
            for ip in addresses:
                shown.append(f"[{ip}]:{number}" if ":" in ip else f"{ip}:{number}")
    return join_limited(shown, total)


# =====================================================================================
# ConfigMap and Secret
# =====================================================================================


def config_key_problems(key: str) -> list[str]:
    """``IsConfigMapKey``: the keys of ConfigMap and Secret data."""
    problems = []
    if len(key) > 253:
        problems.append("must be no more than 253 characters")
    if not key or any(not (c.isascii() and (c.isalnum() or c in "-._")) for c in key):
        problems.append(CONFIG_KEY_ERROR)
    if key == ".":
        problems.append("must not be '.'")
    elif key == "..":
        problems.append("must not be '..'")
    elif key.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def _key_causes(section: str, data: Any) -> list[Cause]:
    if data is None:
        return []
    if not isinstance(data, dict):
        return [Cause.invalid(section, data, "must be a map")]
    return [Cause.invalid(f"{section}[{key}]", key, p)
            for key in data for p in config_key_problems(key)]


def _immutable_data_causes(new: Obj, old: Obj, sections: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes = []
    if new.get("immutable") is not True:
        causes.append(Cause.forbidden("immutable", IMMUTABLE_WHEN_SET))
    for section in sections:
        if (new.get(section) or {}) != (old.get(section) or {}):
            causes.append(Cause.forbidden(section, IMMUTABLE_WHEN_SET))
    return causes


class ConfigMapStrategy(BuiltinStrategy):
    """ConfigMaps: string ``data`` and base64 ``binaryData`` under valid keys, at most
    1 MiB in all; frozen once ``immutable: true``."""

    has_status = False

    def validate_spec(self, obj: Obj) -> list[Cause]:
        data = obj.get("data")
        binary = obj.get("binaryData")
        causes = _key_causes("data", data) + _key_causes("binaryData", binary)
        size = 0
        for key, value in as_dict(data).items():
            if not isinstance(value, str):
                causes.append(Cause.invalid(f"data[{key}]", value, "must be a string"))
                continue
            if key in as_dict(binary):
                causes.append(Cause.invalid(f"data[{key}]", key,
                                            "duplicate of key present in binaryData"))
            size += len(value.encode())
        for key, value in as_dict(binary).items():
            problem = base64_problem(value)
            if problem:
                causes.append(Cause.invalid(f"binaryData[{key}]", "<binary data>", problem))
            else:
                size += len(base64.b64decode(value))
        if size > MAX_DATA_BYTES:
            causes.append(Cause.too_long("[]", MAX_DATA_BYTES))  # the whole object
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        return _immutable_data_causes(new, old, ("data", "binaryData"))

    def table_columns(self) -> list[TableColumn]:
        return [_column("Data", lambda o: len(as_dict(o.get("data")))
                        + len(as_dict(o.get("binaryData"))),
                        description="Number of keys in data and binaryData."), AGE]


SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


class SecretStrategy(BuiltinStrategy):
    """Secrets: base64 ``data`` (``stringData`` is folded into it), type ``Opaque`` by
    default, the keys each well-known type needs; type immutable, data frozen once
    ``immutable: true``."""

    has_status = False
    field_selectors = ("type",)

    def default(self, obj: Obj) -> None:
        if not obj.get("type"):
            obj["type"] = "Opaque"
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = ensure_dict(obj, "data")
            for key, value in string_data.items():
                text = value if isinstance(value, str) else str(value)
                data[key] = base64.b64encode(text.encode()).decode()

    def validate_spec(self, obj: Obj) -> list[Cause]:
        data = obj.get("data")
        causes = _key_causes("data", data)
        size = 0
        for key, value in as_dict(data).items():
            problem = base64_problem(value)
            if problem:
                causes.append(Cause.invalid(f"data[{key}]", "<secret contents redacted>",
                                            problem))
            else:
                size += len(base64.b64decode(value))
        if size > MAX_DATA_BYTES:
            causes.append(Cause.too_long("data", MAX_DATA_BYTES))
        kind = obj.get("type")
        present = as_dict(data)
        if kind == "kubernetes.io/service-account-token":
            name = as_dict(meta(obj).get("annotations")).get("kubernetes.io/service-account.name")
            if not name:
                causes.append(Cause.required(
                    "metadata.annotations[kubernetes.io/service-account.name]"))
        elif kind == "kubernetes.io/basic-auth":
            if "username" not in present and "password" not in present:
                causes.append(Cause.required("data[username]"))
                causes.append(Cause.required("data[password]"))
        elif kind in SECRET_REQUIRED_KEYS:
            for key in SECRET_REQUIRED_KEYS[kind]:
                if key not in present or (kind == "kubernetes.io/ssh-auth" and not present[key]):
                    causes.append(Cause.required(f"data[{key}]"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        causes = []
        if (new.get("type") or "Opaque") != (old.get("type") or "Opaque"):
            causes.append(Cause.immutable("type", new.get("type")))
        return causes + _immutable_data_causes(new, old, ("data",))

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"type": field_str(obj.get("type"))}

    def table_columns(self) -> list[TableColumn]:
        return [_column("Type", lambda o: o.get("type") or "",
                        description="The type of the secret."),
                _column("Data", lambda o: len(as_dict(o.get("data"))),
                        description="Number of keys in data."), AGE]


# =====================================================================================
# ServiceAccount
# =====================================================================================


class ServiceAccountStrategy(BuiltinStrategy):
    """ServiceAccounts: an identity for pods; nothing to default."""

    has_status = False
    allow_create_on_update = True
    return_deleted_object = True

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for key in ("secrets", "imagePullSecrets"):
            for i, ref in enumerate(as_list(obj.get(key))):
                name = as_dict(ref).get("name")
                if name:
                    causes.extend(dns_subdomain_causes(f"{key}[{i}].name", name))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [_column("Secrets", lambda o: len(as_list(o.get("secrets"))),
                        description="Number of secrets the service account lists."), AGE]


# =====================================================================================
# Event
# =====================================================================================


class EventStrategy(BuiltinStrategy):
    """core/v1 Events: a record about an object; its namespace must be the object's."""

    has_status = False
    allow_create_on_update = True
    field_selectors = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                       "involvedObject.uid", "involvedObject.apiVersion",
                       "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                       "reportingComponent", "source", "type")

    def default(self, obj: Obj) -> None:
        # the zero values the Kubernetes API server writes out for these fields
        ensure_dict(obj, "involvedObject")
        ensure_dict(obj, "source")
        for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
            obj.setdefault(key, None)
        for key in ("reportingComponent", "reportingInstance"):
            if obj.get(key) is None:
                obj[key] = ""

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        namespace = meta(obj).get("namespace") or ""
        involved = as_dict(obj.get("involvedObject"))
        target_ns = involved.get("namespace") or ""
        if not obj.get("eventTime"):
            if not target_ns:
                if namespace not in ("", "default"):
                    causes.append(Cause.invalid("involvedObject.namespace", target_ns,
                                                "does not match event.namespace"))
            elif namespace != target_ns:
                causes.append(Cause.invalid("involvedObject.namespace", target_ns,
                                            "does not match event.namespace"))
            return causes
        if not target_ns and namespace not in ("default", "kube-system"):
            causes.append(Cause.invalid("involvedObject.namespace", target_ns,
                                        "does not match event.namespace"))
        component = obj.get("reportingComponent") or ""
        if not component:
            causes.append(Cause.required("reportingComponent"))
        causes.extend(Cause.invalid("reportingComponent", component, p)
                      for p in is_qualified_name(component))
        limits = (("reportingInstance", 128, True), ("action", 128, True),
                  ("reason", 128, True), ("message", 4 * 1024, False))
        for key, limit, required in limits:
            value = obj.get(key) or ""
            if required and not value:
                causes.append(Cause.required(key))
            if len(value) > limit:
                causes.append(Cause.invalid(key, "", f"can have at most {limit} characters"))
        return causes

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        involved = as_dict(obj.get("involvedObject"))
        fields = {f"involvedObject.{key}": field_str(involved.get(key))
                  for key in ("kind", "namespace", "name", "uid", "apiVersion",
                              "resourceVersion", "fieldPath")}
        fields["reason"] = field_str(obj.get("reason"))
        fields["reportingComponent"] = field_str(obj.get("reportingComponent"))
        fields["source"] = field_str(sub(obj, "source", "component")
                                     or obj.get("reportingComponent"))
        fields["type"] = field_str(obj.get("type"))
        return fields

    def table_columns(self) -> list[TableColumn]:
        return [
            _column("Last Seen", event_last_seen, description="Time since the last occurrence."),
            _column("Type", lambda o: o.get("type") or "",
                    description="Normal or Warning."),
            _column("Reason", lambda o: o.get("reason") or "",
                    description="Why the event happened, in CamelCase."),
            _column("Object", event_object, description="The object the event is about."),
            _column("Subobject", lambda o: sub(o, "involvedObject", "fieldPath") or "",
                    priority=1, description="The part of the object the event is about."),
            _column("Source", event_source, priority=1,
                    description="The component that reported the event."),
            _column("Message", lambda o: (o.get("message") or "").strip(),
                    description="A human-readable description."),
            _column("First Seen", event_first_seen, priority=1,
                    description="Time since the first occurrence."),
            _column("Count", event_count, priority=1,
                    description="How many times the event occurred."),
            # as in Kubernetes, the name comes last and only with -o wide
            TableColumn("Name", lambda o: sub(o, "metadata", "name") or "", priority=1,
                        format="name", description="Name of the event."),
        ]


def event_first_seen(event: Obj) -> str:
    if parse_time(event.get("firstTimestamp")) is not None:
        return format_age(event["firstTimestamp"])
    return format_age(event.get("eventTime"))


def event_last_seen(event: Obj) -> str:
    series = event.get("series")
    if isinstance(series, dict):
        return format_age(series.get("lastObservedTime"))
    if parse_time(event.get("lastTimestamp")) is not None:
        return format_age(event["lastTimestamp"])
    return event_first_seen(event)


def event_count(event: Obj) -> int:
    series = event.get("series")
    if isinstance(series, dict):
        return int(series.get("count") or 0)
    return int(event.get("count") or 0) or 1


def event_object(event: Obj) -> str:
    involved = as_dict(event.get("involvedObject"))
    kind = str(involved.get("kind") or "").lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def event_source(event: Obj) -> str:
    component = sub(event, "source", "component") or event.get("reportingComponent") or ""
    instance = sub(event, "source", "host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component

