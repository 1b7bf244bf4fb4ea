"""Strategies of the built-in kinds, on plain dicts: defaults, validation messages and
field paths, update rules, deletion, QoS class and table cells."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kubeling.api.kinds import (
    ConfigMapStrategy,
    DeploymentStrategy,
    EndpointSliceStrategy,
    EndpointsStrategy,
    EventStrategy,
    LeaseStrategy,
    NamespaceStrategy,
    NodeStrategy,
    PodStrategy,
    ReplicaSetStrategy,
    SecretStrategy,
    ServiceAccountStrategy,
    ServiceStrategy,
    _common,
    builtin_kinds,
    human_duration,
)
from kubeling.api.kinds._podspec import UPDATABLE_POD_SPEC_FIELDS, image_tag, pod_qos_class
from kubeling.api.registry import KindRegistry
from kubeling.api.strategy import Strategy

Obj = dict[str, Any]
NOW = datetime.datetime(2025, 1, 10, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "now", lambda: NOW)


def ago(seconds: int) -> str:
    return (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(strategy: Strategy, obj: Obj, *, namespaced: bool = True) -> list[str]:
    """Run the create steps of the pipeline; the causes as ``field: message``."""
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


def pod(*containers: Obj, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": list(containers or [{"name": "app", "image": "nginx:1.25"}]),
                     **spec}}


def deployment(**spec: Any) -> Obj:
    base: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}},
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def service(**spec: Any) -> Obj:
    base: Obj = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"}, "spec": base}


# =====================================================================================
# Registration
# =====================================================================================


def test_builtin_kinds_names_scopes_and_subresources() -> None:
    registry = KindRegistry(builtin_kinds())
    pods = registry.get("", "v1", "pods")
    assert pods is not None
    assert pods.short_names == ("po",) and pods.categories == ("all",)
    assert pods.subresources == ("status", "binding", "eviction", "log", "exec", "attach",
                                 "portforward", "ephemeralcontainers")
    assert registry.find("deploy") is registry.get("apps", "v1", "deployments")
    assert registry.find("ns").namespaced is False
    assert registry.find("no").namespaced is False
    assert registry.find("svc").categories == ("all",)
    assert registry.find("rs").subresources == ("status", "scale")
    assert registry.find("cm").subresources == ()
    assert registry.find("leases").group == "coordination.k8s.io"
    assert registry.find("endpointslices").group == "discovery.k8s.io"
    assert {k.plural for k in registry} == {
        "namespaces", "nodes", "pods", "services", "endpoints", "configmaps", "secrets",
        "serviceaccounts", "events", "replicasets", "deployments", "leases", "endpointslices",
        "daemonsets", "controllerrevisions", "jobs", "cronjobs", "poddisruptionbudgets",
        "persistentvolumeclaims", "persistentvolumes", "replicationcontrollers", "statefulsets",
        "ingresses", "ingressclasses", "horizontalpodautoscalers"}


def test_builtin_kinds_field_selectors() -> None:
    registry = KindRegistry(builtin_kinds())
    assert {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
            "status.nominatedNodeName", "metadata.namespace"} <= \
        registry.find("pods").supported_field_selectors
    assert {"involvedObject.kind", "involvedObject.uid", "reason", "reportingComponent",
            "source", "type"} <= registry.find("events").supported_field_selectors
    assert "spec.unschedulable" in registry.find("nodes").supported_field_selectors
    assert "status.phase" in registry.find("namespaces").supported_field_selectors
    assert "type" in registry.find("secrets").supported_field_selectors
    assert "status.replicas" in registry.find("replicasets").supported_field_selectors


def test_status_and_generation_flags() -> None:
    flags = {k.kind: (k.strategy.has_status, k.strategy.tracks_generation)
             for k in builtin_kinds()}
    for kind in ("ConfigMap", "Secret", "ServiceAccount", "Endpoints", "Event", "Lease",
                 "EndpointSlice"):
        assert flags[kind][0] is False, kind
    assert flags["Deployment"] == (True, True)
    assert flags["ReplicaSet"] == (True, True)
    assert flags["Pod"] == (True, False)


def test_models_resolve_lazily() -> None:
    kinds = {k.kind: k for k in builtin_kinds()}
    assert kinds["Pod"].model is not None and kinds["Pod"].model.__name__ == "Pod"
    from kubeling.api.kinds import model_ref

    assert model_ref("no_such_module", "Pod") is None


def test_selectable_fields() -> None:
    p = created(PodStrategy(), pod())
    fields = PodStrategy().selectable_fields(p)
    assert fields["spec.hostNetwork"] == "false"
    assert fields["status.phase"] == "Pending"
    assert fields["spec.schedulerName"] == "default-scheduler"
    assert fields["metadata.namespace"] == "default"
    event = {"metadata": {"name": "e", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": "web"}, "reportingComponent": "kubelet"}
    assert EventStrategy().selectable_fields(event)["source"] == "kubelet"
    assert NodeStrategy().selectable_fields({"metadata": {"name": "n"}}) == {
        "metadata.name": "n", "spec.unschedulable": "false"}


# =====================================================================================
# Pod defaults
# =====================================================================================


def test_pod_defaults_as_the_api_server_writes_them() -> None:
    p = created(PodStrategy(), pod({"name": "app", "image": "nginx",
                                    "ports": [{"containerPort": 80}]}))
    assert p["spec"] == {
        "containers": [{
            "name": "app", "image": "nginx", "imagePullPolicy": "Always",
            "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
        "securityContext": {}, "enableServiceLinks": True, "priority": 0,
        "preemptionPolicy": "PreemptLowerPriority"}
    assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("registry.local:5000/team/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("nginx:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy_default(image: str, policy: str) -> None:
    p = created(PodStrategy(), pod({"name": "app", "image": image}))
    assert p["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_image_tag_of_unparsable_reference_is_empty() -> None:
    assert image_tag("Nginx") == ""
    assert image_tag("") == ""
    assert image_tag("example.com/Team/app") == ""


def test_pod_defaults_reach_init_containers_probes_volumes_and_env() -> None:
    p = created(PodStrategy(), pod(
        {"name": "app", "image": "nginx:1",
         "livenessProbe": {"httpGet": {"port": 80}},
         "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
         "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
         "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                          {"name": "config", "mountPath": "/etc/app"}]},
        initContainers=[{"name": "init", "image": "busybox"}],
        volumes=[{"name": "cache"}, {"name": "config", "configMap": {"name": "app"}},
                 {"name": "creds", "secret": {"secretName": "app"}}]))
    app = p["spec"]["containers"][0]
    assert app["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                                    "timeoutSeconds": 1, "periodSeconds": 10,
                                    "successThreshold": 1, "failureThreshold": 3}
    assert app["readinessProbe"]["periodSeconds"] == 5
    assert app["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName",
                                                      "apiVersion": "v1"}
    assert app["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    init = p["spec"]["initContainers"][0]
    assert init["imagePullPolicy"] == "Always"
    assert init["terminationMessagePolicy"] == "File" and init["resources"] == {}
    assert p["spec"]["volumes"] == [
        {"name": "cache", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "app", "defaultMode": 420}},
        {"name": "creds", "secret": {"secretName": "app", "defaultMode": 420}}]


def test_pod_requests_default_to_limits_and_host_network_ports() -> None:
    p = created(PodStrategy(), pod(
        {"name": "app", "image": "nginx:1", "ports": [{"containerPort": 8080}],
         "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                       "requests": {"cpu": "250m"}}}, hostNetwork=True))
    container = p["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "128Mi"}
    assert container["ports"][0]["hostPort"] == 8080


def test_pod_with_priority_class_keeps_priority_unset() -> None:
    p = created(PodStrategy(), pod(priorityClassName="system-node-critical"))
    assert "priority" not in p["spec"]


def test_service_account_spellings_are_kept_in_step() -> None:
    p = created(PodStrategy(), pod(serviceAccount="builder"))
    assert p["spec"]["serviceAccountName"] == "builder"
    assert p["spec"]["serviceAccount"] == "builder"


def test_pod_create_resets_status_and_notes_scheduling_gates() -> None:
    p = pod(schedulingGates=[{"name": "wait"}])
    p["status"] = {"phase": "Running", "podIP": "10.0.0.9"}
    created(PodStrategy(), p)
    assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
         "message": "Scheduling is blocked due to non-empty scheduling gates",
         "lastProbeTime": None, "lastTransitionTime": None}]}


# =====================================================================================
# QoS class
# =====================================================================================


def _resources(requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    res: Obj = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    return {"name": "c", "image": "x", "resources": res}


@pytest.mark.parametrize(("containers", "qos"), [
    ([_resources()], "BestEffort"),
    ([_resources(requests={"cpu": "0", "memory": "0"})], "BestEffort"),
    ([_resources(requests={"nvidia.com/gpu": "1"}, limits={"nvidia.com/gpu": "1"})],
     "BestEffort"),
    ([_resources(requests={"cpu": "100m"})], "Burstable"),
    ([_resources(limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([_resources(requests={"cpu": "1000m", "memory": "1Gi"},
                 limits={"cpu": "1", "memory": "1024Mi"})], "Guaranteed"),
    ([_resources(requests={"cpu": "500m", "memory": "1Gi"},
                 limits={"cpu": "1", "memory": "1Gi"})], "Burstable"),
    ([_resources(limits={"cpu": "1"})], "Burstable"),
    ([_resources(limits={"cpu": "1", "memory": "1Gi"}), _resources()], "Burstable"),
])
def test_qos_class(containers: list[Obj], qos: str) -> None:
    assert pod_qos_class({"spec": {"containers": containers}}) == qos


def test_qos_counts_init_containers() -> None:
    spec = {"containers": [_resources(limits={"cpu": "1", "memory": "1Gi"})],
            "initContainers": [_resources(requests={"cpu": "100m"})]}
    assert pod_qos_class({"spec": spec}) == "Burstable"
    p = created(PodStrategy(), pod(_resources(limits={"cpu": "1", "memory": "1Gi"})))
    assert p["status"]["qosClass"] == "Guaranteed"


def test_status_update_backfills_qos_and_pod_ips() -> None:
    strategy = PodStrategy()
    old = created(strategy, pod())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "podIP": "10.1.0.5"}
    strategy.prepare_for_status_update(new, old)
    assert new["status"]["qosClass"] == "BestEffort"
    assert new["status"]["podIPs"] == [{"ip": "10.1.0.5"}]
    new["status"]["podIPs"] = [{"ip": "nope"}]
    assert [str(c) for c in strategy.validate_status_update(new, old)] == [
        'status.podIPs[0].ip: Invalid value: "nope": must be a valid IP address, '
        '(e.g. 10.9.8.7 or 2001:db8::ffff)']


# =====================================================================================
# Pod validation
# =====================================================================================


def test_pod_containers_required() -> None:
    p = pod()
    p["spec"]["containers"] = []
    assert create(PodStrategy(), p) == ["spec.containers: Required value"]


def test_pod_container_image_and_name_required() -> None:
    assert create(PodStrategy(), pod({"image": "nginx"}, {"name": "b"})) == [
        "spec.containers[0].name: Required value",
        "spec.containers[1].image: Required value"]


def test_pod_duplicate_container_names_including_init_containers() -> None:
    p = pod({"name": "a", "image": "x"}, {"name": "a", "image": "y"},
            initContainers=[{"name": "b", "image": "z"}, {"name": "a", "image": "z"}])
    assert create(PodStrategy(), p) == [
        'spec.containers[1].name: Duplicate value: "a"',
        'spec.initContainers[1].name: Duplicate value: "a"']


def test_pod_container_name_must_be_a_dns_label() -> None:
    causes = create(PodStrategy(), pod({"name": "App_1", "image": "x"}))
    assert len(causes) == 1
    assert causes[0].startswith('spec.containers[0].name: Invalid value: "App_1": a lowercase '
                                "RFC 1123 label must consist of")


def test_pod_port_checks() -> None:
    p = pod({"name": "a", "image": "x", "ports": [
        {"containerPort": 70000}, {"containerPort": 80, "name": "HTTP"},
        {"containerPort": 81, "name": "web"}, {"containerPort": 82, "name": "web"},
        {"containerPort": 83, "protocol": "ICMP"}, {"name": "metrics"}]})
    assert create(PodStrategy(), p) == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain only '
        "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        'spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain at least one '
        "letter (a-z)",
        'spec.containers[0].ports[3].name: Duplicate value: "web"',
        'spec.containers[0].ports[4].protocol: Unsupported value: "ICMP": supported values: '
        '"SCTP", "TCP", "UDP"',
        "spec.containers[0].ports[5].containerPort: Required value"]


def test_pod_restart_policy_values() -> None:
    assert create(PodStrategy(), pod(restartPolicy="Sometimes")) == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"']


def test_pod_dns_policy_and_deadline() -> None:
    assert create(PodStrategy(), pod(dnsPolicy="None", activeDeadlineSeconds=0)) == [
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
        "inclusive"]


def test_pod_env_volume_mount_and_resources() -> None:
    p = pod({"name": "a", "image": "x",
             "env": [{"name": "A=B"}, {"value": "1"},
                     {"name": "C", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
             "volumeMounts": [{"name": "data", "mountPath": "/data"}],
             "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}})
    assert create(PodStrategy(), p) == [
        "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable "
        "name must consist only of printable ASCII characters other than '='",
        "spec.containers[0].env[1].name: Required value",
        'spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when '
        "`value` is not empty",
        'spec.containers[0].volumeMounts[0].name: Not found: "data"',
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal '
        "to cpu limit of 1500m"]


def test_pod_bad_quantity_and_resource_name() -> None:
    p = pod({"name": "a", "image": "x", "resources": {"limits": {"cpu": "lots", "gpu": "1"}}})
    causes = create(PodStrategy(), p)
    assert "spec.containers[0].resources.limits[cpu]: Invalid value: \"lots\": quantities " \
           "must match the regular expression" in causes[0]
    assert 'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a ' \
           "standard resource for containers" in causes


def test_pod_volume_checks() -> None:
    p = pod(volumes=[{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}},
                     {"name": "a", "secret": {}}, {"name": "c", "configMap": {
                         "name": "x", "defaultMode": 1000}}])
    p["spec"]["volumes"].append({"name": "Bad"})
    assert create(PodStrategy(), p) == [
        "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type",
        'spec.volumes[1].name: Duplicate value: "a"',
        "spec.volumes[1].secret.secretName: Required value",
        "spec.volumes[2].configMap.defaultMode: Invalid value: 1000: must be a number between "
        "0 and 0777 (octal), both inclusive",
        'spec.volumes[3].name: Invalid value: "Bad": a lowercase RFC 1123 label must consist '
        "of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]


def test_pod_probe_checks() -> None:
    p = pod({"name": "a", "image": "x", "livenessProbe": {"successThreshold": 2},
             "readinessProbe": {"httpGet": {"port": 0, "scheme": "FTP"}}},
            initContainers=[{"name": "i", "image": "x", "readinessProbe": {"exec": {}}}])
    assert create(PodStrategy(), p) == [
        "spec.containers[0].livenessProbe: Required value: must specify a handler type",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 "
        "and 65535, inclusive",
        'spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": '
        'supported values: "HTTP", "HTTPS"',
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers "
        "without restartPolicy=Always"]


def test_sidecar_init_containers_may_have_probes() -> None:
    p = pod(initContainers=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                             "readinessProbe": {"tcpSocket": {"port": 9901}}}])
    assert create(PodStrategy(), p) == []


def test_pod_toleration_checks() -> None:
    p = pod(tolerations=[{"operator": "Equal", "value": "x"},
                         {"key": "k", "operator": "Exists", "value": "v"},
                         {"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"},
                         {"key": "k", "operator": "Maybe"},
                         {"key": "k", "effect": "Sometimes"}])
    causes = create(PodStrategy(), p)
    assert causes[0] == ('spec.tolerations[0].operator: Invalid value: "Equal": operator must '
                         'be Exists when `key` is empty, which means "match all values and all '
                         'keys"')
    assert causes[1].startswith("spec.tolerations[1].operator: Invalid value: ")
    assert causes[1].endswith("value must be empty when `operator` is 'Exists'")
    assert causes[2:] == [
        'spec.tolerations[2].effect: Invalid value: "NoSchedule": effect must be \'NoExecute\' '
        "when `tolerationSeconds` is set",
        'spec.tolerations[3].operator: Unsupported value: "Maybe": supported values: "Equal", '
        '"Exists"',
        'spec.tolerations[4].effect: Unsupported value: "Sometimes": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"']


def test_pod_name_is_a_subdomain() -> None:
    p = pod()
    p["metadata"]["name"] = "web.v1"
    assert create(PodStrategy(), p) == []
    p["metadata"]["name"] = "Web"
    assert create(PodStrategy(), p)[0].startswith('metadata.name: Invalid value: "Web": a '
                                                  "lowercase RFC 1123 subdomain")


# =====================================================================================
# Pod updates
# =====================================================================================


def _running_pod(**spec: Any) -> Obj:
    p = created(PodStrategy(), pod(**spec))
    p["spec"]["nodeName"] = "node-1"
    return p


def test_pod_image_deadline_tolerations_may_change() -> None:
    old = _running_pod(activeDeadlineSeconds=100,
                       tolerations=[{"key": "a", "operator": "Exists", "effect": "NoExecute",
                                     "tolerationSeconds": 60}])
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.27"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"][0]["tolerationSeconds"] = 30
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert update(PodStrategy(), new, old) == []


def test_pod_spec_changes_are_forbidden_with_kubernetes_message() -> None:
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 81}]
    causes = update(PodStrategy(), new, old)
    assert len(causes) == 1
    expected = ("spec: Forbidden: pod updates may not change fields other than "
                "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if "
                "it was previously negative)\n")
    assert causes[0].startswith(expected)
    assert "spec.containers[0].ports" in causes[0]
    assert ",".join(UPDATABLE_POD_SPEC_FIELDS) in causes[0]


def test_pod_update_may_not_add_containers_or_clear_image() -> None:
    old = _running_pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "b", "image": "x"})
    assert update(PodStrategy(), new, old) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"]
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = ""
    assert "spec.containers[0].image: Required value" in update(PodStrategy(), new, old)


def test_pod_update_deadline_tolerations_and_grace_rules() -> None:
    old = _running_pod(activeDeadlineSeconds=100,
                       tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 200
    assert update(PodStrategy(), new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to "
        "previous value"]
    new = copy.deepcopy(old)
    del new["spec"]["activeDeadlineSeconds"]
    new["spec"]["tolerations"] = []
    assert update(PodStrategy(), new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive "
        "integer to nil value",
        "spec.tolerations: Forbidden: existing toleration can not be modified except its "
        "tolerationSeconds"]
    negative = _running_pod(terminationGracePeriodSeconds=-1)
    raised = copy.deepcopy(negative)
    raised["spec"]["terminationGracePeriodSeconds"] = 1
    assert update(PodStrategy(), raised, negative) == []
    changed = copy.deepcopy(old)
    changed["spec"]["terminationGracePeriodSeconds"] = 5
    assert update(PodStrategy(), changed, old)[0].startswith("spec: Forbidden: pod updates")


def test_pod_update_keeps_status() -> None:
    old = _running_pod()
    old["status"]["phase"] = "Running"
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Failed"}
    assert update(PodStrategy(), new, old) == []
    assert new["status"]["phase"] == "Running"


# =====================================================================================
# Pod deletion and tables
# =====================================================================================


def test_pod_deletion_grace_period() -> None:
    strategy = PodStrategy()
    unbound = created(strategy, pod())
    assert strategy.deletion_grace_period(unbound, None) == 0
    assert strategy.deletion_grace_period(unbound, 20) == 0
    bound = _running_pod(terminationGracePeriodSeconds=45)
    assert strategy.deletion_grace_period(bound, None) == 45
    assert strategy.deletion_grace_period(bound, 5) == 5
    assert strategy.deletion_grace_period(bound, 0) == 0
    assert strategy.deletion_grace_period(bound, -3) == 1
    default = _running_pod()
    assert strategy.deletion_grace_period(default, None) == 30
    for phase in ("Succeeded", "Failed"):
        done = copy.deepcopy(bound)
        done["status"]["phase"] = phase
        assert strategy.deletion_grace_period(done, None) == 0
    running = copy.deepcopy(bound)
    running["status"]["phase"] = "Running"
    assert strategy.deletion_grace_period(running, None) == 45


def cells(strategy: Strategy, obj: Obj, *, wide: bool = False) -> dict[str, Any]:
    return {c.name: c.value(obj) for c in strategy.table_columns()
            if wide or c.priority == 0}


def test_pod_table_columns() -> None:
    columns = PodStrategy().table_columns()
    assert [c.name for c in columns] == ["Ready", "Status", "Restarts", "Age", "IP", "Node",
                                         "Nominated Node", "Readiness Gates"]
    assert [c.priority for c in columns] == [0, 0, 0, 0, 1, 1, 1, 1]


def _two_container_pod(statuses: list[Obj], **extra: Any) -> Obj:
    p = pod({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    p["metadata"]["creationTimestamp"] = ago(300)
    p["status"] = {"phase": "Running", "containerStatuses": statuses, **extra}
    return p


def test_pod_ready_and_running() -> None:
    p = _two_container_pod([
        {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": False, "restartCount": 0, "state": {"running": {}}}],
        podIP="10.0.0.5")
    p["spec"]["nodeName"] = "node-1"
    assert cells(PodStrategy(), p, wide=True) == {
        "Ready": "1/2", "Status": "Running", "Restarts": "0", "Age": "5m", "IP": "10.0.0.5",
        "Node": "node-1", "Nominated Node": "<none>", "Readiness Gates": "<none>"}


def test_pod_status_shows_waiting_reason_and_restarts_ago() -> None:
    p = _two_container_pod([
        {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": False, "restartCount": 4,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}}])
    assert cells(PodStrategy(), p)["Status"] == "CrashLoopBackOff"
    assert cells(PodStrategy(), p)["Restarts"] == "4 (90s ago)"
    assert cells(PodStrategy(), p)["Ready"] == "1/2"


def test_pod_status_terminated_reasons() -> None:
    completed = _two_container_pod([
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "state": {"terminated": {"exitCode": 2}}}])
    assert cells(PodStrategy(), completed)["Status"] == "Completed"
    killed = _two_container_pod([{"name": "a", "state": {"terminated": {"exitCode": 137,
                                                                         "signal": 9}}}])
    assert cells(PodStrategy(), killed)["Status"] == "Signal:9"
    exited = _two_container_pod([{"name": "a", "state": {"terminated": {"exitCode": 3}}}])
    assert cells(PodStrategy(), exited)["Status"] == "ExitCode:3"


def test_pod_status_init_containers() -> None:
    p = pod(initContainers=[{"name": "one", "image": "x"}, {"name": "two", "image": "x"}])
    p["status"] = {"phase": "Pending", "initContainerStatuses": [
        {"name": "one", "state": {"terminated": {"exitCode": 0}}},
        {"name": "two", "state": {"running": {}}}]}
    assert cells(PodStrategy(), p)["Status"] == "Init:1/2"
    p["status"]["initContainerStatuses"][1]["state"] = {
        "waiting": {"reason": "ImagePullBackOff"}}
    assert cells(PodStrategy(), p)["Status"] == "Init:ImagePullBackOff"
    p["status"]["initContainerStatuses"][1]["state"] = {"terminated": {"exitCode": 1,
                                                                       "reason": "Error"}}
    assert cells(PodStrategy(), p)["Status"] == "Init:Error"


def test_pod_status_reason_terminating_and_gates() -> None:
    p = _two_container_pod([{"name": "a", "ready": True, "state": {"running": {}}}])
    p["metadata"]["deletionTimestamp"] = ago(-30)
    assert cells(PodStrategy(), p)["Status"] == "Terminating"
    p["status"]["phase"] = "Succeeded"
    p["status"]["containerStatuses"] = []
    assert cells(PodStrategy(), p)["Status"] == "Succeeded"
    evicted = pod()
    evicted["status"] = {"phase": "Failed", "reason": "Evicted"}
    assert cells(PodStrategy(), evicted)["Status"] == "Evicted"
    gated = created(PodStrategy(), pod(schedulingGates=[{"name": "x"}]))
    assert cells(PodStrategy(), gated)["Status"] == "SchedulingGated"
    gates = pod(readinessGates=[{"conditionType": "example.com/ok"}, {"conditionType": "b"}])
    gates["status"] = {"conditions": [{"type": "example.com/ok", "status": "True"}]}
    assert cells(PodStrategy(), gates, wide=True)["Readiness Gates"] == "1/2"


def test_sidecar_counts_towards_ready() -> None:
    p = pod(initContainers=[{"name": "proxy", "image": "x", "restartPolicy": "Always"}])
    p["status"] = {"phase": "Running", "initContainerStatuses": [
        {"name": "proxy", "started": True, "ready": True, "state": {"running": {}}}],
        "containerStatuses": [{"name": "app", "ready": True, "state": {"running": {}}}]}
    assert cells(PodStrategy(), p)["Ready"] == "2/2"


@pytest.mark.parametrize(("seconds", "text"), [
    (-1, "0s"), (-5, "<invalid>"), (0, "0s"), (59, "59s"), (119, "119s"), (192, "3m12s"),
    (300, "5m"), (900, "15m"), (3 * 3600 + 240, "3h4m"), (10 * 3600, "10h"),
    (2 * 86400 + 3 * 3600, "2d3h"), (9 * 86400, "9d"), (800 * 86400, "2y70d"),
    (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_column_uses_creation_timestamp() -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": ago(7)}}
    assert _common.AGE.value(obj) == "7s"
    assert _common.AGE.value({"metadata": {}}) == "<unknown>"


# =====================================================================================
# ReplicaSet and Deployment
# =====================================================================================


def test_deployment_defaults() -> None:
    d = created(DeploymentStrategy(), deployment())
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    template = spec["template"]["spec"]
    assert template["restartPolicy"] == "Always" and template["dnsPolicy"] == "ClusterFirst"
    assert template["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    for pod_only in ("enableServiceLinks", "priority", "preemptionPolicy"):
        assert pod_only not in template
    assert d["status"] == {}
    recreate = created(DeploymentStrategy(), deployment(strategy={"type": "Recreate"}))
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}


def test_template_requests_are_not_defaulted_from_limits() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    created(DeploymentStrategy(), d)
    assert d["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1"}}


def test_replicaset_defaults_and_status() -> None:
    rs = deployment()
    rs["kind"] = "ReplicaSet"
    created(ReplicaSetStrategy(), rs)
    assert rs["spec"]["replicas"] == 1
    assert "strategy" not in rs["spec"]
    assert rs["status"] == {"replicas": 0}


def test_workload_selector_required_and_matching() -> None:
    d = deployment()
    del d["spec"]["selector"]
    assert create(DeploymentStrategy(), d) == [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not '
        "match template `labels`"]
    rs = deployment(selector={"matchLabels": {"app": "api"}})
    assert create(ReplicaSetStrategy(), rs) == [
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not '
        "match template `labels`"]
    assert create(DeploymentStrategy(), deployment(selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"]


def test_workload_selector_expressions() -> None:
    ok = deployment(selector={"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web", "api"]}]})
    assert create(DeploymentStrategy(), ok) == []
    bad = deployment(selector={"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In"}, {"key": "x", "operator": "Near"}]})
    causes = create(DeploymentStrategy(), bad)
    assert causes[:2] == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'",
        'spec.selector.matchExpressions[1].operator: Invalid value: "Near": not a valid '
        "selector operator"]
    assert causes[2].startswith("spec.selector: Invalid value: ")
    assert causes[2].endswith(": invalid label selector")
    assert not any("does not match" in c for c in causes)


def test_workload_replicas_template_and_strategy_checks() -> None:
    d = deployment(replicas=-1, progressDeadlineSeconds=5, minReadySeconds=10,
                   strategy={"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    d["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert create(DeploymentStrategy(), d) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.template.spec.containers[0].image: Required value",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
        '"Always"',
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when '
        "`maxSurge` is 0",
        "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds"]
    recreate = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    assert create(DeploymentStrategy(), recreate) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
        "'Recreate'"]
    too_much = deployment(strategy={"rollingUpdate": {"maxUnavailable": "120%"}})
    assert create(DeploymentStrategy(), too_much) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "120%": must not be '
        "greater than 100%"]
    word = deployment(strategy={"rollingUpdate": {"maxSurge": "lots"}})
    assert create(DeploymentStrategy(), word)[0].startswith(
        'spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": a valid percent string')


def test_template_labels_are_validated_under_template_path() -> None:
    d = deployment(selector={"matchLabels": {"app": "web"}})
    d["spec"]["template"]["metadata"]["labels"]["bad key"] = "x"
    causes = create(DeploymentStrategy(), d)
    assert any(c.startswith('spec.template.labels: Invalid value: "bad key"') for c in causes)


@pytest.mark.parametrize("strategy", [DeploymentStrategy(), ReplicaSetStrategy()])
def test_workload_selector_is_immutable(strategy: Strategy) -> None:
    old = created(strategy, deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert update(strategy, new, old) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is '
        "immutable"]
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    assert update(strategy, scaled, old) == []


def test_deployment_annotation_change_is_a_new_generation() -> None:
    strategy = DeploymentStrategy()
    old = created(strategy, deployment())
    old["metadata"]["generation"] = 3
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2"}
    update(strategy, new, old)
    assert new["metadata"]["generation"] == 4


def test_workload_status_update_checks() -> None:
    strategy = ReplicaSetStrategy()
    old = created(strategy, deployment())
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 2, "readyReplicas": 3, "availableReplicas": 3}
    assert [str(c) for c in strategy.validate_status_update(new, old)] == [
        "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas"]
    new["status"] = {"replicas": 3, "readyReplicas": 1, "availableReplicas": 2}
    assert [str(c) for c in DeploymentStrategy().validate_status_update(new, old)] == [
        "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"]


def test_workload_tables() -> None:
    d = created(DeploymentStrategy(), deployment(replicas=3))
    d["metadata"]["creationTimestamp"] = ago(3600 * 30)
    d["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    assert cells(DeploymentStrategy(), d, wide=True) == {
        "Ready": "2/3", "Up-to-date": 3, "Available": 2, "Age": "30h", "Containers": "app",
        "Images": "nginx:1.25", "Selector": "app=web"}
    rs = created(ReplicaSetStrategy(), deployment(replicas=2))
    rs["status"] = {"replicas": 2, "readyReplicas": 1}
    assert cells(ReplicaSetStrategy(), rs) == {"Desired": 2, "Current": 2, "Ready": 1,
                                               "Age": "<unknown>"}


# =====================================================================================
# Service
# =====================================================================================


def test_service_defaults() -> None:
    s = created(ServiceStrategy(), service(ports=[{"port": 80, "targetPort": "http"},
                                                  {"name": "b", "port": 443}][1:]))
    spec = s["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"name": "b", "port": 443, "protocol": "TCP", "targetPort": 443}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert spec["ipFamilyPolicy"] == "SingleStack" and spec["ipFamilies"] == ["IPv4"]
    assert "clusterIP" not in spec
    assert s["status"] == {"loadBalancer": {}}


def test_service_defaults_by_type() -> None:
    node_port = created(ServiceStrategy(), service(type="NodePort"))
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    lb = created(ServiceStrategy(), service(type="LoadBalancer"))
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    headless = created(ServiceStrategy(), service(clusterIP="None", selector=None))
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    external = created(ServiceStrategy(), service(type="ExternalName",
                                                  externalName="db.example.com", ports=[]))
    for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
        assert key not in external["spec"]
    sticky = created(ServiceStrategy(), service(sessionAffinity="ClientIP"))
    assert sticky["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    v6 = created(ServiceStrategy(), service(clusterIP="fd00::10"))
    assert v6["spec"]["ipFamilies"] == ["IPv6"]


def test_service_named_target_port_kept() -> None:
    s = created(ServiceStrategy(), service(ports=[{"port": 80, "targetPort": "http"}]))
    assert s["spec"]["ports"][0]["targetPort"] == "http"


def test_service_port_checks() -> None:
    s = service(ports=[{"port": 80}, {"name": "web", "port": 0, "targetPort": "a--b"},
                       {"name": "web", "port": 8080, "targetPort": 70000}])
    assert create(ServiceStrategy(), s) == [
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].targetPort: Invalid value: "a--b": must not contain consecutive hyphens',
        'spec.ports[2].name: Duplicate value: "web"',
        "spec.ports[2].targetPort: Invalid value: 70000: must be between 1 and 65535, "
        "inclusive"]


def test_service_ports_required_and_type_values() -> None:
    assert create(ServiceStrategy(), service(ports=[])) == ["spec.ports: Required value"]
    assert create(ServiceStrategy(), service(ports=[], clusterIP="None")) == []
    causes = create(ServiceStrategy(), service(type="Magic"))
    assert causes == ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", '
                      '"ExternalName", "LoadBalancer", "NodePort"']
    assert create(ServiceStrategy(), service(ports=[{"port": 80, "nodePort": 30080}])) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    assert create(ServiceStrategy(), service(type="ExternalName", ports=[])) == [
        "spec.externalName: Required value"]


def test_service_cluster_ip_checks() -> None:
    assert create(ServiceStrategy(), service(clusterIP="10.0.0.300")) == [
        'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, '
        "(e.g. 10.9.8.7 or 2001:db8::ffff)"]
    assert create(ServiceStrategy(), service(clusterIP="10.0.0.1",
                                             clusterIPs=["10.0.0.2"])) == [
        'spec.clusterIPs: Invalid value: ["10.0.0.2"]: first value must match `clusterIP`']
    assert create(ServiceStrategy(), service(type="NodePort", clusterIP="None")) == [
        "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort "
        "services"]


def test_service_name_is_a_dns1035_label() -> None:
    s = service()
    s["metadata"]["name"] = "1web"
    causes = create(ServiceStrategy(), s)
    assert causes[0].startswith('metadata.name: Invalid value: "1web": a DNS-1035 label must')


def test_service_cluster_ip_is_immutable_once_set() -> None:
    old = created(ServiceStrategy(), service())
    old["spec"]["clusterIP"] = "10.96.0.10"
    old["spec"]["clusterIPs"] = ["10.96.0.10"]
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.20"
    assert update(ServiceStrategy(), new, old) == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.20"]: may not change once set']
    omitted = service(ports=[{"port": 81}])
    assert update(ServiceStrategy(), omitted, old) == []
    assert omitted["spec"]["clusterIP"] == "10.96.0.10"
    assert omitted["spec"]["clusterIPs"] == ["10.96.0.10"]


def test_service_update_keeps_node_ports_and_drops_them_with_the_type() -> None:
    old = created(ServiceStrategy(), service(type="NodePort"))
    old["spec"]["ports"][0]["nodePort"] = 30080
    again = service(type="NodePort")
    assert update(ServiceStrategy(), again, old) == []
    assert again["spec"]["ports"][0]["nodePort"] == 30080
    to_cluster_ip = copy.deepcopy(old)
    to_cluster_ip["spec"]["type"] = "ClusterIP"
    assert update(ServiceStrategy(), to_cluster_ip, old) == []
    assert "nodePort" not in to_cluster_ip["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in to_cluster_ip["spec"]


def test_service_table() -> None:
    s = created(ServiceStrategy(), service(type="NodePort", ports=[
        {"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53,
                                                          "protocol": "UDP"}]))
    s["spec"]["clusterIP"] = "10.96.0.10"
    s["spec"]["clusterIPs"] = ["10.96.0.10"]
    assert cells(ServiceStrategy(), s, wide=True) == {
        "Type": "NodePort", "Cluster-IP": "10.96.0.10", "External-IP": "<none>",
        "Port(s)": "80:30080/TCP,53/UDP", "Age": "<unknown>", "Selector": "app=web"}
    lb = created(ServiceStrategy(), service(type="LoadBalancer", selector={}))
    assert cells(ServiceStrategy(), lb, wide=True)["External-IP"] == "<pending>"
    assert cells(ServiceStrategy(), lb, wide=True)["Selector"] == "<none>"
    assert cells(ServiceStrategy(), lb)["Cluster-IP"] == "<none>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    assert cells(ServiceStrategy(), lb)["External-IP"] == "203.0.113.7"
    headless = created(ServiceStrategy(), service(clusterIP="None", ports=[]))
    assert cells(ServiceStrategy(), headless)["Port(s)"] == "<none>"
    assert cells(ServiceStrategy(), headless)["Cluster-IP"] == "None"


# =====================================================================================
# Namespace and Node
# =====================================================================================


def test_namespace_create_defaults() -> None:
    ns = created(NamespaceStrategy(), {"metadata": {"name": "team-a"}}, namespaced=False)
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_namespace_name_and_finalizers() -> None:
    causes = create(NamespaceStrategy(), {"metadata": {"name": "team.a"}}, namespaced=False)
    assert causes[0].startswith('metadata.name: Invalid value: "team.a": a lowercase RFC 1123 '
                                "label")
    bad = {"metadata": {"name": "x"}, "spec": {"finalizers": ["custom"]}}
    assert create(NamespaceStrategy(), bad, namespaced=False) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name '
        "nor is it fully qualified"]


def test_namespace_update_keeps_spec_finalizers_and_status() -> None:
    old = created(NamespaceStrategy(), {"metadata": {"name": "x"}}, namespaced=False)
    new = {"metadata": {"name": "x", "labels": {"team": "a"}}, "spec": {"finalizers": []}}
    assert update(NamespaceStrategy(), new, old, namespaced=False) == []
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["status"] == {"phase": "Active"}
    assert new["metadata"]["labels"]["kubernetes.io/metadata.name"] == "x"


def test_namespace_deletion() -> None:
    strategy = NamespaceStrategy()
    ns = created(strategy, {"metadata": {"name": "x"}}, namespaced=False)
    assert strategy.has_pending_finalizers(ns)
    assert strategy.deletion_grace_period(ns, None) == 0
    strategy.prepare_for_delete(ns)
    assert ns["status"]["phase"] == "Terminating"
    ns["spec"]["finalizers"] = []
    assert not strategy.has_pending_finalizers(ns)
    ns["metadata"]["finalizers"] = ["example.com/hold"]
    assert strategy.has_pending_finalizers(ns)
    assert cells(strategy, ns) == {"Status": "Terminating", "Age": "<unknown>"}


def node(**status: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "creationTimestamp": ago(86400 * 3),
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/worker": ""}},
            "spec": {}, "status": status}


def test_node_create_keeps_status_and_defaults_allocatable() -> None:
    n = created(NodeStrategy(), node(capacity={"cpu": "4", "pods": "110"}), namespaced=False)
    assert n["status"]["allocatable"] == {"cpu": "4", "pods": "110"}
    assert n["status"]["capacity"] == {"cpu": "4", "pods": "110"}


def test_node_table() -> None:
    n = node(conditions=[{"type": "Ready", "status": "True"}],
             nodeInfo={"kubeletVersion": "v1.32.0", "osImage": "Debian 12"},
             addresses=[{"type": "Hostname", "address": "node-1"},
                        {"type": "InternalIP", "address": "192.168.1.10"}])
    assert cells(NodeStrategy(), n, wide=True) == {
        "Status": "Ready", "Roles": "control-plane,worker", "Age": "3d", "Version": "v1.32.0",
        "Internal-IP": "192.168.1.10", "External-IP": "<none>", "OS-Image": "Debian 12",
        "Kernel-Version": "<unknown>", "Container-Runtime": "<unknown>"}
    n["spec"]["unschedulable"] = True
    n["status"]["conditions"][0]["status"] = "Unknown"
    n["metadata"]["labels"] = {}
    assert cells(NodeStrategy(), n)["Status"] == "NotReady,SchedulingDisabled"
    assert cells(NodeStrategy(), n)["Roles"] == "<none>"
    assert cells(NodeStrategy(), node())["Status"] == "Unknown"


def test_node_taints_and_cidrs() -> None:
    n = node()
    n["spec"] = {"taints": [{"key": "a", "effect": "Sometimes"}, {"key": "b"},
                            {"key": "c", "effect": "NoSchedule"},
                            {"key": "c", "effect": "NoSchedule", "value": "x"}],
                 "podCIDR": "10.244.0.0/33"}
    causes = create(NodeStrategy(), n, namespaced=False)
    assert causes[:3] == [
        'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"',
        "metadata.taints[1].effect: Required value",
        'metadata.taints[3]: Duplicate value: {"key":"c","value":"x","effect":"NoSchedule"}: '
        "taints must be unique by key and effect pair"]
    assert causes[3] == ('spec.podCIDRs[0]: Invalid value: "10.244.0.0/33": must be a valid '
                         "CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")


def test_node_pod_cidr_set_once() -> None:
    old = created(NodeStrategy(), node(), namespaced=False)
    first = copy.deepcopy(old)
    first["spec"]["podCIDR"] = "10.244.1.0/24"
    assert update(NodeStrategy(), first, old, namespaced=False) == []
    assert first["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    second = copy.deepcopy(first)
    second["spec"] = {"podCIDR": "10.244.2.0/24"}
    assert update(NodeStrategy(), second, first, namespaced=False) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']


# =====================================================================================
# ConfigMap, Secret, ServiceAccount
# =====================================================================================


def configmap(**body: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"}, **body}


def test_configmap_keys() -> None:
    causes = create(ConfigMapStrategy(), configmap(data={"ok.key": "1", "bad/key": "2",
                                                         "..x": "3"}))
    assert causes == [
        "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of "
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        "data[..x]: Invalid value: \"..x\": must not start with '..'"]
    both = configmap(data={"a": "x"}, binaryData={"a": "eA=="})
    assert create(ConfigMapStrategy(), both) == [
        'data[a]: Invalid value: "a": duplicate of key present in binaryData']
    assert create(ConfigMapStrategy(), configmap(binaryData={"b": "not base64!"}))[0] \
        .startswith('binaryData[b]: Invalid value: "<binary data>": illegal base64 data')


def test_configmap_size_limit() -> None:
    big = configmap(data={"a": "x" * (1024 * 1024 + 1)})
    assert create(ConfigMapStrategy(), big) == [
        "[]: Too long: may not be more than 1048576 bytes"]


def test_immutable_configmap() -> None:
    old = created(ConfigMapStrategy(), configmap(data={"a": "1"}, immutable=True))
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    new["immutable"] = False
    assert update(ConfigMapStrategy(), new, old) == [
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set"]
    relabel = copy.deepcopy(old)
    relabel["metadata"]["labels"] = {"a": "b"}
    assert update(ConfigMapStrategy(), relabel, old) == []
    mutable = created(ConfigMapStrategy(), configmap(data={"a": "1"}))
    changed = copy.deepcopy(mutable)
    changed["data"] = {"b": "2"}
    assert update(ConfigMapStrategy(), changed, mutable) == []


def secret(**body: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"}, **body}


def test_secret_defaults_and_string_data() -> None:
    s = created(SecretStrategy(), secret(data={"a": "YQ=="}, stringData={"b": "hello"}))
    assert s["type"] == "Opaque"
    assert s["data"] == {"a": "YQ==", "b": "aGVsbG8="}
    assert "stringData" not in s


def test_secret_validation() -> None:
    assert create(SecretStrategy(), secret(data={"a": "!!!"})) == [
        'data[a]: Invalid value: "<secret contents redacted>": illegal base64 data at input '
        "byte 0"]
    assert create(SecretStrategy(), secret(type="kubernetes.io/tls", data={"tls.crt": ""})) == [
        "data[tls.key]: Required value"]
    assert create(SecretStrategy(), secret(data={"a b": "eA=="}))[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key')
    token = secret(type="kubernetes.io/service-account-token")
    assert create(SecretStrategy(), token) == [
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"]


def test_secret_type_and_immutable_data() -> None:
    old = created(SecretStrategy(), secret(data={"a": "YQ=="}))
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/basic-auth"
    new["data"] = {"username": "dQ=="}
    assert update(SecretStrategy(), new, old) == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable']
    frozen = created(SecretStrategy(), secret(data={"a": "YQ=="}, immutable=True))
    changed = copy.deepcopy(frozen)
    changed["stringData"] = {"a": "b"}
    assert update(SecretStrategy(), changed, frozen) == [
        "data: Forbidden: field is immutable when `immutable` is set"]


def test_configmap_secret_and_serviceaccount_tables() -> None:
    cm = created(ConfigMapStrategy(), configmap(data={"a": "1", "b": "2"}, binaryData={"c": ""}))
    assert cells(ConfigMapStrategy(), cm) == {"Data": 3, "Age": "<unknown>"}
    s = created(SecretStrategy(), secret(data={"a": "YQ=="}))
    assert cells(SecretStrategy(), s) == {"Type": "Opaque", "Data": 1, "Age": "<unknown>"}
    sa = created(ServiceAccountStrategy(), {"metadata": {"name": "default",
                                                         "namespace": "default"}})
    assert cells(ServiceAccountStrategy(), sa) == {"Secrets": 0, "Age": "<unknown>"}


# =====================================================================================
# Endpoints, EndpointSlice, Lease, Event
# =====================================================================================


def test_endpoints_defaults_validation_and_table() -> None:
    ep = {"metadata": {"name": "web", "namespace": "default"}, "subsets": [
        {"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)],
         "ports": [{"port": 80}]}]}
    created(EndpointsStrategy(), ep)
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert cells(EndpointsStrategy(), ep)["Endpoints"] == \
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
    assert cells(EndpointsStrategy(), {"metadata": {}})["Endpoints"] == "<none>"
    bad = {"metadata": {"name": "web", "namespace": "default"}, "subsets": [
        {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}, {"port": 81}]}, {}]}
    assert create(EndpointsStrategy(), bad) == [
        'subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback '
        "range (127.0.0.0/8, ::1/128)",
        "subsets[0].ports[0].name: Required value",
        "subsets[0].ports[1].name: Required value",
        "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`"]


def slice_(**body: Any) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "default"}, **body}


def test_endpointslice_defaults_and_validation() -> None:
    s = created(EndpointSliceStrategy(), slice_(addressType="IPv4", ports=[{"port": 80}],
                                                endpoints=[{"addresses": ["10.0.0.1"]}]))
    assert s["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    assert create(EndpointSliceStrategy(), slice_()) == ["addressType: Required value"]
    assert create(EndpointSliceStrategy(), slice_(addressType="IPX")) == [
        'addressType: Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"']
    bad = slice_(addressType="IPv4", endpoints=[{"addresses": ["fd00::1"]}, {"addresses": []}])
    assert create(EndpointSliceStrategy(), bad) == [
        'endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
        "endpoints[1].addresses: Required value: must contain at least 1 address"]


def test_endpointslice_address_type_immutable_and_table() -> None:
    old = created(EndpointSliceStrategy(), slice_(addressType="IPv4", endpoints=[
        {"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)],
        ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}]))
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    new["endpoints"] = []
    assert update(EndpointSliceStrategy(), new, old) == [
        'addressType: Invalid value: "IPv6": field is immutable']
    assert cells(EndpointSliceStrategy(), old) == {
        "AddressType": "IPv4", "Ports": "80,443",
        "Endpoints": "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "Age": "<unknown>"}
    empty = created(EndpointSliceStrategy(), slice_(addressType="IPv4"))
    assert cells(EndpointSliceStrategy(), empty)["Ports"] == "<unset>"


def test_lease_validation_and_table() -> None:
    lease = {"metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
             "spec": {"holderIdentity": "node-1_abc", "leaseDurationSeconds": 15,
                      "renewTime": "2025-01-10T11:59:58.123456Z"}}
    created(LeaseStrategy(), lease)
    assert cells(LeaseStrategy(), lease) == {"Holder": "node-1_abc", "Age": "<unknown>"}
    bad = {"metadata": {"name": "x", "namespace": "default"},
           "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1,
                    "preferredHolder": "a"}}
    assert create(LeaseStrategy(), bad) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]


def event(**body: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
            "reason": "Scheduled", "message": "Successfully assigned default/web to node-1 ",
            "type": "Normal", "source": {"component": "default-scheduler"}, **body}


def test_event_defaults_and_namespace_check() -> None:
    e = created(EventStrategy(), event())
    assert e["reportingComponent"] == "" and e["eventTime"] is None
    wrong = event()
    wrong["involvedObject"]["namespace"] = "other"
    assert create(EventStrategy(), wrong) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    cluster_scoped = event(involvedObject={"kind": "Node", "name": "node-1"})
    assert create(EventStrategy(), cluster_scoped) == []
    new_style = event(eventTime="2025-01-10T11:59:00.000000Z")
    assert create(EventStrategy(), new_style) == [
        "reportingComponent: Required value",
        'reportingComponent: Invalid value: "": name part must be non-empty',
        "reportingInstance: Required value", "action: Required value"]
    reported = event(eventTime="2025-01-10T11:59:00.000000Z", reportingComponent="kubelet",
                     reportingInstance="node-1", action="Binding")
    assert create(EventStrategy(), reported) == []


def test_event_table() -> None:
    e = created(EventStrategy(), event(firstTimestamp=ago(600), lastTimestamp=ago(45),
                                       count=3))
    assert cells(EventStrategy(), e, wide=True) == {
        "Last Seen": "45s", "Type": "Normal", "Reason": "Scheduled", "Object": "pod/web",
        "Subobject": "", "Source": "default-scheduler",
        "Message": "Successfully assigned default/web to node-1", "First Seen": "10m",
        "Count": 3, "Name": e["metadata"]["name"]}
    series = created(EventStrategy(), event(eventTime="2025-01-10T11:58:00.000000Z",
                                            series={"count": 7, "lastObservedTime": ago(5)},
                                            reportingComponent="kubelet",
                                            reportingInstance="node-1", action="Pulling"))
    assert cells(EventStrategy(), series, wide=True)["Last Seen"] == "5s"
    assert cells(EventStrategy(), series, wide=True)["First Seen"] == "2m"
    assert cells(EventStrategy(), series, wide=True)["Count"] == 7
