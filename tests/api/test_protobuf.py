"""Kubernetes protobuf request bodies: round trips, wire details, errors, and real kubectl."""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeling.api.objects import all_kinds
from kubeling.api.protobuf import (
    CONTENT_TYPE,
    MAGIC,
    ProtobufError,
    UnknownKindError,
    decode_message,
    decode_request,
    encode_message,
    encode_object,
    go_duration,
    message_for,
    parse_go_duration,
)
from kubeling.api.protobuf_fields import INLINE_FIELDS, MESSAGES

CORE = "k8s.io.api.core.v1."
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
STAMP = "2026-11-22T05:13:53Z"

# ----------------------------------------------------------------------------------------
# Objects for round trips: JSON as Go would write it (no zero values of omitempty fields)
# ----------------------------------------------------------------------------------------

CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "web"}},
    "data": {"a": "b", "empty": "", "unicode": "grüße ✓"},
    "binaryData": {"blob": base64.b64encode(b"\x00\x01\xfe\xff").decode()},
    "immutable": False,
}

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "s", "namespace": "default", "creationTimestamp": STAMP},
    "type": "Opaque",
    "data": {
        "bin": base64.b64encode(bytes(range(256))).decode(),
        "k": base64.b64encode(b"v").decode(),
        "empty": "",
    },
    "immutable": True,
}

NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {
        "name": "team-a",
        "uid": "6a9a1c3e-0000-4000-8000-000000000001",
        "resourceVersion": "42",
        "generation": 1,
        "creationTimestamp": STAMP,
        "deletionTimestamp": "2026-11-22T06:00:00Z",
        "deletionGracePeriodSeconds": 0,
        "annotations": {"note": "x"},
        "finalizers": ["example.com/hold"],
    },
    "spec": {"finalizers": ["kubernetes"]},
    "status": {
        "phase": "Terminating",
        "conditions": [
            {
                "type": "NamespaceDeletionContentFailure",
                "status": "False",
                "lastTransitionTime": STAMP,
                "reason": "ContentDeleted",
                "message": "All content successfully deleted",
            }
        ],
    },
}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web"},
        "creationTimestamp": STAMP,
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "X", "name": "owner", "uid": "u-1", "controller": True}
        ],
        "managedFields": [
            {
                "manager": "kubectl",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": STAMP,
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            }
        ],
    },
    "spec": {
        "replicas": 0,
        "revisionHistoryLimit": 0,
        "progressDeadlineSeconds": 600,
        "selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1},
        },
        "template": {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "args": ["-g", "daemon off;"],
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "env": [
                            {"name": "A", "value": "1"},
                            {
                                "name": "POD",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            },
                            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m", "ephemeral-storage": "1Gi"},
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 5,
                            "periodSeconds": 10,
                        },
                        "readinessProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 3},
                        "startupProbe": {"exec": {"command": ["true"]}},
                        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/config", "readOnly": True}
                        ],
                        "securityContext": {
                            "runAsUser": 0,
                            "runAsNonRoot": False,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
                "volumes": [
                    {
                        "name": "config",
                        "configMap": {
                            "name": "web-config",
                            "items": [{"key": "a", "path": "a.txt"}],
                            "defaultMode": 420,
                        },
                    },
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {
                        "name": "token",
                        "projected": {
                            "sources": [
                                {"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}},
                                {"secret": {"name": "s", "optional": True}},
                            ]
                        },
                    },
                ],
                "terminationGracePeriodSeconds": 30,
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [
                    {"key": "k", "operator": "Exists", "effect": "NoExecute"},
                    {"key": "gone", "effect": "NoExecute", "tolerationSeconds": 0},
                ],
                "securityContext": {"supplementalGroups": [1000, 2000], "fsGroup": 0},
            },
        },
    },
    "status": {
        "observedGeneration": 3,
        "replicas": 1,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": STAMP,
                "lastTransitionTime": STAMP,
                "reason": "MinimumReplicasAvailable",
                "message": "ok",
            }
        ],
    },
}

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "type": "ClusterIP",
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "sessionAffinity": "None",
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "named", "protocol": "TCP", "port": 81, "targetPort": "web"},
        ],
    },
    "status": {"loadBalancer": {}},
}

