"""The pod spec: defaults, validation, QoS class and update rules.

Shared by Pod and by the pod templates inside ReplicaSets and Deployments.  Field paths
and messages follow the Kubernetes API server's (v1.32) so that errors read the same.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from kubeling.api import quantity
from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    Obj,
    as_dict,
    as_list,
    dns_label_causes,
    dns_subdomain_causes,
    ensure_dict,
    ip_causes,
    is_int,
    label_name_causes,
    non_negative,
    not_found,
    port_name_problems,
    port_num_or_name_causes,
    port_number_causes,
    protocol_causes,
)
from kubeling.api.validation import is_label_value, validate_annotations, validate_labels

__all__ = [
    "UPDATABLE_POD_SPEC_FIELDS",
    "default_pod_spec",
    "default_pod_template",
    "pod_qos_class",
    "pod_spec_update_causes",
    "toleration_causes",
    "validate_pod_spec",
    "validate_pod_template",
]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
HTTP_SCHEMES = ("HTTP", "HTTPS")
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
ENV_NAME_ERROR = ("a valid environment variable name must consist only of printable ASCII "
                  "characters other than '='")
NOT_SIDECAR = "may not be set for init containers without restartPolicy=Always"

UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)",
)

VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


# =====================================================================================
# Defaults
# =====================================================================================


def image_tag(image: str) -> str:
    """The tag Kubernetes reads from an image reference for the pull-policy default.

    An image without tag or digest means ``latest``; a reference that does not parse (an
    empty one, or upper case in the repository path) yields no tag at all.
    """
    if not image or image != image.strip():
        return ""
    name, at, _digest = image.partition("@")
    components = name.split("/")
    first = components[0]
    has_domain = len(components) > 1 and ("." in first or ":" in first or first == "localhost")
    path = components[1:] if has_domain else components
    last = path[-1] if path else ""
    repo_last, colon, tag = last.partition(":")
    if any(c != c.lower() for c in [*path[:-1], repo_last]) or not repo_last:
        return ""
    if not colon and not at:
        return "latest"
    return tag


def _default_http_get(action: Obj) -> None:
    if not action.get("path"):
        action["path"] = "/"
    if not action.get("scheme"):
        action["scheme"] = "HTTP"


def _default_handler(handler: Obj) -> None:
    if isinstance(handler.get("httpGet"), dict):
        _default_http_get(handler["httpGet"])
    grpc = handler.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_probe(probe: Obj) -> None:
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10),
                       ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _default_handler(probe)


def _default_field_ref(ref: Any) -> None:
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _default_resource_field_ref(ref: Any) -> None:
    if isinstance(ref, dict) and ref.get("divisor") is None:
        ref["divisor"] = "0"


def _default_container(container: Obj, *, host_network: bool) -> None:
    if not container.get("imagePullPolicy"):
        image = container.get("image")
        tag = image_tag(image) if isinstance(image, str) else ""
        container["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = "/dev/termination-log"
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    for port in as_list(container.get("ports")):
        if isinstance(port, dict):
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if host_network and not port.get("hostPort") and is_int(port.get("containerPort")):
                port["hostPort"] = port["containerPort"]
    for key in PROBES:
        if isinstance(container.get(key), dict):
            _default_probe(container[key])
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])
    for env in as_list(container.get("env")):
        value_from = as_dict(as_dict(env).get("valueFrom"))
        _default_field_ref(value_from.get("fieldRef"))
        _default_resource_field_ref(value_from.get("resourceFieldRef"))


def _default_downward_items(items: Any) -> None:
    for item in as_list(items):
        if isinstance(item, dict):
            _default_field_ref(item.get("fieldRef"))
            _default_resource_field_ref(item.get("resourceFieldRef"))


def _default_volume(volume: Obj) -> None:
    if not any(volume.get(key) is not None for key in VOLUME_SOURCES):
        volume["emptyDir"] = {}
        return
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        source = volume.get(key)
        if isinstance(source, dict) and source.get("defaultMode") is None:
            source["defaultMode"] = 420
    if isinstance(volume.get("downwardAPI"), dict):
        _default_downward_items(volume["downwardAPI"].get("items"))
    if isinstance(volume.get("projected"), dict):
        for source in as_list(volume["projected"].get("sources")):
            source = as_dict(source)
            if isinstance(source.get("downwardAPI"), dict):
                _default_downward_items(source["downwardAPI"].get("items"))
            token = source.get("serviceAccountToken")
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def default_pod_spec(spec: Obj, *, pod: bool) -> None:
    """Fill a pod spec's defaults in place.

    :param pod: True for a Pod itself; a template (ReplicaSet, Deployment) skips what
        Kubernetes only defaults on pods (requests from limits, ``enableServiceLinks``,
        host ports under ``hostNetwork``, priority).
    """
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # the deprecated spelling mirrors serviceAccountName on the wire
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    host_network = pod and spec.get("hostNetwork") is True
    for key in ("initContainers", "containers"):
        for container in as_list(spec.get(key)):
            if isinstance(container, dict):
                _default_container(container, host_network=host_network)
                if pod:
                    _requests_from_limits(container)
    for volume in as_list(spec.get("volumes")):
        if isinstance(volume, dict):
            _default_volume(volume)
    if pod:
        if spec.get("enableServiceLinks") is None:
            spec["enableServiceLinks"] = True
        # what the Priority admission plugin sets when no PriorityClass is named
        if spec.get("priority") is None and not spec.get("priorityClassName"):
            spec["priority"] = 0
        if not spec.get("preemptionPolicy"):
            spec["preemptionPolicy"] = "PreemptLowerPriority"


def _requests_from_limits(container: Obj) -> None:
    resources = ensure_dict(container, "resources")
    limits = resources.get("limits")
    if not isinstance(limits, dict) or not limits:
        return
    requests = ensure_dict(resources, "requests")
    for name, amount in limits.items():
        requests.setdefault(name, amount)


def default_pod_template(template: Any) -> None:
    """Defaults of a ``PodTemplateSpec`` (the spec of a template, not of a pod)."""
    if isinstance(template, dict):
        default_pod_spec(ensure_dict(template, "spec"), pod=False)


# =====================================================================================
# QoS class
# =====================================================================================


def _effective_requests(resources: Obj) -> Obj:
    requests = dict(as_dict(resources.get("requests")))
    for name, amount in as_dict(resources.get("limits")).items():
        requests.setdefault(name, amount)
    return requests


def _positive(amount: Any) -> Decimal | None:
    try:
        value = quantity.parse_quantity(amount)
    except ValueError:
        return None
    return value if value > 0 else None


def pod_qos_class(pod: Obj) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort``, as Kubernetes computes a pod's QoS.

    Only cpu and memory count.  Every container (init containers included) must have
    non-zero cpu and memory limits equal to its requests for Guaranteed; nothing set
    anywhere is BestEffort; anything else is Burstable.  Requests default to limits.
    """
    spec = as_dict(pod.get("spec"))
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
        resources = as_dict(as_dict(container).get("resources"))
        for name, amount in _effective_requests(resources).items():
            if name in ("cpu", "memory") and (value := _positive(amount)) is not None:
                requests[name] = requests.get(name, Decimal(0)) + value
        found = set()
        for name, amount in as_dict(resources.get("limits")).items():
            if name in ("cpu", "memory") and (value := _positive(amount)) is not None:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + value
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == value for name, value in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# =====================================================================================
# Validation
# =====================================================================================


