"""The attrs models: completeness against the kubernetes client, conventions, merge
metadata, and dict -> model -> dict round trips through the converter."""

from __future__ import annotations

import copy
import importlib
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest

from kubeling.api.objects import MODULES, all_kinds
from kubeling.api.objects.convert import to_dict, to_model

client_models = pytest.importorskip("kubernetes.client.models")

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def model_classes() -> list[type]:
    """Every attrs model class of every generated module."""
    out = []
    for name in MODULES:
        module = importlib.import_module(f"kubeling.api.objects.{name}")
        for attr in module.__all__:
            obj = getattr(module, attr)
            if isinstance(obj, type) and attrs.has(obj):
                out.append(obj)
    return out


def client_class_name(openapi_name: str) -> str:
    """Name of the kubernetes client class for an OpenAPI definition name."""
    prefix, _, name = openapi_name.rpartition(".")
    parts = prefix.split(".")
    version, group = parts[-1].capitalize(), parts[-2].capitalize()
    for candidate in (group + version + name, version + name):
        if hasattr(client_models, candidate):
            return candidate
    raise LookupError(openapi_name)


MODELS = model_classes()
BY_CLIENT = {client_class_name(cls.openapi_name): cls for cls in MODELS}


def strip_none(tp: Any) -> Any:
    args = typing.get_args(tp)
    if type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return tp


def shape_matches(ours: Any, theirs: str) -> bool:
    """Does our annotation have the shape of the client's type string?"""
    ours = strip_none(ours)
    match = re.fullmatch(r"(List|Dict)\[(?:str, )?(.*)\]", theirs)
    if match:
        kind, inner = match.groups()
        origin = list if kind == "List" else dict
        return typing.get_origin(ours) is origin and shape_matches(typing.get_args(ours)[-1], inner)
    simple = {"str": str, "int": int, "bool": bool, "float": float, "datetime": str, "bytes": str}
    if theirs in simple:
        return ours is simple[theirs]
    if theirs == "object":
        return ours is Any or set(typing.get_args(ours)) == {int, str}
    return BY_CLIENT.get(theirs) is ours


# ---------------------------------------------------------------------------------------
# completeness: every model has exactly the client's fields, with the same shapes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.openapi_name)
def test_model_has_the_clients_fields(cls: type) -> None:
    client = getattr(client_models, client_class_name(cls.openapi_name))
    ours = {a.metadata["json"] for a in attrs.fields(cls)}
    theirs = set(client.attribute_map.values())
    assert ours == theirs, (
        f"{cls.__name__} drifted from the installed kubernetes client: missing "
        f"{sorted(theirs - ours)}, extra {sorted(ours - theirs)}; run tools/gen_models.py"
    )
    hints = typing.get_type_hints(cls)
    by_wire = {a.metadata["json"]: a.name for a in attrs.fields(cls)}
    for attr, wire in client.attribute_map.items():
        client_type = client.openapi_types[attr]
        ours_type = hints[by_wire[wire]]
        assert shape_matches(ours_type, client_type), (wire, ours_type, client_type)


def test_every_type_the_kinds_refer_to_has_a_model() -> None:
    """Walk the client's type graph from every kind: nothing reachable may be missing."""
    todo = [client_class_name(k.openapi_name) for k in all_kinds()]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in BY_CLIENT, f"no model for client class {name}"
        for theirs in getattr(client_models, name).openapi_types.values():
            todo.extend(n for n in re.findall(r"\w+", theirs) if hasattr(client_models, n))