PRIORITY_CLASS = {
    "apiVersion": "scheduling.k8s.io/v1",
    "kind": "PriorityClass",
    "metadata": {"name": "low"},
    "value": -5,
    "globalDefault": True,
    "description": "below the default",
    "preemptionPolicy": "Never",
}

EVICTION = {
    "apiVersion": "policy/v1",
    "kind": "Eviction",
    "metadata": {"name": "web-0", "namespace": "default"},
    "deleteOptions": {
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-2"},
        "propagationPolicy": "Background",
        "dryRun": ["All"],
    },
}

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "pi", "namespace": "default"},
    "spec": {
        "completions": 3,
        "parallelism": 1,
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": 100,
        "completionMode": "Indexed",
        "suspend": False,
        "podFailurePolicy": {
            "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]
        },
        "template": {
            "metadata": {"creationTimestamp": None},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "1"]}],
            },
        },
    },
    "status": {
        "startTime": STAMP,
        "active": 1,
        "ready": 0,
        "uncountedTerminatedPods": {"succeeded": ["u-3"]},
    },
}

LEASE = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
    "spec": {
        "holderIdentity": "node-1_abc",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-22T05:13:53.000000Z",
        "renewTime": "2026-11-22T05:14:01.123456Z",
        "leaseTransitions": 0,
    },
}

CONTROLLER_REVISION = {
    "apiVersion": "apps/v1",
    "kind": "ControllerRevision",
    "metadata": {"name": "web-6d4cf56db6"},
    "data": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
    "revision": 2,
}

PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "pdb"},
    "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "x"}}},
    "status": {
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "disruptionsAllowed": 0,
        "expectedPods": 0,
        "disruptedPods": {"web-1": STAMP},
    },
}

EVENT = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "web.1"},
    "eventTime": "2026-11-22T05:13:53.500000Z",
    "series": {"count": 2, "lastObservedTime": "2026-11-22T05:14:00.000001Z"},
    "reportingController": "kubeling/scheduler",
    "reportingInstance": "sched-1",
    "action": "Binding",
    "reason": "Scheduled",
    "regarding": {"kind": "Pod", "namespace": "default", "name": "web-1", "apiVersion": "v1"},
    "type": "Normal",
}

ROUND_TRIPS = {
    "configmap": CONFIGMAP,
    "secret": SECRET,
    "namespace": NAMESPACE,
    "deployment": DEPLOYMENT,
    "service": SERVICE,
    "priorityclass": PRIORITY_CLASS,
    "eviction": EVICTION,
    "job": JOB,
    "lease": LEASE,
    "controllerrevision": CONTROLLER_REVISION,
    "pdb": PDB,
    "event": EVENT,
}


@pytest.mark.parametrize("obj", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(obj: dict[str, Any]) -> None:
    body = encode_object(obj)
    assert body.startswith(MAGIC)
    assert decode_request(body) == obj


def test_round_trip_keeps_pointer_zeros_and_drops_omitempty_zeros() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "generateName": "", "generation": 0},
        "spec": {"replicas": 0, "minReadySeconds": 0, "paused": False, "strategy": {"type": ""}},
    }
    assert decode_request(encode_object(obj)) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 0, "strategy": {}},
    }
    # value fields without omitempty keep their zeros, as in JSON
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "value": 0}
    assert decode_request(encode_object(pc))["value"] == 0
    status = {"name": "c", "ready": False, "restartCount": 0, "image": "", "imageID": ""}
    raw = encode_message(status, CORE + "ContainerStatus")
    assert decode_message(raw, CORE + "ContainerStatus") == status


# ----------------------------------------------------------------------------------------
# Bodies captured from kubectl v1.32 (kubectl create ...), decodable without kubectl
# ----------------------------------------------------------------------------------------

KUBECTL_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170121b0a110a017812001a00"
    "22002a0032003800420012060a01611201621a002200"
)

KUBECTL_DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412a7010a1b"
    "0a016412001a0022002a003200380042005a080a03617070120164127a080012"
    "0a0a080a036170701201641a620a1a0a0012001a0022002a003200380042005a"
    "080a03617070120164124412260a0762757379626f78120762757379626f782a"
    "0042006a007200800100880100900100a201001a00320042004a005200580060"
    "0068008201008a01009a0100c2010022020a00280038001a0c08001000180020"
    "00280038001a002200"
)