def _volume_causes(volumes: list[Any], path: str) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        vpath = f"{path}[{i}]"
        volume = as_dict(volume)
        name = volume.get("name")
        sources = [key for key in VOLUME_SOURCES if volume.get(key) is not None]
        if not sources:
            causes.append(Cause.required(vpath, "must specify a volume type"))
        for extra in sources[1:]:
            causes.append(Cause.forbidden(f"{vpath}.{extra}",
                                          "may not specify more than 1 volume type"))
        if not name:
            causes.append(Cause.required(f"{vpath}.name"))
        else:
            causes.extend(dns_label_causes(f"{vpath}.name", name))
            if name in names:
                causes.append(Cause.duplicate(f"{vpath}.name", name))
            names.add(name)
        if sources:
            causes.extend(_volume_source_causes(sources[0], as_dict(volume[sources[0]]),
                                                f"{vpath}.{sources[0]}"))
    return causes, names


def _file_mode_causes(field: str, mode: Any) -> list[Cause]:
    if mode is None:
        return []
    if not is_int(mode) or not 0 <= mode <= 0o777:
        return [Cause.invalid(field, mode, FILE_MODE_ERROR)]
    return []


def _volume_source_causes(kind: str, source: Obj, path: str) -> list[Cause]:
    required = {"secret": "secretName", "configMap": "name", "hostPath": "path",
                "persistentVolumeClaim": "claimName", "nfs": "server", "csi": "driver"}
    causes: list[Cause] = []
    key = required.get(kind)
    if key and not source.get(key):
        causes.append(Cause.required(f"{path}.{key}"))
    if kind == "nfs" and not source.get("path"):
        causes.append(Cause.required(f"{path}.path"))
    if kind in ("secret", "configMap", "downwardAPI", "projected"):
        causes.extend(_file_mode_causes(f"{path}.defaultMode", source.get("defaultMode")))
    if kind == "emptyDir" and source.get("medium") not in (None, "", "Memory", "HugePages"):
        causes.append(Cause.not_supported(f"{path}.medium", source.get("medium"),
                                          ("", "Memory", "HugePages")))
    return causes