def test_all_requested_kinds_are_there() -> None:
    kinds = {(k.API_VERSION, k.KIND) for k in all_kinds()}
    expected = {
        ("v1", k)
        for k in [
            "Namespace",
            "Node",
            "Pod",
            "Service",
            "Endpoints",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Event",
            "Binding",
            "PersistentVolumeClaim",
            "PersistentVolume",
            "ReplicationController",
        ]
    }
    expected |= {("apps/v1", k) for k in ["ReplicaSet", "Deployment", "DaemonSet", "StatefulSet"]}
    expected |= {("apps/v1", "ControllerRevision"), ("batch/v1", "Job"), ("batch/v1", "CronJob")}
    expected |= {
        ("coordination.k8s.io/v1", "Lease"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("autoscaling/v1", "Scale"),
        ("policy/v1", "Eviction"),
        ("policy/v1", "PodDisruptionBudget"),
        ("events.k8s.io/v1", "Event"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "IngressClass"),
    }
    assert expected <= kinds
    for kind in all_kinds():
        group = kind.API_GROUP
        assert kind.API_VERSION.startswith(f"{group}/" if group else "v")


def test_meta_types_are_there() -> None:
    from kubeling.api.objects import meta

    for name in [
        "ObjectMeta",
        "ListMeta",
        "OwnerReference",
        "ManagedFieldsEntry",
        "LabelSelector",
        "LabelSelectorRequirement",
        "Condition",
        "Status",
        "StatusDetails",
        "StatusCause",
        "DeleteOptions",
        "Preconditions",
        "WatchEvent",
        "APIResourceList",
        "APIGroupList",
        "APIVersions",
    ]:
        assert attrs.has(getattr(meta, name)), name
    assert meta.Status.KIND == "Status" and meta.Status.API_VERSION == "v1"


# ---------------------------------------------------------------------------------------
# conventions
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.openapi_name)
def test_conventions(cls: type) -> None:
    assert "__slots__" in cls.__dict__, "attrs.frozen makes slotted classes"
    instance = cls()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        instance.x = 1  # type: ignore[attr-defined]
    for a in attrs.fields(cls):
        assert a.default is None, a.name
        assert a.kw_only, a.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", a.name), a.name
        assert a.name.isidentifier()
        wire = a.metadata["json"]
        assert isinstance(wire, str) and wire
        assert set(a.metadata) <= {
            "json",
            "doc",
            "format",
            "required",
            "patch_strategy",
            "patch_merge_key",
            "list_type",
            "list_map_keys",
            "map_type",
        }


def test_reserved_words_and_special_names() -> None:
    from kubeling.api.objects import meta

    fields = attrs.fields_dict(meta.ListMeta)
    assert fields["continue_"].metadata["json"] == "continue"
    assert attrs.fields_dict(meta.ObjectMeta)["uid"].metadata["json"] == "uid"


def test_important_fields_have_our_docs() -> None:
    from kubeling.api.objects import apps_v1, core_v1, meta

    for cls, name in (
        (core_v1.Pod, "metadata"),
        (core_v1.Pod, "spec"),
        (core_v1.Pod, "status"),
        (core_v1.PodSpec, "containers"),
        (core_v1.Container, "ports"),
        (core_v1.Container, "liveness_probe"),
        (apps_v1.DeploymentSpec, "replicas"),
        (apps_v1.DeploymentSpec, "selector"),
        (apps_v1.DeploymentSpec, "template"),
        (meta.ObjectMeta, "labels"),
    ):
        assert attrs.fields_dict(cls)[name].metadata.get("doc"), (cls, name)


# ---------------------------------------------------------------------------------------
# strategic merge patch and list metadata
# ---------------------------------------------------------------------------------------


def meta_of(cls: type, name: str) -> dict[str, Any]:
    return dict(attrs.fields_dict(cls)[name].metadata)


MERGE_KEYS = [
    ("core_v1.PodSpec", "containers", "name"),
    ("core_v1.PodSpec", "init_containers", "name"),
    ("core_v1.PodSpec", "ephemeral_containers", "name"),
    ("core_v1.PodSpec", "volumes", "name"),
    ("core_v1.PodSpec", "image_pull_secrets", "name"),
    ("core_v1.PodSpec", "host_aliases", "ip"),
    ("core_v1.PodSpec", "topology_spread_constraints", "topologyKey"),
    ("core_v1.Container", "ports", "containerPort"),
    ("core_v1.Container", "env", "name"),
    ("core_v1.Container", "volume_mounts", "mountPath"),
    ("core_v1.Container", "volume_devices", "devicePath"),
    ("core_v1.ServiceSpec", "ports", "port"),
    ("core_v1.PodStatus", "conditions", "type"),
    ("core_v1.NodeStatus", "conditions", "type"),
    ("core_v1.NodeStatus", "addresses", "type"),
    ("apps_v1.DeploymentStatus", "conditions", "type"),
    ("apps_v1.ReplicaSetStatus", "conditions", "type"),
    ("meta.ObjectMeta", "owner_references", "uid"),
]


def resolve(dotted: str) -> type:
    module, name = dotted.split(".")
    return getattr(importlib.import_module(f"kubeling.api.objects.{module}"), name)


@pytest.mark.parametrize(("cls", "field", "key"), MERGE_KEYS)
def test_merge_keys(cls: str, field: str, key: str) -> None:
    md = meta_of(resolve(cls), field)
    assert md["patch_merge_key"] == key
    assert "merge" in md["patch_strategy"].split(",")