def test_decodes_a_captured_kubectl_configmap() -> None:
    assert decode_request(KUBECTL_CONFIGMAP) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "creationTimestamp": None},
        "data": {"a": "b"},
    }


def test_decodes_a_captured_kubectl_deployment() -> None:
    assert decode_request(KUBECTL_DEPLOYMENT) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "creationTimestamp": None, "labels": {"app": "d"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "d"}},
                "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {}}]},
            },
            "strategy": {},
        },
        "status": {},
    }


# ----------------------------------------------------------------------------------------
# Wire details
# ----------------------------------------------------------------------------------------


def test_envelope_layout() -> None:
    body = encode_object({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}})
    # magic, Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding "", contentType ""}
    assert body == bytes.fromhex(
        "6b3873000a0f0a0276311209" + b"ConfigMap".hex() + "120812060a01611201621a002200"
    )


def test_inline_fields_are_nested_messages_on_the_wire() -> None:
    volume = {"name": "v", "configMap": {"name": "c"}}
    # Volume{name=1, volumeSource=2{configMap=19{localObjectReference=1{name=1}}}}
    wire = bytes.fromhex("0a017612089a01050a030a0163")
    assert encode_message(volume, CORE + "Volume") == wire
    assert decode_message(wire, CORE + "Volume") == volume
    # Probe{handler=1{httpGet=2{port=2 IntOrString{type=1: 0, intVal=2: 8080}}}, period=4}
    probe_wire = bytes.fromhex("0a0912071205080010903f2005")
    assert decode_message(probe_wire, CORE + "Probe") == {
        "httpGet": {"port": 8080},
        "periodSeconds": 5,
    }


def test_inline_fields_detected() -> None:
    found = set(INLINE_FIELDS)
    for expected in [
        (CORE + "Volume", "volumeSource"),
        (CORE + "Probe", "handler"),
        (CORE + "EphemeralContainer", "ephemeralContainerCommon"),
        (CORE + "PersistentVolumeSpec", "persistentVolumeSource"),
        (CORE + "SecretKeySelector", "localObjectReference"),
        (CORE + "ConfigMapVolumeSource", "localObjectReference"),
    ]:
        assert expected in found


def test_ephemeral_container_and_persistent_volume_are_flattened() -> None:
    ephemeral = {"name": "debug", "image": "busybox", "stdin": True, "targetContainerName": "web"}
    raw = encode_message(ephemeral, CORE + "EphemeralContainer")
    assert raw.startswith(b"\x0a")  # field 1: the embedded EphemeralContainerCommon
    assert decode_message(raw, CORE + "EphemeralContainer") == ephemeral
    spec = {"capacity": {"storage": "5Gi"}, "hostPath": {"path": "/data"}, "accessModes": ["RWO"]}
    raw = encode_message(spec, CORE + "PersistentVolumeSpec")
    assert decode_message(raw, CORE + "PersistentVolumeSpec") == spec


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_special_types() -> None:
    seconds = 1795324433  # 2026-11-22T05:13:53Z
    time_wire = b"\x08" + _varint(seconds) + b"\x10" + _varint(123456789)
    assert decode_message(time_wire, META + "Time") == STAMP
    assert decode_message(time_wire, META + "MicroTime") == "2026-11-22T05:13:53.123456Z"
    assert decode_message(b"", META + "Time") is None
    assert decode_message(b"\x08\x00", META + "Time") == "1970-01-01T00:00:00Z"
    assert decode_message(b"\x08" + _varint(-86400), META + "Time") == "1969-12-31T00:00:00Z"
    assert decode_message(b"\x08" + _varint(90 * 10**9), META + "Duration") == "1m30s"
    intstr = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
    assert decode_message(b"\x08\x00\x10" + _varint(-3), intstr) == -3
    assert decode_message(b"\x08\x01\x1a\x0325%", intstr) == "25%"
    assert decode_message(b"", intstr) == 0
    quantity = "k8s.io.apimachinery.pkg.api.resource.Quantity"
    assert decode_message(b"\x0a\x04128M", quantity) == "128M"
    assert decode_message(b"", quantity) == "0"
    raw_ext = "k8s.io.apimachinery.pkg.runtime.RawExtension"
    assert decode_message(b'\x0a\x07{"a":1}', raw_ext) == {"a": 1}
    assert decode_message(b'\x0a\x07{"a":1}', META + "FieldsV1") == {"a": 1}