def _env_causes(env: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, var in enumerate(env):
        epath = f"{path}[{i}]"
        var = as_dict(var)
        name = var.get("name")
        if not name:
            causes.append(Cause.required(f"{epath}.name"))
        elif not isinstance(name, str) or any(not (32 <= ord(c) <= 126) or c == "="
                                              for c in name):
            causes.append(Cause.invalid(f"{epath}.name", name, ENV_NAME_ERROR))
        value_from = var.get("valueFrom")
        if value_from is None:
            continue
        value_from = as_dict(value_from)
        sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef",
                               "secretKeyRef") if value_from.get(k) is not None]
        vpath = f"{epath}.valueFrom"
        if not sources:
            causes.append(Cause.invalid(vpath, "", "must specify one of: `fieldRef`, "
                                        "`resourceFieldRef`, `configMapKeyRef` or "
                                        "`secretKeyRef`"))
        elif var.get("value"):
            causes.append(Cause.invalid(vpath, "",
                                        "may not be specified when `value` is not empty"))
        elif len(sources) > 1:
            causes.append(Cause.invalid(vpath, "",
                                        "may not have more than one field specified at a time"))
        for source in sources:
            ref = as_dict(value_from[source])
            if source == "fieldRef":
                if not ref.get("fieldPath"):
                    causes.append(Cause.required(f"{vpath}.fieldRef.fieldPath"))
            elif source == "resourceFieldRef":
                if not ref.get("resource"):
                    causes.append(Cause.required(f"{vpath}.resourceFieldRef.resource"))
            else:
                if not ref.get("key"):
                    causes.append(Cause.required(f"{vpath}.{source}.key"))
    return causes


