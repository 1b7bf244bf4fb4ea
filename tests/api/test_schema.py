"""The schema checker: type errors with paths, unknown fields and pruning, normalisation,
the strategic-merge-patch metadata protocol and introspection."""

from __future__ import annotations

import copy
import typing
from typing import Any

import attrs
import pytest

from kubeling.api.objects import all_kinds, apps_v1, core_v1, meta
from kubeling.api.schema import (
    LIST,
    MAP,
    OBJECT,
    SCALAR,
    UNKNOWN,
    UNKNOWN_SCHEMA,
    CheckResult,
    schema_for,
)

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web"},
        "creationTimestamp": "2024-05-01T12:00:00Z",
        "generation": 1,
    },
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx",
                "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "A", "value": "1"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "readinessProbe": {"tcpSocket": {"port": 80}},
            }
        ],
        "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
        "nodeSelector": {"disk": "ssd"},
    },
}


def check(body: dict, model: type = core_v1.Pod, unknown: str = "warn") -> CheckResult:
    return schema_for(model).check(body, unknown=unknown)


def pod_with(**spec_changes: Any) -> dict:
    body = copy.deepcopy(POD)
    body["spec"].update(spec_changes)
    return body


# ---------------------------------------------------------------------------------------
# valid input
# ---------------------------------------------------------------------------------------


def test_valid_pod_passes_unchanged() -> None:
    body = copy.deepcopy(POD)
    result = check(body)
    assert result.ok and result.errors == () and result.unknown == ()
    assert body == POD


def test_null_means_absent() -> None:
    body = {"metadata": {"name": None, "labels": None}, "spec": {"containers": [None]}}
    assert check(body).ok


def test_free_form_fields_accept_anything() -> None:
    body = {
        "metadata": {
            "managedFields": [{"fieldsV1": {"f:x": {".": {}}, "anything": [1, True, None]}}]
        },
        "data": [1, 2],
    }
    assert check(body, apps_v1.ControllerRevision).ok
    assert check({"data": "text"}, apps_v1.ControllerRevision).ok


@pytest.mark.parametrize("port", [8080, "http"])
def test_int_or_string_accepts_both(port: Any) -> None:
    body = pod_with(containers=[{"name": "c", "readinessProbe": {"httpGet": {"port": port}}}])
    assert check(body).ok


@pytest.mark.parametrize("bad", [True, 1.5, [], {}])
def test_int_or_string_rejects_others(bad: Any) -> None:
    body = pod_with(containers=[{"name": "c", "readinessProbe": {"httpGet": {"port": bad}}}])
    result = check(body)
    assert [p for p, _ in result.errors] == ["spec.containers[0].readinessProbe.httpGet.port"]
    assert "IntOrString" in result.errors[0][1]


@attrs.frozen(kw_only=True)
class Tree:
    """A plugin-style model: a float field and a recursive list."""

    weight: float | None = attrs.field(default=None, metadata={"json": "weight"})
    children: list[Tree] | None = attrs.field(default=None, metadata={"json": "children"})


def test_plugin_models_doubles_and_recursion() -> None:
    tree = {"weight": 1, "children": [{"weight": 0.5, "children": [{"weight": "x", "y": 1}]}]}
    result = schema_for(Tree).check(tree)
    assert result.errors == (
        (
            "children[0].children[0].weight",
            'cannot unmarshal string "x" into field of type float64',
        ),
    )
    assert result.unknown == ("children[0].children[0].y",)
    assert schema_for(Tree).field("children").item().field("children").item().model is Tree


# ---------------------------------------------------------------------------------------
# type errors
# ---------------------------------------------------------------------------------------


def test_string_where_int_expected_names_the_full_path() -> None:
    body = pod_with(containers=[{"name": "c", "ports": [{"containerPort": "80"}]}])
    result = check(body)
    assert not result.ok
    assert result.errors == (
        (
            "spec.containers[0].ports[0].containerPort",
            'cannot unmarshal string "80" into field of type int32',
        ),
    )
    assert result.messages() == [
        'spec.containers[0].ports[0].containerPort: cannot unmarshal string "80" into field '
        "of type int32"
    ]


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"containers": {}}, "spec.containers", "cannot unmarshal object into field of type []"),
        ({"nodeSelector": []}, "spec.nodeSelector", "array into field of type map[string]string"),
        ({"nodeSelector": {"a": 1}}, "spec.nodeSelector[a]", "number 1 into field of type string"),
        ({"hostNetwork": "yes"}, "spec.hostNetwork", 'string "yes" into field of type bool'),
        ({"priority": True}, "spec.priority", "bool true into field of type int32"),
        ({"priority": 1.5}, "spec.priority", "number 1.5 into field of type int32"),
        ({"priority": 2**31}, "spec.priority", "number 2147483648 into field of type int32"),
        ({"activeDeadlineSeconds": 2**63}, "spec.activeDeadlineSeconds", "type int64"),
        ({"affinity": "near"}, "spec.affinity", 'string "near" into field of type Affinity'),
        ({"containers": ["c"]}, "spec.containers[0]", 'string "c" into field of type Container'),
        (
            {"securityContext": {"supplementalGroups": [1, "2"]}},
            "spec.securityContext.supplementalGroups[1]",
            "into field of type int64",
        ),
        (
            {"containers": [{"name": "c", "args": ["a", 1]}]},
            "spec.containers[0].args[1]",
            "number 1 into field of type string",
        ),
    ],
)
def test_type_errors(spec: dict, path: str, message: str) -> None:
    result = check(pod_with(**spec))
    assert not result.ok
    assert len(result.errors) == 1, result.errors
    assert result.errors[0][0] == path
    assert message in result.errors[0][1]