def test_time_round_trip_normalises_offsets_to_utc() -> None:
    raw = encode_message("2026-11-22T07:13:53+02:00", META + "Time")
    assert decode_message(raw, META + "Time") == STAMP


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (1_500_000_000, "1.5s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_001, "1h2m3.000000001s"),
        (-2_000_000_000, "-2s"),
    ],
)
def test_go_durations(nanos: int, text: str) -> None:
    assert go_duration(nanos) == text
    assert parse_go_duration(text) == nanos


def test_packed_repeated_scalars_and_negative_ints() -> None:
    # PodSecurityContext.supplementalGroups = 4, packed: [1, 300]
    raw = bytes.fromhex("2203") + _varint(1) + _varint(300)
    assert decode_message(raw, CORE + "PodSecurityContext") == {"supplementalGroups": [1, 300]}
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "value": -(2**31)}
    assert decode_request(encode_object(pc))["value"] == -(2**31)


def test_unknown_field_numbers_are_skipped() -> None:
    raw = encode_message({"data": {"a": "b"}}, CORE + "ConfigMap")
    extra = b"\xf8\x06\x05" + b"\xfa\x06\x02hi" + b"\xfd\x06\x00\x00\x00\x00"  # 111: v, l, i32
    assert decode_message(raw + extra, CORE + "ConfigMap") == {"data": {"a": "b"}}


def test_json_inside_the_envelope() -> None:
    obj = {"metadata": {"name": "j"}, "data": {"a": "b"}}
    inner = json.dumps(obj).encode()
    type_meta = b"\x0a\x02v1\x12\x09ConfigMap"
    envelope = (
        b"\x0a" + bytes([len(type_meta)]) + type_meta
        + b"\x12" + bytes([len(inner)]) + inner
        + b"\x22\x10application/json"
    )  # fmt: skip
    assert decode_request(MAGIC + envelope) == {"apiVersion": "v1", "kind": "ConfigMap", **obj}


def test_message_for() -> None:
    assert message_for("apps/v1", "Deployment") == "k8s.io.api.apps.v1.Deployment"
    assert message_for("v1", "Event") == CORE + "Event"
    assert message_for("events.k8s.io/v1", "Event") == "k8s.io.api.events.v1.Event"
    assert message_for("policy/v1", "DeleteOptions") == META + "DeleteOptions"
    with pytest.raises(UnknownKindError):
        message_for("example.com/v1", "Widget")


def test_every_served_kind_has_a_message() -> None:
    for cls in all_kinds():
        assert message_for(cls.API_VERSION, cls.KIND) in MESSAGES


def test_table_references_resolve() -> None:
    for name, fields in MESSAGES.items():
        for num, (jname, kind, ftype, _repeated, map_kv, _flags) in fields.items():
            assert num > 0 and jname, name
            if kind == "message":
                assert ftype in MESSAGES, (name, jname)
            if kind == "map":
                assert map_kv is not None
                assert map_kv[1] in MESSAGES or map_kv[1] in ("string", "bytes"), (name, jname)


# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------