def _resource_causes(resources: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        values = resources.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            causes.append(Cause.invalid(f"{path}.{section}", values, "must be a map"))
            continue
        for name, amount in values.items():
            fpath = f"{path}.{section}[{name}]"
            if "/" not in name and name not in STANDARD_CONTAINER_RESOURCES \
                    and not name.startswith("hugepages-"):
                causes.append(Cause.invalid(fpath, name,
                                            "must be a standard resource for containers"))
            elif "/" in name:
                causes.extend(label_name_causes(fpath, name))
            try:
                value = quantity.parse_quantity(amount)
            except ValueError as exc:
                causes.append(Cause.invalid(fpath, amount, str(exc)))
                continue
            shown = quantity.format_quantity(*quantity.parse_quantity_with_format(amount))
            if value < 0:
                causes.append(Cause.invalid(fpath, shown, "must be greater than or equal to 0"))
            elif (name.startswith("hugepages-") or "/" in name) and value != int(value):
                causes.append(Cause.invalid(fpath, shown, "must be an integer"))
            parsed[section][name] = value
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            raw_request = as_dict(resources.get("requests"))[name]
            raw_limit = as_dict(resources.get("limits"))[name]
            causes.append(Cause.invalid(
                f"{path}.requests", quantity.canonicalize_quantity(raw_request),
                f"must be less than or equal to {name} limit of "
                f"{quantity.canonicalize_quantity(raw_limit)}"))
    return causes


def _handler_causes(handler: Obj, path: str, *, probe: bool) -> list[Cause]:
    causes: list[Cause] = []
    kinds = ["exec", "httpGet", "tcpSocket"] + (["grpc"] if probe else ["sleep"])
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        return [Cause.required(path, "must specify a handler type")]
    for extra in present[1:]:
        causes.append(Cause.forbidden(f"{path}.{extra}", "may not specify more than 1 handler "
                                      "type"))
    kind = present[0]
    action = as_dict(handler[kind])
    apath = f"{path}.{kind}"
    if kind == "exec" and not action.get("command"):
        causes.append(Cause.required(f"{apath}.command"))
    elif kind == "httpGet":
        if not action.get("path"):
            causes.append(Cause.required(f"{apath}.path"))
        causes.extend(port_num_or_name_causes(f"{apath}.port", action.get("port")))
        if action.get("scheme") not in HTTP_SCHEMES:
            causes.append(Cause.not_supported(f"{apath}.scheme", action.get("scheme"),
                                              HTTP_SCHEMES))
    elif kind == "tcpSocket":
        causes.extend(port_num_or_name_causes(f"{apath}.port", action.get("port")))
    elif kind == "grpc":
        causes.extend(port_number_causes(f"{apath}.port", action.get("port")))
    elif kind == "sleep":
        seconds = action.get("seconds")
        if not is_int(seconds) or seconds <= 0:
            causes.append(Cause.invalid(f"{apath}.seconds", seconds, "must be greater than 0"))
    return causes


def _probe_causes(probe: Obj, path: str) -> list[Cause]:
    causes = _handler_causes(probe, path, probe=True)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold"):
        causes.extend(non_negative(f"{path}.{key}", probe.get(key)))
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None and (not is_int(grace) or grace <= 0):
        causes.append(Cause.invalid(f"{path}.terminationGracePeriodSeconds", grace,
                                    "must be greater than 0"))
    return causes


def _port_causes(ports: list[Any], path: str, *, host_network: bool) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        ppath = f"{path}[{i}]"
        port = as_dict(port)
        name = port.get("name")
        if name:
            problems = port_name_problems(name) if isinstance(name, str) else ["must be a string"]
            if problems:
                causes.extend(Cause.invalid(f"{ppath}.name", name, p) for p in problems)
            elif name in names:
                causes.append(Cause.duplicate(f"{ppath}.name", name))
            else:
                names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            causes.append(Cause.required(f"{ppath}.containerPort"))
        else:
            causes.extend(port_number_causes(f"{ppath}.containerPort", container_port))
        host_port = port.get("hostPort")
        if host_port:
            causes.extend(port_number_causes(f"{ppath}.hostPort", host_port))
            if host_network and host_port != container_port:
                causes.append(Cause.invalid(f"{ppath}.hostPort", host_port,
                                            "must match `containerPort` when `hostNetwork` is "
                                            "true"))
        if port.get("hostIP"):
            causes.extend(ip_causes(f"{ppath}.hostIP", port["hostIP"]))
        causes.extend(protocol_causes(f"{ppath}.protocol", port.get("protocol")))
    return causes


def _mount_causes(mounts: list[Any], path: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, mount in enumerate(mounts):
        mpath = f"{path}[{i}]"
        mount = as_dict(mount)
        name = mount.get("name")
        if not name:
            causes.append(Cause.required(f"{mpath}.name"))
        if name not in volumes:
            causes.append(not_found(f"{mpath}.name", name or ""))
        mount_path = mount.get("mountPath")
        if not mount_path:
            causes.append(Cause.required(f"{mpath}.mountPath"))
        elif mount_path in seen:
            causes.append(Cause.invalid(f"{mpath}.mountPath", mount_path, "must be unique"))
        else:
            seen.add(mount_path)
        sub_path = mount.get("subPath")
        if isinstance(sub_path, str) and sub_path:
            if sub_path.startswith("/"):
                causes.append(Cause.invalid(f"{mpath}.subPath", sub_path,
                                            "must be a relative path"))
            if ".." in sub_path.split("/"):
                causes.append(Cause.invalid(f"{mpath}.subPath", sub_path,
                                            "must not contain '..'"))
    return causes


def _container_causes(container: Obj, path: str, volumes: set[str], *, init: bool,
                      host_network: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = container.get("name")
    if not name:
        causes.append(Cause.required(f"{path}.name"))
    else:
        causes.extend(dns_label_causes(f"{path}.name", name))
    image = container.get("image")
    if not image:
        causes.append(Cause.required(f"{path}.image"))
    elif not isinstance(image, str):
        causes.append(Cause.invalid(f"{path}.image", image, "must be a string"))
    policy = container.get("imagePullPolicy")
    if not policy:
        causes.append(Cause.required(f"{path}.imagePullPolicy"))
    elif policy not in PULL_POLICIES:
        causes.append(Cause.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    message_policy = container.get("terminationMessagePolicy")
    if message_policy not in ("File", "FallbackToLogsOnError"):
        detail = "must be 'File' or 'FallbackToLogsOnError'"
        causes.append(Cause.required(f"{path}.terminationMessagePolicy", detail)
                      if not message_policy else
                      Cause.invalid(f"{path}.terminationMessagePolicy", message_policy, detail))
    causes.extend(_port_causes(as_list(container.get("ports")), f"{path}.ports",
                               host_network=host_network))
    causes.extend(_env_causes(as_list(container.get("env")), f"{path}.env"))
    causes.extend(_mount_causes(as_list(container.get("volumeMounts")), f"{path}.volumeMounts",
                                volumes))
    causes.extend(_resource_causes(as_dict(container.get("resources")), f"{path}.resources"))
    restart = container.get("restartPolicy")
    sidecar = init and restart == "Always"
    if restart is not None:
        if not init:
            causes.append(Cause.forbidden(f"{path}.restartPolicy",
                                          "may not be set for non-init containers"))
        elif restart != "Always":
            causes.append(Cause.not_supported(f"{path}.restartPolicy", restart, ("Always",)))
    if init and not sidecar:
        for key in ("lifecycle", *PROBES):
            if container.get(key) is not None:
                causes.append(Cause.forbidden(f"{path}.{key}", NOT_SIDECAR))
        return causes
    for key in PROBES:
        probe = container.get(key)
        if probe is None:
            continue
        probe = as_dict(probe)
        causes.extend(_probe_causes(probe, f"{path}.{key}"))
        if key != "readinessProbe" and probe.get("successThreshold", 1) != 1:
            causes.append(Cause.invalid(f"{path}.{key}.successThreshold",
                                        probe.get("successThreshold"), "must be 1"))
        if key == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
            causes.append(Cause.invalid(f"{path}.{key}.terminationGracePeriodSeconds",
                                        probe["terminationGracePeriodSeconds"],
                                        "must not be set for readinessProbes"))
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                causes.extend(_handler_causes(as_dict(lifecycle[hook]),
                                              f"{path}.lifecycle.{hook}", probe=False))
    return causes


def toleration_causes(tolerations: list[Any], path: str) -> list[Cause]:
    """``ValidateTolerations``."""
    causes: list[Cause] = []
    for i, toleration in enumerate(tolerations):
        tpath = f"{path}[{i}]"
        toleration = as_dict(toleration)
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or ""
        effect = toleration.get("effect") or ""
        if key:
            causes.extend(label_name_causes(f"{tpath}.key", key))
        if not key and operator != "Exists":
            causes.append(Cause.invalid(
                f"{tpath}.operator", operator,
                'operator must be Exists when `key` is empty, which means "match all values '
                'and all keys"'))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(Cause.invalid(f"{tpath}.effect", effect,
                                        "effect must be 'NoExecute' when `tolerationSeconds` "
                                        "is set"))
        if operator in ("Equal", ""):
            value = toleration.get("value") or ""
            problems = is_label_value(value) if isinstance(value, str) else ["must be a string"]
            if problems:
                causes.append(Cause.invalid(f"{tpath}.operator", value, ";".join(problems)))
        elif operator == "Exists":
            if toleration.get("value"):
                causes.append(Cause.invalid(f"{tpath}.operator", toleration,
                                            "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(Cause.not_supported(f"{tpath}.operator", operator,
                                              ("Equal", "Exists")))
        if effect and effect not in TAINT_EFFECTS:
            causes.append(Cause.not_supported(f"{tpath}.effect", effect, TAINT_EFFECTS))
    return causes


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    """``ValidatePodSpec``: everything wrong with a (defaulted) pod spec at ``path``."""
    if not isinstance(spec, dict):
        return [Cause.required(path)]
    causes, volume_names = _volume_causes(as_list(spec.get("volumes")), f"{path}.volumes")
    host_network = spec.get("hostNetwork") is True
    containers = as_list(spec.get("containers"))
    names: set[str] = set()
    if not containers:
        causes.append(Cause.required(f"{path}.containers"))
    for i, container in enumerate(containers):
        cpath = f"{path}.containers[{i}]"
        container = as_dict(container)
        causes.extend(_container_causes(container, cpath, volume_names, init=False,
                                        host_network=host_network))
        name = container.get("name")
        if name and name in names:
            causes.append(Cause.duplicate(f"{cpath}.name", name))
        names.add(name)
    for i, container in enumerate(as_list(spec.get("initContainers"))):
        cpath = f"{path}.initContainers[{i}]"
        container = as_dict(container)
        causes.extend(_container_causes(container, cpath, volume_names, init=True,
                                        host_network=host_network))
        name = container.get("name")
        if name and name in names:
            causes.append(Cause.duplicate(f"{cpath}.name", name))
        names.add(name)
    restart = spec.get("restartPolicy")
    if not restart:
        causes.append(Cause.required(f"{path}.restartPolicy"))
    elif restart not in RESTART_POLICIES:
        causes.append(Cause.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if not dns:
        causes.append(Cause.required(f"{path}.dnsPolicy"))
    elif dns not in DNS_POLICIES:
        causes.append(Cause.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    elif dns == "None" and spec.get("dnsConfig") is None:
        causes.append(Cause.required(f"{path}.dnsConfig",
                                     "must provide `dnsConfig` when `dnsPolicy` is None"))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or not 1 <= deadline <= 2**31 - 1):
        causes.append(Cause.invalid(f"{path}.activeDeadlineSeconds", deadline,
                                    "must be between 1 and 2147483647, inclusive"))
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and not is_int(grace):
        causes.append(Cause.invalid(f"{path}.terminationGracePeriodSeconds", grace,
                                    "must be an integer"))
    causes.extend(validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    for key, check in (("serviceAccountName", dns_subdomain_causes),
                       ("nodeName", dns_subdomain_causes), ("hostname", dns_label_causes),
                       ("subdomain", dns_label_causes), ("schedulerName", dns_subdomain_causes),
                       ("priorityClassName", dns_subdomain_causes)):
        if spec.get(key):
            causes.extend(check(f"{path}.{key}", spec[key]))
    causes.extend(toleration_causes(as_list(spec.get("tolerations")), f"{path}.tolerations"))
    for i, secret in enumerate(as_list(spec.get("imagePullSecrets"))):
        if not as_dict(secret).get("name"):
            causes.append(Cause.required(f"{path}.imagePullSecrets[{i}].name"))
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        causes.extend(label_name_causes(f"{path}.readinessGates[{i}].conditionType",
                                        as_dict(gate).get("conditionType", "")))
    return causes


def validate_pod_template(template: Any, path: str) -> list[Cause]:
    """``ValidatePodTemplateSpec``: the template's labels, annotations and spec."""
    if not isinstance(template, dict):
        return [Cause.required(path)]
    meta = as_dict(template.get("metadata"))
    causes = validate_labels(meta.get("labels"), f"{path}.labels")
    causes += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    causes += validate_pod_spec(template.get("spec"), f"{path}.spec")
    if as_dict(template.get("spec")).get("ephemeralContainers"):
        causes.append(Cause.forbidden(f"{path}.spec.ephemeralContainers",
                                      "ephemeral containers not allowed in pod template"))
    return causes


# =====================================================================================
# Updates
# =====================================================================================


def _container_update_causes(new: list[Any], old: list[Any], path: str) -> tuple[list[Cause],
                                                                                bool]:
    if len(new) != len(old):
        return [Cause.forbidden(path, "pod updates may not add or remove containers")], True
    causes = []
    for i, container in enumerate(new):
        image = as_dict(container).get("image")
        if not image:
            causes.append(Cause.required(f"{path}[{i}].image"))
        elif isinstance(image, str) and image != image.strip():
            causes.append(Cause.invalid(f"{path}[{i}].image", image,
                                        "must not have leading or trailing whitespace"))
    return causes, False


def _only_added_tolerations(new: list[Any], old: list[Any], path: str) -> list[Cause]:
    for existing in old:
        found = False
        for candidate in new:
            relaxed = dict(as_dict(existing))
            candidate = as_dict(candidate)
            if "tolerationSeconds" in candidate:
                relaxed["tolerationSeconds"] = candidate["tolerationSeconds"]
            else:
                relaxed.pop("tolerationSeconds", None)
            if relaxed == candidate:
                found = True
                break
        if not found:
            return [Cause.forbidden(path, "existing toleration can not be modified except its "
                                          "tolerationSeconds")]
    return []


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _diff(old.get(key), new.get(key), f"{path}.{key}", out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{i}]", out)
    elif old != new:
        out.append(f"  {path}: {json.dumps(old, sort_keys=True)} -> "
                   f"{json.dumps(new, sort_keys=True)}")


def pod_spec_update_causes(new: Obj, old: Obj) -> list[Cause]:
    """``ValidatePodUpdate``'s spec rules: only images, ``activeDeadlineSeconds`` (lowered),
    added tolerations, a negative grace period raised to 1 and removed scheduling gates
    may change."""
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    causes: list[Cause] = []
    for key in ("containers", "initContainers"):
        found, stop = _container_update_causes(as_list(new_spec.get(key)),
                                               as_list(old_spec.get(key)), f"spec.{key}")
        causes += found
        if stop:
            return causes
    new_deadline = new_spec.get("activeDeadlineSeconds")
    old_deadline = old_spec.get("activeDeadlineSeconds")
    if new_deadline is not None:
        if not is_int(new_deadline) or not 0 <= new_deadline <= 2**31 - 1:
            causes.append(Cause.invalid("spec.activeDeadlineSeconds", new_deadline,
                                        "must be between 0 and 2147483647, inclusive"))
            return causes
        if is_int(old_deadline) and old_deadline < new_deadline:
            causes.append(Cause.invalid("spec.activeDeadlineSeconds", new_deadline,
                                        "must be less than or equal to previous value"))
            return causes
    elif old_deadline is not None:
        causes.append(Cause.invalid("spec.activeDeadlineSeconds", None,
                                    "must not update from a positive integer to nil value"))
    causes += _only_added_tolerations(as_list(new_spec.get("tolerations")),
                                      as_list(old_spec.get("tolerations")), "spec.tolerations")
    old_gates = [as_dict(g).get("name") for g in as_list(old_spec.get("schedulingGates"))]
    for i, gate in enumerate(as_list(new_spec.get("schedulingGates"))):
        name = as_dict(gate).get("name")
        if name not in old_gates:
            causes.append(Cause.forbidden(f"spec.schedulingGates[{i}]",
                                          f"only deletion is allowed, but found new scheduling "
                                          f"gate '{name}'"))

    munged = copy.deepcopy(new_spec)
    for key in ("containers", "initContainers"):
        for container, before in zip(as_list(munged.get(key)), as_list(old_spec.get(key)),
                                     strict=False):
            if isinstance(container, dict) and isinstance(before, dict):
                if "image" in before:
                    container["image"] = before["image"]
                else:
                    container.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if is_int(old_grace) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if _semantic(munged) != _semantic(old_spec):
        lines: list[str] = []
        _diff(old_spec, munged, "spec", lines)
        detail = ("pod updates may not change fields other than "
                  + ",".join(UPDATABLE_POD_SPEC_FIELDS) + "\n" + "\n".join(lines))
        causes.append(Cause.forbidden("spec", detail))
    return causes


def _semantic(value: Any) -> Any:
    """Compare like Kubernetes' semantic equality: empty maps/lists equal absent ones and
    quantities compare by value."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None or item == {} or item == []:
                continue
            if key in ("limits", "requests") and isinstance(item, dict):
                item = {name: _canonical(amount) for name, amount in item.items()}
            out[key] = _semantic(item)
        return out
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _canonical(amount: Any) -> Any:
    try:
        return quantity.canonicalize_quantity(amount)
    except ValueError:
        return amount