def test_other_patch_strategies_and_list_types() -> None:
    from kubeling.api.objects import apps_v1, core_v1, meta

    assert meta_of(core_v1.PodSpec, "volumes")["patch_strategy"] == "merge,retainKeys"
    assert meta_of(apps_v1.DeploymentSpec, "strategy")["patch_strategy"] == "retainKeys"
    finalizers = meta_of(meta.ObjectMeta, "finalizers")
    assert finalizers["patch_strategy"] == "merge" and "patch_merge_key" not in finalizers
    assert finalizers["list_type"] == "set"
    ports = meta_of(core_v1.Container, "ports")
    assert ports["list_type"] == "map"
    assert ports["list_map_keys"] == ("containerPort", "protocol")
    assert meta_of(core_v1.Container, "args")["list_type"] == "atomic"
    # Kubernetes gives node taints no merge key: a patch replaces the whole list.
    taints = meta_of(core_v1.NodeSpec, "taints")
    assert "patch_strategy" not in taints and taints["list_type"] == "atomic"


def test_formats_and_required() -> None:
    from kubeling.api.objects import apps_v1, core_v1, meta

    assert meta_of(core_v1.ContainerPort, "container_port")["format"] == "int32"
    assert meta_of(core_v1.ContainerPort, "container_port")["required"] is True
    assert meta_of(core_v1.Container, "name")["required"] is True
    assert "required" not in meta_of(core_v1.Container, "image")
    assert meta_of(core_v1.PodSpec, "containers")["required"] is True
    assert meta_of(meta.ObjectMeta, "generation")["format"] == "int64"
    assert meta_of(meta.ObjectMeta, "creation_timestamp")["format"] == "date-time"
    assert meta_of(core_v1.ResourceRequirements, "limits")["format"] == "quantity"
    assert meta_of(core_v1.ServicePort, "target_port")["format"] == "int-or-string"
    assert meta_of(core_v1.Secret, "data")["format"] == "byte"
    assert meta_of(apps_v1.RollingUpdateDeployment, "max_surge")["format"] == "int-or-string"
    assert meta_of(core_v1.PodSecurityContext, "supplemental_groups")["format"] == "int64"


def test_generated_modules_are_up_to_date() -> None:
    pytest.importorskip("kubernetes_validate")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_models.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------
# converter round trips on realistic objects
# ---------------------------------------------------------------------------------------

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "6b1f2f5e-2a53-4c4e-9d0e-5a0a9c1d0e01",
        "resourceVersion": "4711",
        "generation": 3,
        "creationTimestamp": "2024-05-01T12:00:00Z",
        "labels": {"app": "web"},
        "annotations": {"deployment.kubernetes.io/revision": "2"},
        "finalizers": ["example.com/keep"],
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": "2024-05-01T12:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {".": {}}}},
            }
        ],
    },
    "spec": {
        "replicas": 3,
        "selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}],
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1},
        },
        "minReadySeconds": 5,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}],
                        "envFrom": [{"configMapRef": {"name": "web-env", "optional": True}}],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler",
            },
        },
    },
    "status": {
        "observedGeneration": 3,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2024-05-01T12:01:00Z",
                "lastTransitionTime": "2024-05-01T12:01:00Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            }
        ],
    },
}

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "db-0",
        "namespace": "shop",
        "labels": {"app": "db"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "db",
                "uid": "0b8c2c1a-1111-4222-8333-444455556666",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    },
    "spec": {
        "initContainers": [
            {"name": "init", "image": "busybox", "command": ["sh", "-c", "echo hi"]}
        ],
        "containers": [
            {
                "name": "db",
                "image": "postgres:16",
                "args": ["-c", "max_connections=50"],
                "ports": [{"containerPort": 5432, "protocol": "TCP"}],
                "env": [
                    {
                        "name": "PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                    },
                    {
                        "name": "MEM",
                        "valueFrom": {
                            "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}
                        },
                    },
                ],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                },
                "livenessProbe": {
                    "exec": {"command": ["pg_isready"]},
                    "initialDelaySeconds": 10,
                    "periodSeconds": 10,
                    "timeoutSeconds": 1,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "httpGet": {
                        "path": "/ready",
                        "port": "metrics",
                        "scheme": "HTTP",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                    }
                },
                "startupProbe": {"tcpSocket": {"port": 5432}, "failureThreshold": 30},
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                "volumeMounts": [
                    {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                    {"name": "config", "mountPath": "/etc/db", "readOnly": True},
                ],
                "securityContext": {
                    "runAsUser": 999,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}},
            {
                "name": "config",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "db-config", "items": [{"key": "a", "path": "a"}]}},
                        {"secret": {"name": "db-tls"}},
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
                                ]
                            }
                        },
                    ],
                    "defaultMode": 420,
                },
            },
            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 10,
                        "preference": {
                            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]
                        },
                    }
                ],
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            },
        },
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"},
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "db"}},
            }
        ],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "priorityClassName": "high",
        "priority": 1000,
        "hostname": "db-0",
        "subdomain": "db",
        "enableServiceLinks": False,
    },
    "status": {
        "phase": "Running",
        "podIP": "10.244.0.12",
        "podIPs": [{"ip": "10.244.0.12"}],
        "qosClass": "Burstable",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "db",
                "ready": True,
                "restartCount": 1,
                "image": "postgres:16",
                "imageID": "",
                "state": {"running": {"startedAt": "2024-05-01T12:00:05Z"}},
                "lastState": {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "OOMKilled",
                        "finishedAt": "2024-05-01T11:59:00Z",
                    }
                },
            }
        ],
    },
}

NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
    "spec": {
        "podCIDR": "10.244.1.0/24",
        "podCIDRs": ["10.244.1.0/24"],
        "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}],
    },
    "status": {
        "capacity": {"cpu": "4", "memory": "16318412Ki", "pods": "110"},
        "allocatable": {"cpu": "3800m", "memory": "15716012Ki", "pods": "110"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastHeartbeatTime": "2024-05-01T12:00:00Z",
                "lastTransitionTime": "2024-05-01T10:00:00Z",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
            }
        ],
        "addresses": [
            {"type": "InternalIP", "address": "192.0.2.10"},
            {"type": "Hostname", "address": "node-1"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": "m",
            "systemUUID": "s",
            "bootID": "b",
            "kernelVersion": "6.1.0",
            "osImage": "Debian GNU/Linux 12",
            "containerRuntimeVersion": "docker://25.0.0",
            "kubeletVersion": "v1.32.0",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "images": [{"names": ["nginx:1.27"], "sizeBytes": 187000000}],
    },
}

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "type": "NodePort",
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
            {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
        ],
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "externalTrafficPolicy": "Cluster",
    },
    "status": {"loadBalancer": {}},
}

ENDPOINT_SLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {
        "name": "web-abc12",
        "namespace": "shop",
        "labels": {"kubernetes.io/service-name": "web"},
        "generateName": "web-",
    },
    "addressType": "IPv4",
    "endpoints": [
        {
            "addresses": ["10.244.1.7"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node-1",
            "zone": "a",
            "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "u1"},
            "hints": {"forZones": [{"name": "a"}]},
        }
    ],
    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"}],
}


@pytest.mark.parametrize(
    ("cls_name", "data"),
    [
        ("apps_v1.Deployment", DEPLOYMENT),
        ("core_v1.Pod", POD),
        ("core_v1.Node", NODE),
        ("core_v1.Service", SERVICE),
        ("discovery_v1.EndpointSlice", ENDPOINT_SLICE),
    ],
)
def test_round_trip(cls_name: str, data: dict) -> None:
    original = copy.deepcopy(data)
    obj = to_model(resolve(cls_name), data)
    assert data == original, "to_model must not modify its input"
    assert to_dict(obj) == original


def test_typed_access_and_evolve() -> None:
    from kubeling.api.objects import apps_v1, core_v1

    dep = to_model(apps_v1.Deployment, DEPLOYMENT)
    assert isinstance(dep, apps_v1.Deployment)
    assert dep.spec.replicas == 3
    assert dep.spec.strategy.rolling_update.max_surge == "25%"
    assert dep.spec.strategy.rolling_update.max_unavailable == 1
    container = dep.spec.template.spec.containers[0]
    assert isinstance(container, core_v1.Container)
    assert container.ports[0].container_port == 80
    assert container.resources.requests == {"cpu": "100m", "memory": "64Mi"}
    scaled = attrs.evolve(dep, spec=attrs.evolve(dep.spec, replicas=5))
    assert to_dict(scaled)["spec"]["replicas"] == 5
    assert dep.spec.replicas == 3


def test_free_form_json_is_copied() -> None:
    from kubeling.api.objects import apps_v1

    data = copy.deepcopy(DEPLOYMENT)
    dep = to_model(apps_v1.Deployment, data)
    data["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["x"] = 1
    out = to_dict(dep)
    assert "x" not in out["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
    out["metadata"]["managedFields"][0]["fieldsV1"]["y"] = 1
    assert "y" not in dep.metadata.managed_fields[0].fields_v1


def test_converter_ignores_unknown_keys_and_normalises_quantities() -> None:
    from kubeling.api.objects import core_v1

    pod = to_model(
        core_v1.Pod,
        {
            "spec": {
                "containers": [{"name": "a", "bogus": 1, "resources": {"limits": {"cpu": 0.5}}}],
                "overhead": {"memory": 2048},
            }
        },
    )
    assert to_dict(pod) == {
        "spec": {
            "containers": [{"name": "a", "resources": {"limits": {"cpu": "500m"}}}],
            "overhead": {"memory": "2048"},
        }
    }


def test_empty_structs_and_lists_survive() -> None:
    from kubeling.api.objects import core_v1

    data = {"spec": {"containers": [], "volumes": [{"name": "v", "emptyDir": {}}]}}
    assert to_dict(to_model(core_v1.Pod, data)) == data
