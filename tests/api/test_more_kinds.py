"""Strategies of the kinds served for ``kubectl apply --prune``'s default list:
PersistentVolumeClaim, PersistentVolume, ReplicationController, StatefulSet, Ingress and
IngressClass -- defaults, validation messages and field paths, update rules, table cells --
and the same kinds through a running API server (discovery, scale, tables)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kubeling.api.errors import ApiError
from kubeling.api.kinds import (
    IngressClassStrategy,
    IngressStrategy,
    PersistentVolumeClaimStrategy,
    PersistentVolumeStrategy,
    ReplicationControllerStrategy,
    StatefulSetStrategy,
    _common,
    builtin_kinds,
)
from kubeling.api.kinds.core_v1_storage import access_modes_string
from kubeling.api.registry import KindRegistry, Resource
from kubeling.api.strategy import Strategy

Obj = dict[str, Any]
NOW = datetime.datetime(2025, 1, 10, 12, 0, 0, tzinfo=datetime.UTC)
STAMP = "2025-01-10T12:00:00Z"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "now", lambda: NOW)


def create(strategy: Strategy, obj: Obj, *, namespaced: bool = True) -> list[str]:
    """The create steps in the order the handlers run them; the causes as
    ``field: message``."""
    strategy.default(obj)
    strategy.prepare_for_create(obj)
    return [str(c) for c in strategy.validate(obj, namespaced=namespaced)]


def created(strategy: Strategy, obj: Obj, *, namespaced: bool = True) -> Obj:
    causes = create(strategy, obj, namespaced=namespaced)
    assert causes == []
    return obj


def update(strategy: Strategy, new: Obj, old: Obj, *, namespaced: bool = True) -> list[str]:
    strategy.default(new)
    strategy.prepare_for_update(new, old)
    return [str(c) for c in strategy.validate_update(new, old, namespaced=namespaced)]


def status_update(strategy: Strategy, new: Obj, old: Obj) -> list[str]:
    strategy.prepare_for_status_update(new, old)
    return [str(c) for c in strategy.validate_status_update(new, old)]


def cells(strategy: Strategy, obj: Obj, *, wide: bool = False) -> dict[str, Any]:
    return {c.name: c.value(obj) for c in strategy.table_columns() if wide or c.priority == 0}


# =====================================================================================
# registration
# =====================================================================================


def test_registered_with_kubectls_names_scopes_and_subresources() -> None:
    registry = KindRegistry(builtin_kinds())
    expected = {
        "pvc": ("", "persistentvolumeclaims", True, ("status",), ()),
        "pv": ("", "persistentvolumes", False, ("status",), ()),
        "rc": ("", "replicationcontrollers", True, ("status", "scale"), ("all",)),
        "sts": ("apps", "statefulsets", True, ("status", "scale"), ("all",)),
        "ing": ("networking.k8s.io", "ingresses", True, ("status",), ()),
        "ingressclass": ("networking.k8s.io", "ingressclasses", False, (), ()),
    }
    for name, (group, plural, namespaced, subresources, categories) in expected.items():
        kind = registry.find(name)
        assert kind is not None, name
        assert (kind.group, kind.plural, kind.namespaced, kind.subresources,
                kind.categories) == (group, plural, namespaced, subresources, categories)
        assert kind.model is not None and kind.kind == kind.model.KIND
    assert "status.replicas" in registry.find("rc").supported_field_selectors
    assert "name" in registry.find("pvc").supported_field_selectors
    assert "name" in registry.find("pv").supported_field_selectors


def test_kubectls_default_prune_list_is_served() -> None:
    """Every kind kubectl v1.32 looks up for ``apply --prune`` without an allowlist."""
    registry = KindRegistry(builtin_kinds())
    prune_list = [("v1", "ConfigMap"), ("v1", "Endpoints"), ("v1", "Namespace"),
                  ("v1", "PersistentVolumeClaim"), ("v1", "PersistentVolume"), ("v1", "Pod"),
                  ("v1", "ReplicationController"), ("v1", "Secret"), ("v1", "Service"),
                  ("batch/v1", "Job"), ("batch/v1", "CronJob"),
                  ("networking.k8s.io/v1", "Ingress"), ("apps/v1", "DaemonSet"),
                  ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"),
                  ("apps/v1", "StatefulSet")]
    for api_version, kind in prune_list:
        assert registry.by_kind(api_version, kind) is not None, (api_version, kind)


# =====================================================================================
# PersistentVolumeClaim
# =====================================================================================


def pvc(**spec: Any) -> Obj:
    base: Obj = {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"}, "spec": base}


def test_pvc_defaults_and_initial_status() -> None:
    claim = pvc()
    claim["status"] = {"phase": "Bound"}  # a client may not set the status on create
    created(PersistentVolumeClaimStrategy(), claim)
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert "generation" not in claim["metadata"]
    assert PersistentVolumeClaimStrategy().selectable_fields(claim)["name"] == "data"


def test_pvc_required_fields_and_messages() -> None:
    strategy = PersistentVolumeClaimStrategy()
    claim = pvc()
    del claim["spec"]["accessModes"]
    del claim["spec"]["resources"]
    assert create(strategy, claim) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]
    assert create(strategy, pvc(accessModes=["ReadWriteSometimes"])) == [
        'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: '
        '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"']
    assert create(strategy, pvc(accessModes=["ReadWriteOncePod", "ReadOnlyMany"])) == [
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"]
    assert create(strategy, pvc(resources={"requests": {"storage": "0"}})) == [
        'spec.resources[storage]: Invalid value: "0": must be greater than zero']
    assert create(strategy, pvc(volumeMode="Raw")) == [
        'spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"']
    bad_class = create(strategy, pvc(storageClassName="Fast_SSD"))
    assert len(bad_class) == 1 and bad_class[0].startswith(
        'spec.storageClassName: Invalid value: "Fast_SSD": a lowercase RFC 1123 subdomain')
    assert create(strategy, pvc(dataSource={"kind": "Snapshot", "name": "s"})) == [
        "spec.dataSource: Invalid value: \"Snapshot\": must be 'PersistentVolumeClaim' when "
        "referencing the default apiGroup"]
    assert create(strategy, pvc(selector={"matchLabels": {"tier": "gold"}})) == []


def test_pvc_spec_is_immutable_but_volume_name_may_be_set_once() -> None:
    strategy = PersistentVolumeClaimStrategy()
    old = created(strategy, pvc(storageClassName="standard"))
    new = copy.deepcopy(old)
    new["spec"]["storageClassName"] = "fast"
    causes = update(strategy, new, old)
    assert len(causes) == 1
    assert causes[0].startswith("spec: Forbidden: spec is immutable after creation except "
                                "resources.requests and volumeAttributesClassName for bound "
                                "claims\n")
    assert 'spec.storageClassName: "standard" -> "fast"' in causes[0]
    bound = copy.deepcopy(old)
    bound["spec"]["volumeName"] = "pv-1"
    assert update(strategy, bound, old) == []
    rebound = copy.deepcopy(bound)
    rebound["spec"]["volumeName"] = "pv-2"
    assert update(strategy, rebound, bound)[0].startswith("spec: Forbidden: spec is immutable")


def test_pvc_storage_class_may_be_set_on_a_claim_without_one() -> None:
    strategy = PersistentVolumeClaimStrategy()
    old = created(strategy, pvc())
    new = copy.deepcopy(old)
    new["spec"]["storageClassName"] = "standard"
    assert update(strategy, new, old) == []


def test_pvc_only_a_bound_claim_may_grow() -> None:
    strategy = PersistentVolumeClaimStrategy()
    old = created(strategy, pvc())
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update(strategy, grown, old)[0].startswith("spec: Forbidden: spec is immutable")
    old["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    old["spec"]["volumeName"] = "pv-1"
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update(strategy, grown, old) == []
    shrunk = copy.deepcopy(old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "512Mi"
    assert update(strategy, shrunk, old) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than "
        "status.capacity"]


def test_pvc_volume_mode_and_attributes_class_updates() -> None:
    strategy = PersistentVolumeClaimStrategy()
    old = created(strategy, pvc(volumeAttributesClassName="gold"))
    block = copy.deepcopy(old)
    block["spec"]["volumeMode"] = "Block"
    causes = update(strategy, block, old)
    assert causes[0].startswith("spec: Forbidden")
    assert causes[1] == 'volumeMode: Invalid value: "Block": field is immutable'
    silver = copy.deepcopy(old)
    silver["spec"]["volumeAttributesClassName"] = "silver"
    assert update(strategy, silver, old) == []
    cleared = copy.deepcopy(old)
    del cleared["spec"]["volumeAttributesClassName"]
    assert update(strategy, cleared, old) == [
        "spec.volumeAttributesClassName: Forbidden: update from non-nil value to nil is "
        "forbidden"]


def test_pvc_update_keeps_status_and_status_update_keeps_spec() -> None:
    strategy = PersistentVolumeClaimStrategy()
    old = created(strategy, pvc())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Bound"}
    new["metadata"]["labels"] = {"a": "b"}
    assert update(strategy, new, old) == []
    assert new["status"] == {"phase": "Pending"}
    status = copy.deepcopy(old)
    status["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                        "capacity": {"storage": "1Gi"}}
    status["spec"]["accessModes"] = ["ReadOnlyMany"]
    assert status_update(strategy, status, old) == []
    assert status["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert status["status"]["phase"] == "Bound"


def test_pvc_table_cells() -> None:
    strategy = PersistentVolumeClaimStrategy()
    columns = strategy.table_columns()
    assert [c.name for c in columns] == ["Status", "Volume", "Capacity", "Access Modes",
                                         "StorageClass", "VolumeAttributesClass", "Age",
                                         "VolumeMode"]
    assert [c.priority for c in columns] == [0, 0, 0, 0, 0, 0, 0, 1]
    claim = created(strategy, pvc(storageClassName="standard"))
    claim["metadata"]["creationTimestamp"] = "2025-01-10T11:55:00Z"
    assert cells(strategy, claim, wide=True) == {
        "Status": "Pending", "Volume": "", "Capacity": "", "Access Modes": "",
        "StorageClass": "standard", "VolumeAttributesClass": "<unset>", "Age": "5m",
        "VolumeMode": "Filesystem"}
    claim["spec"]["volumeName"] = "pv-1"
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                       "capacity": {"storage": "1024Mi"}}
    claim["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "old"}
    row = cells(strategy, claim)
    assert (row["Status"], row["Volume"], row["Capacity"], row["Access Modes"],
            row["StorageClass"]) == ("Bound", "pv-1", "1Gi", "RWO,RWX", "old")
    claim["metadata"]["deletionTimestamp"] = STAMP
    assert cells(strategy, claim)["Status"] == "Terminating"


def test_access_modes_string_order() -> None:
    assert access_modes_string(["ReadWriteOncePod", "ReadOnlyMany", "ReadWriteOnce",
                                "ReadWriteOnce"]) == "RWO,ROX,RWOP"
    assert access_modes_string(None) == ""


# =====================================================================================
# PersistentVolume
# =====================================================================================


def pv(**spec: Any) -> Obj:
    base: Obj = {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/data/pv"}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
            "spec": base}


def test_pv_defaults_and_initial_status() -> None:
    volume = created(PersistentVolumeStrategy(), pv(), namespaced=False)
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert volume["spec"]["volumeMode"] == "Filesystem"
    assert volume["spec"]["hostPath"] == {"path": "/data/pv", "type": ""}
    assert volume["status"] == {"phase": "Pending", "lastPhaseTransitionTime": STAMP}


def test_pv_validation_messages() -> None:
    strategy = PersistentVolumeStrategy()
    volume = pv()
    del volume["spec"]["hostPath"]
    del volume["spec"]["accessModes"]
    assert create(strategy, volume, namespaced=False) == [
        "spec.accessModes: Required value",
        "spec: Required value: must specify a volume type",
    ]
    assert create(strategy, pv(nfs={"server": "nfs.local", "path": "/export"}),
                  namespaced=False) == [
        "spec.nfs: Forbidden: may not specify more than 1 volume type"]
    assert create(strategy, pv(capacity={"storage": "1Gi", "cpu": "1"}), namespaced=False) == [
        'spec.capacity: Unsupported value: {"storage":"1Gi","cpu":"1"}: supported values: '
        '"storage"']
    assert create(strategy, pv(capacity=None), namespaced=False)[:1] == [
        "spec.capacity: Required value"]
    local = pv(local={"path": "/mnt/disk"})
    del local["spec"]["hostPath"]
    assert create(strategy, local, namespaced=False) == [
        "spec.nodeAffinity: Required value: Local volume requires node affinity"]
    assert create(strategy, pv(persistentVolumeReclaimPolicy="Keep"), namespaced=False) == [
        'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
        '"Delete", "Recycle", "Retain"']
    assert create(strategy, pv(hostPath={"path": "/", "type": ""},
                               persistentVolumeReclaimPolicy="Recycle"), namespaced=False) == [
        "spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath "
        "mount of '/'"]


def test_pv_source_and_volume_mode_are_immutable() -> None:
    strategy = PersistentVolumeStrategy()
    old = created(strategy, pv(), namespaced=False)
    moved = copy.deepcopy(old)
    moved["spec"]["hostPath"]["path"] = "/elsewhere"
    causes = update(strategy, moved, old, namespaced=False)
    assert len(causes) == 1
    assert causes[0].startswith("spec.persistentvolumesource: Forbidden: "
                                "spec.persistentvolumesource is immutable after creation\n")
    relabelled = copy.deepcopy(old)
    relabelled["spec"]["capacity"] = {"storage": "10Gi"}
    relabelled["spec"]["claimRef"] = {"namespace": "default", "name": "data"}
    assert update(strategy, relabelled, old, namespaced=False) == []


def test_pv_phase_change_records_its_time() -> None:
    strategy = PersistentVolumeStrategy()
    old = created(strategy, pv(), namespaced=False)
    old["status"]["lastPhaseTransitionTime"] = "2025-01-01T00:00:00Z"
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Available"
    assert status_update(strategy, new, old) == []
    assert new["status"]["lastPhaseTransitionTime"] == STAMP
    same = copy.deepcopy(old)
    same["status"]["reason"] = "x"
    status_update(strategy, same, old)
    assert same["status"]["lastPhaseTransitionTime"] == "2025-01-01T00:00:00Z"


def test_pv_table_cells() -> None:
    strategy = PersistentVolumeStrategy()
    assert [c.name for c in strategy.table_columns()] == [
        "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
        "VolumeAttributesClass", "Reason", "Age", "VolumeMode"]
    volume = created(strategy, pv(storageClassName="manual",
                                  accessModes=["ReadWriteOnce", "ReadOnlyMany"]),
                     namespaced=False)
    volume["metadata"]["creationTimestamp"] = "2025-01-10T10:00:00Z"
    volume["spec"]["claimRef"] = {"namespace": "web", "name": "data"}
    assert cells(strategy, volume) == {
        "Capacity": "5Gi", "Access Modes": "RWO,ROX", "Reclaim Policy": "Retain",
        "Status": "Pending", "Claim": "web/data", "StorageClass": "manual",
        "VolumeAttributesClass": "<unset>", "Reason": "", "Age": "120m"}


# =====================================================================================
# ReplicationController
# =====================================================================================


def rc(**spec: Any) -> Obj:
    base: Obj = {"template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def test_rc_selector_and_labels_default_to_the_template_labels() -> None:
    controller = created(ReplicationControllerStrategy(), rc())
    assert controller["spec"]["selector"] == {"app": "web"}
    assert controller["metadata"]["labels"] == {"app": "web"}
    assert controller["spec"]["replicas"] == 1
    assert controller["status"] == {"replicas": 0}
    pod_spec = controller["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    own = created(ReplicationControllerStrategy(), rc(selector={"app": "web"}))
    own["metadata"]["labels"] = {"team": "a"}
    ReplicationControllerStrategy().default(own)
    assert own["metadata"]["labels"] == {"team": "a"}


def test_rc_validation_messages() -> None:
    strategy = ReplicationControllerStrategy()
    assert create(strategy, rc(selector={"app": "api"})) == [
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not '
        "match template `labels`"]
    no_template = rc()
    del no_template["spec"]["template"]
    assert create(strategy, no_template) == ["spec.selector: Required value",
                                             "spec.template: Required value"]
    never = rc()
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    never["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    assert create(strategy, never) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
        '"Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
        "ReplicationController is not Supported"]
    assert create(strategy, rc(replicas=-1)) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    empty = rc()
    del empty["spec"]["template"]["spec"]["containers"]
    assert create(strategy, empty) == ["spec.template.spec.containers: Required value"]


def test_rc_selector_may_change_with_the_template() -> None:
    strategy = ReplicationControllerStrategy()
    old = created(strategy, rc())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "web2"}
    new["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}
    assert update(strategy, new, old) == []


def test_rc_status_rules_and_table() -> None:
    strategy = ReplicationControllerStrategy()
    old = created(strategy, rc())
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "readyReplicas": 2, "availableReplicas": 2}
    assert status_update(strategy, new, old) == [
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas"]
    old["status"] = {"replicas": 3, "readyReplicas": 2}
    old["metadata"]["creationTimestamp"] = "2025-01-10T11:59:00Z"
    assert cells(strategy, old, wide=True) == {
        "Desired": 1, "Current": 3, "Ready": 2, "Age": "60s", "Containers": "app",
        "Images": "nginx", "Selector": "app=web"}
    assert strategy.selectable_fields(old)["status.replicas"] == "3"


# =====================================================================================
# StatefulSet
# =====================================================================================


def sts(**spec: Any) -> Obj:
    base: Obj = {
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}},
                     "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                  "spec": {"accessModes": ["ReadWriteOnce"],
                                           "resources": {"requests": {"storage": "1Gi"}}}}],
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"}, "spec": base}


def test_sts_defaults_as_the_api_server_writes_them() -> None:
    s = created(StatefulSetStrategy(), sts())
    spec = s["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                            "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert s["status"] == {"replicas": 0, "availableReplicas": 0}
    on_delete = created(StatefulSetStrategy(), sts(updateStrategy={"type": "OnDelete"}))
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}
    explicit = created(StatefulSetStrategy(), sts(updateStrategy={"type": "RollingUpdate"}))
    assert explicit["spec"]["updateStrategy"] == {"type": "RollingUpdate"}


def test_sts_max_unavailable_is_dropped_as_with_its_gate_off() -> None:
    s = created(StatefulSetStrategy(), sts(updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": 2}}))
    assert s["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 1}


def test_sts_validation_messages() -> None:
    strategy = StatefulSetStrategy()
    no_selector = sts()
    del no_selector["spec"]["selector"]
    assert create(strategy, no_selector) == [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: {"app":"db"}: `selector` does not '
        "match template `labels`"]
    assert create(strategy, sts(selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for statefulset"]
    assert create(strategy, sts(selector={"matchLabels": {"app": "other"}})) == [
        'spec.template.metadata.labels: Invalid value: {"app":"db"}: `selector` does not '
        "match template `labels`"]
    assert create(strategy, sts(podManagementPolicy="Sometimes")) == [
        "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or "
        "'Parallel'"]
    assert create(strategy, sts(updateStrategy={"type": "OnDelete",
                                                "rollingUpdate": {"partition": 1}})) == [
        "spec.updateStrategy.rollingUpdate: Invalid value: {\"partition\":1}: only allowed "
        "for updateStrategy 'RollingUpdate'"]
    assert create(strategy, sts(updateStrategy={"type": "Rolling"})) == [
        "spec.updateStrategy: Invalid value: {\"type\":\"Rolling\"}: must be 'RollingUpdate' "
        "or 'OnDelete'"]
    assert create(strategy, sts(persistentVolumeClaimRetentionPolicy={
        "whenDeleted": "Keep"})) == [
        'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
        'supported values: "Retain", "Delete"']
    bad_name = sts()
    bad_name["metadata"]["name"] = "db.primary"
    assert create(strategy, bad_name)[0].startswith(
        'metadata.name: Invalid value: "db.primary": a lowercase RFC 1123 label')


def test_sts_template_pod_spec_is_not_validated_as_in_kubernetes() -> None:
    s = sts()
    s["spec"]["template"]["spec"]["containers"] = []
    assert create(StatefulSetStrategy(), s) == []


def test_sts_only_some_spec_fields_may_change() -> None:
    strategy = StatefulSetStrategy()
    old = created(strategy, sts())
    message = ("spec: Forbidden: updates to statefulset spec for fields other than "
               "'replicas', 'ordinals', 'template', 'updateStrategy', "
               "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
    for change in ({"serviceName": "other"}, {"podManagementPolicy": "Parallel"},
                   {"revisionHistoryLimit": 3}):
        new = copy.deepcopy(old)
        new["spec"].update(change)
        assert update(strategy, new, old) == [message], change
    claims = copy.deepcopy(old)
    claims["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert update(strategy, claims, old) == [message]
    selector = copy.deepcopy(old)
    selector["spec"]["selector"] = {"matchLabels": {"app": "db", "tier": "x"}}
    selector["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert update(strategy, selector, old) == [message]
    allowed = copy.deepcopy(old)
    allowed["spec"].update(replicas=3, minReadySeconds=5, ordinals={"start": 1})
    allowed["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17"
    allowed["spec"]["updateStrategy"] = {"type": "OnDelete"}
    allowed["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete",
                                                               "whenScaled": "Retain"}
    assert update(strategy, allowed, old) == []
    same_quantity = copy.deepcopy(old)
    same_quantity["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"][
        "storage"] = "1024Mi"
    assert update(strategy, same_quantity, old) == []


def test_sts_status_rules() -> None:
    strategy = StatefulSetStrategy()
    old = created(strategy, sts())
    old["status"]["collisionCount"] = 2
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 2, "readyReplicas": 1, "availableReplicas": 2,
                     "collisionCount": 1}
    assert status_update(strategy, new, old) == [
        "status.availableReplicas: Invalid value: 2: cannot be greater than "
        "status.readyReplicas",
        "status.collisionCount: Invalid value: 1: cannot be decremented"]


def test_sts_table_cells() -> None:
    strategy = StatefulSetStrategy()
    s = created(strategy, sts(replicas=3))
    s["status"]["readyReplicas"] = 2
    s["metadata"]["creationTimestamp"] = "2025-01-08T12:00:00Z"
    assert cells(strategy, s, wide=True) == {"Ready": "2/3", "Age": "2d",
                                             "Containers": "db", "Images": "postgres:16"}


# =====================================================================================
# Ingress and IngressClass
# =====================================================================================


def backend(name: str = "web", **port: Any) -> Obj:
    return {"service": {"name": name, "port": port or {"number": 80}}}


def ingress(**spec: Any) -> Obj:
    base: Obj = {"rules": [{"host": "example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend()}]}}]}
    base.update(spec)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def with_path(**entry: Any) -> Obj:
    return ingress(rules=[{"http": {"paths": [{"backend": backend(), **entry}]}}])


def test_ingress_valid_shapes() -> None:
    strategy = IngressStrategy()
    assert create(strategy, ingress()) == []
    assert create(strategy, ingress(rules=None, defaultBackend=backend(name="fallback"))) == []
    assert create(strategy, ingress(rules=[{"host": "*.example.com"}],
                                    tls=[{"hosts": ["*.example.com"],
                                          "secretName": "tls"}])) == []
    resource = {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket",
                             "name": "static"}}
    assert create(strategy, ingress(defaultBackend=resource)) == []
    assert create(strategy, with_path(pathType="ImplementationSpecific")) == []
    obj = created(strategy, ingress())
    assert obj["metadata"]["name"] == "web" and "status" not in obj


def test_ingress_validation_messages() -> None:
    strategy = IngressStrategy()
    assert create(strategy, ingress(rules=[])) == [
        "spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"]
    assert create(strategy, with_path(path="/")) == [
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
    assert create(strategy, with_path(path="api", pathType="Exact")) == [
        'spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path']
    assert create(strategy, with_path(path="/a//b/..", pathType="Prefix")) == [
        "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/..\": must not contain '//'",
        "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/..\": cannot end with '/..'"]
    assert create(strategy, with_path(path="/", pathType="Regex")) == [
        'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: '
        '"Exact", "ImplementationSpecific", "Prefix"']
    assert create(strategy, ingress(rules=[{"host": "10.0.0.1"}])) == [
        'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address']
    assert create(strategy, ingress(rules=[{"http": {"paths": []}}])) == [
        "spec.rules[0].http.paths: Required value"]
    bad_service = create(strategy, ingress(defaultBackend=backend(name="Web")))
    assert len(bad_service) == 1 and bad_service[0].startswith(
        'spec.defaultBackend.service.name: Invalid value: "Web": a DNS-1035 label')
    two_ports = {"service": {"name": "web", "port": {"name": "http", "number": 80}}}
    assert create(strategy, ingress(defaultBackend=two_ports)) == [
        'spec.defaultBackend: Invalid value: "": cannot set both port name & port number']
    no_port = {"service": {"name": "web"}}
    assert create(strategy, ingress(defaultBackend=no_port)) == [
        "spec.defaultBackend: Required value: port name or number is required"]
    assert create(strategy, ingress(defaultBackend={})) == [
        'spec.defaultBackend: Invalid value: "": resource or service backend is required']
    assert create(strategy, ingress(defaultBackend=backend(number=70000))) == [
        "spec.defaultBackend.service.port.number: Invalid value: 70000: must be between 1 "
        "and 65535, inclusive"]
    wildcard = create(strategy, ingress(rules=[{"host": "a.*.com"}]))
    assert len(wildcard) == 1 and wildcard[0].startswith(
        'spec.rules[0].host: Invalid value: "a.*.com": a wildcard DNS-1123 subdomain must '
        "start with '*.'")


def test_ingress_class_annotation_conflicts_only_on_create() -> None:
    strategy = IngressStrategy()
    obj = ingress(ingressClassName="nginx")
    obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    assert create(strategy, copy.deepcopy(obj)) == [
        'annotations.kubernetes.io/ingress.class: Invalid value: "nginx": can not be set when '
        "the class field is also set"]
    old = created(strategy, ingress())
    new = copy.deepcopy(old)
    new["spec"]["ingressClassName"] = "nginx"
    new["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    assert update(strategy, new, old) == []


def test_ingress_status_and_table() -> None:
    strategy = IngressStrategy()
    obj = created(strategy, ingress())
    new = copy.deepcopy(obj)
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"ip": "nope"}]}}
    assert status_update(strategy, new, obj) == [
        'status.loadBalancer.ingress[1].ip: Invalid value: "nope": must be a valid IP address']
    obj["metadata"]["creationTimestamp"] = "2025-01-10T11:59:30Z"
    assert cells(strategy, obj) == {"Class": "<none>", "Hosts": "example.com",
                                    "Address": "", "Ports": "80", "Age": "30s"}
    obj["spec"]["ingressClassName"] = "nginx"
    obj["spec"]["tls"] = [{"hosts": ["example.com"]}]
    obj["spec"]["rules"] = [{"host": h} for h in ("a.io", "", "b.io", "c.io", "d.io")]
    obj["status"] = {"loadBalancer": {"ingress": [
        {"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "198.51.100.7"},
        {"ip": "203.0.113.9"}]}}
    row = cells(strategy, obj)
    assert row["Class"] == "nginx"
    assert row["Hosts"] == "a.io,b.io,c.io + 2 more..."
    assert row["Address"] == "198.51.100.7,203.0.113.9,lb.example.com"
    assert row["Ports"] == "80, 443"
    obj["spec"]["rules"] = [{"http": {"paths": []}}]
    assert cells(strategy, obj)["Hosts"] == "*"


def ingress_class(**spec: Any) -> Obj:
    base: Obj = {"controller": "example.com/ingress-controller"}
    base.update(spec)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx"}, "spec": base}


def test_ingress_class_rules() -> None:
    strategy = IngressClassStrategy()
    created(strategy, ingress_class(), namespaced=False)
    assert create(strategy, ingress_class(controller=None), namespaced=False) == [
        "spec.controller: Required value"]
    assert create(strategy, ingress_class(controller="nginx"), namespaced=False) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as '
        '"acme.io/foo")']
    long_name = "example.com/" + "x" * 250
    assert create(strategy, ingress_class(controller=long_name), namespaced=False) == [
        "spec.controller: Too long: may not be more than 250 bytes"]
    params = created(strategy, ingress_class(parameters={"kind": "Config", "name": "c"}),
                     namespaced=False)
    assert params["spec"]["parameters"]["scope"] == "Cluster"
    assert create(strategy, ingress_class(parameters={"kind": "Config", "name": "c",
                                                      "scope": "Namespace"}),
                  namespaced=False) == [
        "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"]
    assert create(strategy, ingress_class(parameters={"name": "c", "namespace": "x"}),
                  namespaced=False) == [
        "spec.parameters.kind: Required value: kind is required",
        "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"]
    old = created(strategy, ingress_class(), namespaced=False)
    new = copy.deepcopy(old)
    new["spec"]["controller"] = "example.com/other"
    assert update(strategy, new, old, namespaced=False) == [
        'spec.controller: Invalid value: "example.com/other": field is immutable']


def test_ingress_class_table() -> None:
    strategy = IngressClassStrategy()
    obj = created(strategy, ingress_class(parameters={
        "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external"}),
        namespaced=False)
    obj["metadata"]["creationTimestamp"] = STAMP
    assert cells(strategy, obj) == {
        "Controller": "example.com/ingress-controller",
        "Parameters": "IngressParameters.k8s.example.com/external", "Age": "0s"}
    del obj["spec"]["parameters"]
    assert cells(strategy, obj)["Parameters"] == "<none>"


# =====================================================================================
# through a running API server
# =====================================================================================

PVCS = Resource(group="", version="v1", plural="persistentvolumeclaims",
                kind="PersistentVolumeClaim", namespaced=True)
PVS = Resource(group="", version="v1", plural="persistentvolumes", kind="PersistentVolume",
               namespaced=False)
RCS = Resource(group="", version="v1", plural="replicationcontrollers",
               kind="ReplicationController", namespaced=True)
STSS = Resource(group="apps", version="v1", plural="statefulsets", kind="StatefulSet",
                namespaced=True)
INGRESSES = Resource(group="networking.k8s.io", version="v1", plural="ingresses",
                     kind="Ingress", namespaced=True)
INGRESS_CLASSES = Resource(group="networking.k8s.io", version="v1", plural="ingressclasses",
                           kind="IngressClass", namespaced=False)


async def test_served_end_to_end(api: Any) -> None:
    c = api.client()
    claim = await c.create(PVCS, pvc(), "default")
    assert claim["status"] == {"phase": "Pending"}
    assert claim["spec"]["volumeMode"] == "Filesystem"
    volume = await c.create(PVS, pv())
    assert volume["status"]["phase"] == "Pending"
    ing = await c.create(INGRESSES, ingress(), "default")
    assert ing["metadata"]["generation"] == 1
    await c.create(INGRESS_CLASSES, ingress_class())
    with pytest.raises(ApiError) as info:
        await c.create(INGRESSES, ingress(rules=[]), "default")
    assert info.value.code == 422
    assert "either `defaultBackend` or `rules` must be specified" in info.value.message

    controller = await c.create(RCS, rc(replicas=2), "default")
    assert controller["spec"]["selector"] == {"app": "web"}
    scale = await c.get(RCS, "web", "default", subresource="scale")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=web"}
    scale = await c.patch(RCS, "web", {"spec": {"replicas": 4}}, "default",
                          subresource="scale")
    assert scale["spec"]["replicas"] == 4
    assert (await c.get(RCS, "web", "default"))["spec"]["replicas"] == 4

    stateful = await c.create(STSS, sts(), "default")
    assert stateful["metadata"]["generation"] == 1
    await c.patch(STSS, "db", {"spec": {"replicas": 3}}, "default", subresource="scale")
    scale = await c.get(STSS, "db", "default", subresource="scale")
    assert scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "app=db"
    with pytest.raises(ApiError) as info:
        await c.patch(STSS, "db", {"spec": {"serviceName": "other"}}, "default")
    assert info.value.code == 422
    assert "updates to statefulset spec for fields other than" in info.value.message


async def test_discovery_and_tables(api: Any) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(api.url + "/api/v1") as resp:
            core = {r["name"]: r for r in (await resp.json())["resources"]}
        async with session.get(api.url + "/apis/networking.k8s.io/v1") as resp:
            networking = {r["name"]: r for r in (await resp.json())["resources"]}
        assert core["persistentvolumeclaims"]["shortNames"] == ["pvc"]
        assert core["persistentvolumes"]["namespaced"] is False
        assert core["replicationcontrollers"]["categories"] == ["all"]
        assert "replicationcontrollers/scale" in core
        assert networking["ingresses"]["shortNames"] == ["ing"]
        assert "ingresses/status" in networking
        assert networking["ingressclasses"]["namespaced"] is False
        aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        async with session.get(api.url + "/apis", headers={"Accept": aggregated}) as resp:
            groups = {g["metadata"]["name"]: g for g in (await resp.json())["items"]}
        served = {r["resource"]: r for r in
                  groups["networking.k8s.io"]["versions"][0]["resources"]}
        assert served["ingresses"]["shortNames"] == ["ing"]
        assert served["ingresses"]["scope"] == "Namespaced"
        assert served["ingressclasses"]["scope"] == "Cluster"
        apps = {r["resource"]: r for r in groups["apps"]["versions"][0]["resources"]}
        assert apps["statefulsets"]["categories"] == ["all"]
        assert {s["subresource"] for s in apps["statefulsets"]["subresources"]} == {
            "status", "scale"}
        async with session.get(api.url + "/openapi/v3") as resp:
            index = (await resp.json())["paths"]
        async with session.get(api.url + index["apis/networking.k8s.io/v1"]
                               ["serverRelativeURL"]) as resp:
            schemas = (await resp.json())["components"]["schemas"]
        ingress_schema = schemas["io.k8s.api.networking.v1.Ingress"]
        assert ingress_schema["x-kubernetes-group-version-kind"] == [
            {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"}]
        rules = schemas["io.k8s.api.networking.v1.IngressSpec"]["properties"]["rules"]
        assert rules["x-kubernetes-list-type"] == "atomic"
        await api.client().create(PVCS, pvc(), "default")
        table_type = "application/json;as=Table;v=v1;g=meta.k8s.io"
        async with session.get(api.url + "/api/v1/namespaces/default/persistentvolumeclaims",
                               headers={"Accept": table_type}) as resp:
            table = await resp.json()
        assert [c["name"] for c in table["columnDefinitions"]] == [
            "Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
            "VolumeAttributesClass", "Age", "VolumeMode"]
        assert table["rows"][0]["cells"][:3] == ["data", "Pending", ""]