def _envelope(api_version: bytes, kind: bytes, raw: bytes) -> bytes:
    type_meta = b"\x0a" + bytes([len(api_version)]) + api_version
    type_meta += b"\x12" + bytes([len(kind)]) + kind
    return (
        MAGIC
        + b"\x0a" + bytes([len(type_meta)]) + type_meta
        + b"\x12" + _varint(len(raw)) + raw
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "ConfigMap"}', "does not start with k8s"),
        (b"", "does not start with k8s"),
        (MAGIC + b"\x0a\x05\x0a\x02v1", "runs past the end"),
        (MAGIC + b"\x0a\x80", "truncated varint"),
        (_envelope(b"v1", b"", b""), "apiVersion and kind"),
        (_envelope(b"v1", b"ConfigMap", b"\x12\x04\x0a\x02\xff\xfe"), "not valid UTF-8"),
        (_envelope(b"v1", b"ConfigMap", b"\x25\x00\x00\x00\x00"), "does not fit a bool"),
        (_envelope(b"v1", b"ConfigMap", b"\x20\x01\x00"), "field number 0"),
        (_envelope(b"v1", b"ConfigMap", b"\x12\x05"), "runs past the end"),
        (_envelope(b"v1", b"ConfigMap", b"\x0b\x00"), "wire type 3"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode_request(body)


def test_unknown_kind_is_its_own_error() -> None:
    with pytest.raises(UnknownKindError, match="Widget") as info:
        decode_request(_envelope(b"example.com/v1", b"Widget", b""))
    assert isinstance(info.value, ProtobufError)
    assert isinstance(info.value, ValueError)


def test_encoding_errors() -> None:
    with pytest.raises(ProtobufError, match=r"spec\.replica: unknown field"):
        encode_object({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replica": 1}})
    with pytest.raises(ProtobufError, match=r"spec\.replicas: expected an integer"):
        encode_object({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "1"}})
    with pytest.raises(ProtobufError, match="does not fit a int32"):
        encode_object({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 2**31}})
    with pytest.raises(ProtobufError, match="not valid base64"):
        encode_object({"apiVersion": "v1", "kind": "Secret", "data": {"k": "%%%"}})
    with pytest.raises(ProtobufError, match="apiVersion and kind"):
        encode_object({"metadata": {}})


# ----------------------------------------------------------------------------------------
# The real thing: what kubectl sends
# ----------------------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl")


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in API server: minimal discovery, records POSTs and echoes them as JSON."""

    posts: list[tuple[str, str, bytes]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/version":
            self._json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        elif path == "/api":
            self._json(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path == "/apis":
            self._json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        else:
            self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404})  # fmt: skip

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posts.append((self.path, self.headers.get("Content-Type", ""), body))
        try:
            obj = decode_request(body) if body.startswith(MAGIC) else json.loads(body)
        except (ProtobufError, ValueError) as exc:
            self._json(400, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "message": str(exc), "code": 400})  # fmt: skip
            return
        self._json(201, obj)


@pytest.fixture(scope="module")
def kubectl_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], list]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    posts: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (_Recorder,), {"posts": posts})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    home = tmp_path_factory.mktemp("kubectl-home")
    kubeconfig = Path(home) / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "default"}}
                ],
                "current-context": "x",
            }
        )
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    try:
        yield env, posts
    finally:
        server.shutdown()
        server.server_close()


KUBECTL_CREATES = {
    "configmap": ["configmap", "x", "--from-literal=a=b"],
    "deployment": ["deployment", "d", "--image=busybox", "--replicas=0"],
    "secret": ["secret", "generic", "s", "--from-literal=k=v"],
    "namespace": ["namespace", "n"],
    "service-int-port": ["service", "clusterip", "s1", "--tcp=80:8080"],
    "service-named-port": ["service", "nodeport", "s2", "--tcp=80:http"],
    "job": ["job", "j", "--image=busybox", "--", "echo", "hi"],
    "cronjob": ["cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *"],
    "priorityclass": ["priorityclass", "pc", "--value=0", "--description=zero"],
    "pdb": ["poddisruptionbudget", "pdb", "--selector=app=x", "--min-available=50%"],
}


@pytest.mark.parametrize("args", KUBECTL_CREATES.values(), ids=KUBECTL_CREATES.keys())
def test_decodes_what_kubectl_sends(kubectl_env: tuple[dict[str, str], list], args: list) -> None:
    env, posts = kubectl_env
    assert KUBECTL is not None
    # What the object looks like in JSON, by kubectl's own rendering.
    dry = subprocess.run(
        [KUBECTL, "create", "--dry-run=client", "-o", "json", *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    expected = json.loads(dry.stdout)
    before = len(posts)
    subprocess.run(
        [KUBECTL, "create", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert len(posts) == before + 1
    _path, content_type, body = posts[-1]
    if not content_type.startswith(CONTENT_TYPE):
        pytest.skip(f"this kubectl sends {content_type}, not protobuf")
    assert decode_request(body) == expected


def test_kubectl_specifics(kubectl_env: tuple[dict[str, str], list]) -> None:
    env, posts = kubectl_env
    assert KUBECTL is not None
    for args in (KUBECTL_CREATES["deployment"], KUBECTL_CREATES["secret"]):
        subprocess.run(
            [KUBECTL, "create", *args], env=env, capture_output=True, timeout=60, check=True
        )
    deployment, secret = (decode_request(body) for _p, _c, body in posts[-2:])
    assert deployment["spec"]["replicas"] == 0
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert secret["data"] == {"k": base64.b64encode(b"v").decode()}