def test_int32_bounds_are_inclusive() -> None:
    assert check(pod_with(priority=2**31 - 1)).ok
    assert check(pod_with(priority=-(2**31))).ok


def test_several_errors_are_all_reported() -> None:
    body = {"metadata": {"name": 1, "labels": "x"}, "spec": {"hostPID": 0, "containers": []}}
    paths = sorted(p for p, _ in check(body).errors)
    assert paths == ["metadata.labels", "metadata.name", "spec.hostPID"]


def test_top_level_must_be_an_object() -> None:
    result = check([])  # type: ignore[arg-type]
    assert result.errors == (("", "cannot unmarshal array into value of type Pod"),)


def test_time_format() -> None:
    ok = {"metadata": {"creationTimestamp": "2024-05-01T12:00:00.123456+02:00"}}
    assert check(ok).ok
    result = check({"metadata": {"creationTimestamp": "yesterday"}})
    assert result.errors == (
        ("metadata.creationTimestamp", 'cannot parse "yesterday" as an RFC 3339 time'),
    )


def test_base64_format() -> None:
    assert check({"data": {"k": "aGVsbG8="}}, core_v1.Secret).ok
    result = check({"data": {"k": "not base64!"}}, core_v1.Secret)
    assert [p for p, _ in result.errors] == ["data[k]"]
    assert "base64" in result.errors[0][1]
    assert check({"stringData": {"k": "not base64!"}}, core_v1.Secret).ok


# ---------------------------------------------------------------------------------------
# quantities
# ---------------------------------------------------------------------------------------


def test_quantity_numbers_become_canonical_strings() -> None:
    body = pod_with(
        containers=[{"name": "c", "resources": {"limits": {"cpu": 0.5, "memory": 1024}}}],
        overhead={"cpu": 2000},
        volumes=[{"name": "v", "emptyDir": {"sizeLimit": 1.5}}],
    )
    assert check(body).ok
    assert body["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "500m",
        "memory": "1024",
    }
    assert body["spec"]["overhead"] == {"cpu": "2k"}
    assert body["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] == "1500m"


def test_quantity_strings_are_validated_not_rewritten() -> None:
    body = pod_with(containers=[{"name": "c", "resources": {"requests": {"cpu": "1000m"}}}])
    assert check(body).ok
    assert body["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "1000m"
    result = check(pod_with(containers=[{"name": "c", "resources": {"requests": {"cpu": "x"}}}]))
    assert result.errors[0][0] == "spec.containers[0].resources.requests[cpu]"
    assert result.errors[0][1].startswith("quantities must match the regular expression")


def test_quantity_rejects_bool() -> None:
    result = check(pod_with(overhead={"cpu": True}))
    assert [p for p, _ in result.errors] == ["spec.overhead[cpu]"]


# ---------------------------------------------------------------------------------------
# unknown fields
# ---------------------------------------------------------------------------------------


def body_with_unknowns() -> dict:
    body = copy.deepcopy(POD)
    body["spec"]["foo"] = {"x": 1}
    body["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    body["metadata"]["labelz"] = {}
    body["extra"] = 1
    return body


UNKNOWN_PATHS = ["extra", "metadata.labelz", "spec.containers[0].imagePullPolcy", "spec.foo"]


@pytest.mark.parametrize("mode", ["warn", "ignore"])
def test_unknown_fields_are_reported_and_pruned(mode: str) -> None:
    body = body_with_unknowns()
    result = check(body, unknown=mode)
    assert result.ok
    assert sorted(result.unknown) == UNKNOWN_PATHS
    assert result.unknown_fields == result.unknown
    assert body == POD


def test_strict_reports_and_keeps_unknown_fields() -> None:
    body = body_with_unknowns()
    result = check(body, unknown="strict")
    assert not result.ok
    assert result.errors == ()
    assert sorted(result.unknown) == UNKNOWN_PATHS
    assert body == body_with_unknowns()
    assert 'unknown field "spec.foo"' in result.messages()


def test_unknown_fields_inside_maps_of_objects_and_lists() -> None:
    body = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a"}, {"name": "b", "typo": 1}]}},
            "selector": {"matchLabels": {"a": "b"}, "matchExpresions": []},
        }
    }
    result = check(body, apps_v1.Deployment)
    assert sorted(result.unknown) == [
        "spec.selector.matchExpresions",
        "spec.template.spec.containers[1].typo",
    ]


def test_invalid_mode() -> None:
    with pytest.raises(ValueError, match="unknown must be one of"):
        check({}, unknown="loud")


def test_every_kind_accepts_an_empty_object_and_its_type_meta() -> None:
    for kind in all_kinds():
        body = {"apiVersion": kind.API_VERSION, "kind": kind.KIND, "metadata": {"name": "x"}}
        result = schema_for(kind).check(body, unknown="strict")
        assert result.ok, (kind, result.messages())


# ---------------------------------------------------------------------------------------
# strategic merge patch protocol
# ---------------------------------------------------------------------------------------


def test_patch_metadata_protocol() -> None:
    pod = schema_for(core_v1.Pod)
    assert pod.patch_strategy is None and pod.patch_merge_key is None
    containers = pod.field("spec").field("containers")
    assert containers.patch_strategy == "merge"
    assert containers.patch_merge_key == "name"
    container = containers.item()
    assert container.patch_strategy is None
    ports = container.field("ports")
    assert (ports.patch_strategy, ports.patch_merge_key) == ("merge", "containerPort")
    assert ports.list_type == "map" and ports.list_map_keys == ("containerPort", "protocol")
    assert container.field("env").patch_merge_key == "name"
    assert container.field("volumeMounts").patch_merge_key == "mountPath"
    assert pod.field("spec").field("volumes").patch_strategy == "merge,retainKeys"
    assert pod.field("metadata").field("finalizers").patch_strategy == "merge"
    assert pod.field("metadata").field("finalizers").patch_merge_key is None
    assert pod.field("metadata").field("ownerReferences").patch_merge_key == "uid"
    dep = schema_for(apps_v1.Deployment)
    assert dep.field("spec").field("strategy").patch_strategy == "retainKeys"
    template_containers = dep.field("spec").field("template").field("spec").field("containers")
    assert template_containers.patch_merge_key == "name"


def test_unknown_names_know_nothing() -> None:
    pod = schema_for(core_v1.Pod)
    for node in (
        pod.field("nope"),
        pod.field("spec").field("nope").field("deeper"),
        pod.field("spec").field("containers").field("name"),
        pod.item(),
        UNKNOWN_SCHEMA.item().field("x"),
    ):
        assert node.kind == UNKNOWN
        assert node.patch_strategy is None and node.patch_merge_key is None
        assert node.fields == {}
    labels = pod.field("metadata").field("labels")
    assert labels.kind == MAP and labels.item().kind == SCALAR
    # the patch engine treats a map's keys like fields: any key gives the value's node
    assert labels.field("app") is labels.item()
    assert labels.field("app").field("x").kind == UNKNOWN


def test_free_form_positions() -> None:
    fields_v1 = schema_for(meta.ManagedFieldsEntry).field("fieldsV1")
    assert fields_v1.kind == "any"
    assert fields_v1.field("f:spec").kind == UNKNOWN


# ---------------------------------------------------------------------------------------
# introspection for the OpenAPI generator
# ---------------------------------------------------------------------------------------


def test_introspection() -> None:
    pod = schema_for(core_v1.Pod)
    assert schema_for(core_v1.Pod) is pod
    assert pod.kind == OBJECT and pod.model is core_v1.Pod
    assert list(pod.fields) == ["apiVersion", "kind", "metadata", "spec", "status"]
    spec = pod.fields["spec"]
    assert spec.name == "spec" and spec.json == "spec" and spec.type is core_v1.PodSpec
    assert spec.doc
    containers = spec.schema.fields["containers"]
    assert containers.kind == LIST and containers.required
    assert containers.type == list[core_v1.Container]
    assert containers.schema.item().model is core_v1.Container
    assert "containers" in spec.schema.required
    port = containers.schema.item().fields["ports"].schema.item().fields["containerPort"]
    assert (port.type, port.format, port.required) == (int, "int32", True)
    target = schema_for(core_v1.ServicePort).fields["targetPort"]
    assert target.format == "int-or-string" and set(typing.get_args(target.type)) == {int, str}
    limits = schema_for(core_v1.ResourceRequirements).fields["limits"]
    assert limits.kind == MAP and limits.format == "quantity"
    assert schema_for(meta.ListMeta).fields["continue"].name == "continue_"


def test_schema_for_rejects_non_models() -> None:
    with pytest.raises(TypeError):
        schema_for(dict)
