"""JSON merge patch, JSON patch and strategic merge patch on JSON-shaped dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeling.api.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    NO_META,
    STRATEGIC_MERGE_PATCH,
    DictPatchMeta,
    PatchError,
    PatchMeta,
    apply_patch,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)

# ------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        # The examples of RFC 7386, appendix A.
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_json_merge_patch_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    assert json_merge_patch(target, patch) == result


def test_json_merge_patch_never_mutates_or_shares() -> None:
    target = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [{"x": 1}]}}
    patch = {"metadata": {"labels": {"b": "2"}}, "spec": {"new": {"deep": [1]}}}
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    result = json_merge_patch(target, patch)
    assert target == target_before
    assert patch == patch_before
    result["spec"]["list"][0]["x"] = 99
    result["spec"]["new"]["deep"].append(2)
    assert target == target_before
    assert patch == patch_before


# ------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "operations", "result"),
    [
        # RFC 6902 appendix A, in order.
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
        ),
        (
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        (
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
        ),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        (
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2},
            ],
            {"baz": "qux", "foo": ["a", 2, "c"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
            {"foo": "bar", "baz": "qux"},
        ),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        # More.
        (
            {"a/b": 1, "m~n": 2},
            [{"op": "replace", "path": "/a~1b", "value": 3}],
            {"a/b": 3, "m~n": 2},
        ),
        ({"m~n": 2}, [{"op": "remove", "path": "/m~0n"}], {}),
        ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
        ({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}], {"b": 2}),
        ({"a": [1, 2]}, [{"op": "add", "path": "/a/2", "value": 3}], {"a": [1, 2, 3]}),
        (
            {"a": {"b": [1]}},
            [{"op": "copy", "from": "/a/b", "path": "/c"}],
            {"a": {"b": [1]}, "c": [1]},
        ),
        ({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
        ({"a": 1.0}, [{"op": "test", "path": "/a", "value": 1}], {"a": 1.0}),
        ({"a": 1}, [{"op": "test", "path": "/missing", "value": None}], {"a": 1}),
        ({"a": None}, [{"op": "test", "path": "/a", "value": None}], {"a": None}),
        (
            {"a": [{"x": 1, "y": [True]}]},
            [{"op": "test", "path": "/a", "value": [{"y": [True], "x": 1}]}],
            {"a": [{"x": 1, "y": [True]}]},
        ),
    ],
)
def test_json_patch(target: Any, operations: list, result: Any) -> None:
    assert json_patch(target, operations) == result


@pytest.mark.parametrize(
    ("target", "operations", "message"),
    [
        (
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            'json patch operation 0 (test /baz): test failed: value is "qux", expected "bar"',
        ),
        (
            {"a": 1},
            [{"op": "test", "path": "/a", "value": 1}, {"op": "test", "path": "/a", "value": True}],
            "json patch operation 1 (test /a): test failed: value is 1, expected true",
        ),
        (
            {"a": 1},
            [{"op": "test", "path": "/b", "value": 1}],
            "json patch operation 0 (test /b): path '/b' does not exist",
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            "json patch operation 0 (add /baz/bat): path '/baz' does not exist",
        ),
        (
            {"a": 1},
            [{"op": "remove", "path": "/b"}],
            "json patch operation 0 (remove /b): path does not exist",
        ),
        (
            {"a": 1},
            [{"op": "replace", "path": "/b", "value": 2}],
            "json patch operation 0 (replace /b): path does not exist",
        ),
        (
            {"a": [1]},
            [{"op": "add", "path": "/a/2", "value": 2}],
            "json patch operation 0 (add /a/2): array index 2 is out of range (array length 1)",
        ),
        (
            {"a": [1, 2]},
            [{"op": "remove", "path": "/a/01"}],
            "json patch operation 0 (remove /a/01): invalid array index '01'",
        ),
        (
            {"a": [1]},
            [{"op": "replace", "path": "/a/-", "value": 2}],
            "json patch operation 0 (replace /a/-): '-' names the element after the end of the "
            "array, which does not exist",
        ),
        (
            {"a": [1]},
            [{"op": "remove", "path": "/a/-1"}],
            "json patch operation 0 (remove /a/-1): invalid array index '-1'",
        ),
        (
            {"a": 1},
            [{"op": "add", "path": "a", "value": 1}],
            "json patch operation 0 (add a): invalid JSON pointer 'a': must be empty or start "
            "with '/'",
        ),
        (
            {"a": 1},
            [{"op": "add", "path": "/~2", "value": 1}],
            "json patch operation 0 (add /~2): invalid JSON pointer '/~2': '~' must be followed "
            "by '0' or '1'",
        ),
        (
            {"a": 1},
            [{"op": "add", "path": "/b"}],
            'json patch operation 0 (add /b): missing "value"',
        ),
        (
            {"a": 1},
            [{"op": "move", "path": "/b"}],
            'json patch operation 0 (move /b): missing "from"',
        ),
        (
            {"a": {"b": 1}},
            [{"op": "move", "from": "/a", "path": "/a/c"}],
            "json patch operation 0 (move /a/c): cannot move '/a' into one of its own children",
        ),
        (
            {"a": 1},
            [{"op": "remove", "path": ""}],
            "json patch operation 0 (remove ): cannot remove the whole document",
        ),
        (
            {"a": 1},
            [{"op": "add", "path": "/a/b", "value": 1}],
            "json patch operation 0 (add /a/b): cannot add a member to number",
        ),
        (
            {"a": 1},
            [{"op": "frobnicate", "path": "/a"}],
            'json patch operation 0: unknown op "frobnicate"; expected one of add, remove, '
            "replace, move, copy, test",
        ),
        ({"a": 1}, [{"op": "remove"}], 'json patch operation 0 (remove): missing "path"'),
        ({"a": 1}, ["remove"], "json patch operation 0: must be an object, not string"),
        ({"a": 1}, {"op": "remove"}, "json patch must be an array of operations, not object"),
    ],
)
def test_json_patch_errors(target: Any, operations: Any, message: str) -> None:
    with pytest.raises(PatchError) as info:
        json_patch(target, operations)
    assert str(info.value) == message


def test_json_patch_is_atomic_and_never_mutates_or_shares() -> None:
    target = {"spec": {"replicas": 1, "list": [{"a": 1}]}}
    value = {"deep": [1]}
    operations = [
        {"op": "add", "path": "/spec/new", "value": value},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "test", "path": "/spec/replicas", "value": 4},
    ]
    before = copy.deepcopy(target)
    with pytest.raises(PatchError, match="operation 2"):
        json_patch(target, operations)
    assert target == before

    result = json_patch(
        target, [*operations[:2], {"op": "copy", "from": "/spec/new", "path": "/c"}]
    )
    assert result == {
        "spec": {"replicas": 3, "list": [{"a": 1}], "new": {"deep": [1]}},
        "c": {"deep": [1]},
    }
    result["spec"]["new"]["deep"].append(2)
    result["spec"]["list"][0]["a"] = 2
    assert result["c"] == {"deep": [1]}  # copies are independent
    assert value == {"deep": [1]}
    assert target == before


def test_json_patch_value_null_is_a_value() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "/a", "value": None}]) == {"a": None}


# ------------------------------------------------------------------------------------------
# Strategic merge patch
# ------------------------------------------------------------------------------------------

POD_META = DictPatchMeta(
    {
        "metadata": {"finalizers": {"$strategy": "merge"}},
        "spec": {
            "containers": {
                "$strategy": "merge",
                "$key": "name",
                "$item": {
                    "env": {"$strategy": "merge", "$key": "name"},
                    "ports": {"$strategy": "merge", "$key": "containerPort"},
                },
            },
            "volumes": {"$strategy": "merge,retainKeys", "$key": "name"},
        },
    }
)
SERVICE_META = DictPatchMeta({"spec": {"ports": {"$strategy": "merge", "$key": "port"}}})
DEPLOYMENT_META = DictPatchMeta(
    {
        "spec": {
            "strategy": {"$strategy": "retainKeys"},
            "template": {"spec": {"containers": {"$strategy": "merge", "$key": "name"}}},
        }
    }
)


def smp(original: dict, patch: dict, meta: PatchMeta = NO_META) -> dict:
    """Apply and also check that neither input was modified."""
    original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, meta)
    assert original == original_before
    assert patch == patch_before
    return result


def test_service_ports_merge_by_port() -> None:
    service = {
        "spec": {
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
            ]
        }
    }
    patch = {
        "spec": {"ports": [{"port": 443, "targetPort": 9443}, {"port": 9090, "name": "metrics"}]}
    }
    assert smp(service, patch, SERVICE_META)["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 9443, "protocol": "TCP"},
        {"port": 9090, "name": "metrics"},
    ]


def test_without_meta_lists_are_replaced() -> None:
    service = {"spec": {"ports": [{"port": 80}, {"port": 443}]}}
    patch = {"spec": {"ports": [{"port": 9090}]}}
    assert smp(service, patch)["spec"]["ports"] == [{"port": 9090}]
    assert smp(service, patch, SERVICE_META)["spec"]["ports"] == [
        {"port": 9090},
        {"port": 80},
        {"port": 443},
    ]


def test_containers_merge_by_name_with_env_merged_by_name() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "args": ["--x", "--y"],
                },
                {"name": "sidecar", "image": "proxy:1"},
            ]
        }
    }
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:2",
                    "env": [{"name": "B", "value": "3"}, {"name": "A", "valueFrom": None}],
                    "args": ["--z"],
                }
            ]
        }
    }
    result = smp(pod, patch, POD_META)
    assert result["spec"]["containers"] == [
        {
            "name": "app",
            "image": "app:2",
            # Elements in the patch keep the patch's order.
            "env": [{"name": "B", "value": "3"}, {"name": "A", "value": "1"}],
            "args": ["--z"],  # no strategy: replaced
        },
        {"name": "sidecar", "image": "proxy:1"},
    ]


def test_new_list_element_goes_first_as_kubectl_patch_documents() -> None:
    # kubernetes.io "Update API Objects in Place Using kubectl patch": patching in a
    # container patch-demo-ctr-2 yields [patch-demo-ctr-2, patch-demo-ctr].
    deployment = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "patch-demo-ctr", "image": "nginx"}]}}
        }
    }
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}
        }
    }
    containers = smp(deployment, patch, DEPLOYMENT_META)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["patch-demo-ctr-2", "patch-demo-ctr"]


def test_patch_elements_interleave_with_original_positions() -> None:
    pod = {"spec": {"containers": [{"name": n} for n in "abc"]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "x"}, {"name": "d"}]}}
    result = smp(pod, patch, POD_META)
    assert result["spec"]["containers"] == [
        {"name": "a"},
        {"name": "b", "image": "x"},
        {"name": "d"},
        {"name": "c"},
    ]


def test_patch_delete_directive_removes_one_container() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}
    patch = {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}
    assert smp(pod, patch, POD_META) == {"spec": {"containers": [{"name": "b", "image": "2"}]}}


def test_patch_delete_removes_every_element_with_the_key() -> None:
    pod = {"spec": {"containers": [{"name": "a", "i": 1}, {"name": "b"}, {"name": "a", "i": 2}]}}
    patch = {"spec": {"containers": [{"$patch": "delete", "name": "a"}, {"name": "c"}]}}
    assert smp(pod, patch, POD_META)["spec"]["containers"] == [{"name": "c"}, {"name": "b"}]


def test_patch_replace_directive_on_a_map() -> None:
    pod = {"metadata": {"labels": {"a": "1", "b": "2"}, "name": "p"}}
    patch = {"metadata": {"labels": {"$patch": "replace", "c": "3"}}}
    assert smp(pod, patch) == {"metadata": {"labels": {"c": "3"}, "name": "p"}}


def test_patch_replace_directive_on_the_root() -> None:
    assert smp({"a": 1, "b": {"c": 1}}, {"$patch": "replace", "b": {"d": 2}}) == {"b": {"d": 2}}


def test_patch_replace_directive_as_a_list_element() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}}
    patch = {"spec": {"containers": [{"name": "c", "image": "3"}, {"$patch": "replace"}]}}
    assert smp(pod, patch, POD_META)["spec"]["containers"] == [{"name": "c", "image": "3"}]


def test_patch_delete_directive_on_a_map() -> None:
    deployment = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}}
    assert smp(deployment, patch) == {"spec": {"strategy": {"type": "RollingUpdate"}}}
    assert smp({"a": 1}, {"$patch": "delete"}) == {}


def test_patch_merge_directive_is_the_default() -> None:
    original = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a", "x": 1}]}}
    patch = {
        "metadata": {"labels": {"$patch": "merge", "b": "2"}},
        "spec": {"containers": [{"name": "a", "$patch": "merge", "y": 2}, {"$patch": "merge"}]},
    }
    assert smp(original, patch, POD_META) == {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {"containers": [{"name": "a", "x": 1, "y": 2}]},
    }


def test_unknown_patch_directive_is_an_error() -> None:
    with pytest.raises(PatchError, match=r'metadata: unknown patch type: "frob" in map'):
        strategic_merge_patch({"metadata": {}}, {"metadata": {"$patch": "frob"}})
    with pytest.raises(PatchError, match=r'spec.containers: unknown patch type: "frob" in map'):
        strategic_merge_patch(
            {"spec": {"containers": []}},
            {"spec": {"containers": [{"name": "a", "$patch": "frob"}]}},
            POD_META,
        )


def test_finalizers_merge_as_a_set() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    result = smp(obj, {"metadata": {"finalizers": ["b", "c", "c"]}}, POD_META)
    assert result["metadata"]["finalizers"] == ["a", "b", "c"]
    # A new value absent from the original goes first, as in Kubernetes.
    result = smp(obj, {"metadata": {"finalizers": ["c"]}}, POD_META)
    assert result["metadata"]["finalizers"] == ["c", "a", "b"]
    # Without schema knowledge the list is replaced.
    assert smp(obj, {"metadata": {"finalizers": ["c"]}})["metadata"]["finalizers"] == ["c"]


def test_delete_from_primitive_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b", "c", "b"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}
    assert smp(obj, patch, POD_META) == {"metadata": {"finalizers": ["a", "c"]}}
    # Nothing to delete from: nothing is added.
    assert smp({"metadata": {}}, patch, POD_META) == {"metadata": {}}
    # Together with additions.
    patch = {"metadata": {"finalizers": ["d"], "$deleteFromPrimitiveList/finalizers": ["a"]}}
    assert smp(obj, patch, POD_META)["metadata"]["finalizers"] == ["d", "b", "c"]


def test_bad_delete_from_primitive_list() -> None:
    with pytest.raises(PatchError, match="invalid patch format of primitive list"):
        strategic_merge_patch({}, {"$deleteFromPrimitiveListfinalizers": ["a"]})
    with pytest.raises(
        PatchError, match=r"metadata\.finalizers: invalid patch format of primitive list"
    ):
        strategic_merge_patch(
            {"metadata": {}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}
        )


def test_set_element_order_reorders_containers() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}, {"name": "c"}]}}
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "2"}],
        }
    }
    assert smp(pod, patch, POD_META)["spec"]["containers"] == [
        {"name": "c"},
        {"name": "a", "image": "2"},
        {"name": "b"},
    ]


def test_set_element_order_alone_and_with_new_and_deleted_elements() -> None:
    pod = {"spec": {"containers": [{"name": n} for n in "abc"]}}
    # Only the order directive.
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}]}}
    assert [c["name"] for c in smp(pod, patch, POD_META)["spec"]["containers"]] == ["b", "c", "a"]
    # What kubectl apply sends when it adds d between a and b and removes c.
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "d"}, {"name": "b"}],
            "containers": [{"name": "d"}, {"$patch": "delete", "name": "c"}],
        }
    }
    assert [c["name"] for c in smp(pod, patch, POD_META)["spec"]["containers"]] == ["a", "d", "b"]


def test_set_element_order_for_primitives_and_for_a_new_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}}
    assert smp(obj, patch, POD_META)["metadata"]["finalizers"] == ["c", "b", "a"]
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "x"}, {"name": "y"}],
            "containers": [{"name": "x"}, {"name": "z", "$patch": "delete"}, {"name": "y"}],
        }
    }
    result = smp({"spec": {}}, patch, POD_META)
    assert result == {"spec": {"containers": [{"name": "x"}, {"name": "y"}]}}


def test_set_element_order_must_agree_with_the_patch_list() -> None:
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}],
        }
    }
    with pytest.raises(
        PatchError, match=r"spec\.containers: the order in patch list .* doesn't match"
    ):
        strategic_merge_patch(pod, patch, POD_META)
    with pytest.raises(PatchError, match="invalid patch format of setElementOrder list"):
        strategic_merge_patch(
            pod, {"spec": {"$setElementOrder/containers": {"name": "a"}}}, POD_META
        )


def test_retain_keys_on_deployment_strategy() -> None:
    deployment = {
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        }
    }
    # What kubectl apply sends when a manifest switches to Recreate.
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(deployment, patch, DEPLOYMENT_META) == {
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"}}
    }
    # Null values and list directives may appear without being listed.
    patch = {
        "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}
    }
    assert smp(deployment, patch, DEPLOYMENT_META)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_errors() -> None:
    deployment = {"spec": {"strategy": {"type": "RollingUpdate"}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(PatchError) as info:
        strategic_merge_patch(deployment, patch, DEPLOYMENT_META)
    assert str(info.value) == (
        "spec.strategy: invalid patch format of retainKeys: "
        "'rollingUpdate' is in the patch but not in $retainKeys"
    )
    with pytest.raises(PatchError, match="invalid patch format of retainKeys: must be a list"):
        strategic_merge_patch(deployment, {"spec": {"strategy": {"$retainKeys": "type"}}})


def test_retain_keys_on_a_merged_list_element() -> None:
    pod = {
        "spec": {
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "hostPath": {"path": "/"}}]
        }
    }
    patch = {
        "spec": {
            "volumes": [
                {"name": "v", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}
            ]
        }
    }
    assert smp(pod, patch, POD_META)["spec"]["volumes"] == [
        {"name": "v", "secret": {"secretName": "s"}},
        {"name": "w", "hostPath": {"path": "/"}},
    ]


def test_null_removes_a_key() -> None:
    pod = {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}}
    patch = {"metadata": {"labels": {"a": None, "zzz": None}, "annotations": None}}
    assert smp(pod, patch) == {"metadata": {"labels": {"b": "2"}}}


def test_unknown_fields_merge_as_maps() -> None:
    obj = {"spec": {"custom": {"a": 1, "nested": {"b": 2}}}}
    patch = {"spec": {"custom": {"nested": {"c": 3}}, "other": {"d": 4}}}
    assert smp(obj, patch, POD_META) == {
        "spec": {"custom": {"a": 1, "nested": {"b": 2, "c": 3}}, "other": {"d": 4}}
    }


def test_scalars_and_type_changes_are_replaced() -> None:
    obj = {"spec": {"replicas": 1, "a": {"b": 1}, "c": [1], "d": "x"}}
    patch = {"spec": {"replicas": 3, "a": "flat", "c": {"now": "a map", "gone": None}, "d": [1]}}
    assert smp(obj, patch) == {
        "spec": {"replicas": 3, "a": "flat", "c": {"now": "a map"}, "d": [1]}
    }


def test_directives_and_nulls_never_leak_into_added_values() -> None:
    patch = {
        "metadata": {"labels": {"a": "1", "b": None}, "annotations": {"$patch": "delete"}},
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "X", "value": None}],
                    "$retainKeys": ["name", "env"],
                },
                {"name": "b", "$patch": "delete"},
            ],
            "$setElementOrder/volumes": [{"name": "v"}],
            "volumes": [{"name": "v"}],
            "tolerations": [{"key": "k", "value": None}, {"$patch": "replace"}],
            "strategy": {"$patch": "replace", "type": "Recreate"},
        },
        "$deleteFromPrimitiveList/finalizers": ["x"],
    }
    assert smp({}, patch, POD_META) == {
        "metadata": {"labels": {"a": "1"}},
        "spec": {
            "containers": [{"name": "a", "env": [{"name": "X"}]}],
            "volumes": [{"name": "v"}],
            "tolerations": [{"key": "k"}],
            "strategy": {"type": "Recreate"},
        },
    }


def test_merge_key_is_required_in_patch_elements() -> None:
    pod = {"spec": {"containers": [{"name": "a"}]}}
    with pytest.raises(PatchError) as info:
        strategic_merge_patch(pod, {"spec": {"containers": [{"image": "x"}]}}, POD_META)
    assert str(info.value) == (
        'spec.containers: map {"image": "x"} does not contain declared merge key: name'
    )
    with pytest.raises(PatchError, match="does not contain declared merge key: name"):
        strategic_merge_patch(pod, {"spec": {"containers": [{"$patch": "delete"}]}}, POD_META)


def test_merge_strategy_without_key_on_maps_is_an_error() -> None:
    meta = DictPatchMeta({"items": {"$strategy": "merge"}})
    with pytest.raises(PatchError, match="items: cannot merge lists without merge key"):
        strategic_merge_patch({"items": [{"a": 1}]}, {"items": [{"a": 2}]}, meta)
    with pytest.raises(PatchError, match="items: list element types are not identical"):
        strategic_merge_patch({"items": ["a"]}, {"items": [{"a": 2}]}, meta)
    with pytest.raises(PatchError, match="items: lists of lists are not supported"):
        strategic_merge_patch({"items": [["a"]]}, {"items": [["b"]]}, meta)


def test_replace_strategy_on_a_map_field() -> None:
    meta = DictPatchMeta({"spec": {"selector": {"$strategy": "replace"}}})
    obj = {"spec": {"selector": {"a": "1", "b": "2"}}}
    assert smp(obj, {"spec": {"selector": {"c": "3"}}}, meta) == {"spec": {"selector": {"c": "3"}}}
    assert smp(obj, {"spec": {"selector": {"c": "3"}}}) == {
        "spec": {"selector": {"a": "1", "b": "2", "c": "3"}}
    }


def test_dict_patch_meta() -> None:
    meta = DictPatchMeta(
        {
            "spec": {
                "containers": {
                    "$strategy": "merge",
                    "$key": "name",
                    "$item": {"ports": {"$strategy": "merge", "$key": "containerPort"}},
                },
                "byName": {"$item": {"list": {"$strategy": "merge", "$key": "id"}}},
            }
        }
    )
    containers = meta.field("spec").field("containers")
    assert containers.patch_strategy == "merge"
    assert containers.patch_merge_key == "name"
    ports = containers.item().field("ports")
    assert (ports.patch_strategy, ports.patch_merge_key) == ("merge", "containerPort")
    unknown = meta.field("spec").field("nope")
    assert unknown.patch_strategy is None and unknown.patch_merge_key is None
    assert unknown.field("x").item().patch_strategy is None
    # "$item" on a map describes every value.
    assert (
        meta.field("spec").field("byName").field("anything").field("list").patch_merge_key == "id"
    )
    assert isinstance(meta, PatchMeta)
    assert isinstance(NO_META, PatchMeta)
    with pytest.raises(TypeError):
        DictPatchMeta({"$key": 3})


def test_map_of_values_meta_is_used_when_merging() -> None:
    meta = DictPatchMeta({"byName": {"$item": {"list": {"$strategy": "merge", "$key": "id"}}}})
    obj = {"byName": {"x": {"list": [{"id": 1, "v": "a"}]}}}
    patch = {"byName": {"x": {"list": [{"id": 1, "v": "b"}, {"id": 2}]}}}
    assert smp(obj, patch, meta) == {"byName": {"x": {"list": [{"id": 1, "v": "b"}, {"id": 2}]}}}


def test_patch_meta_protocol_from_another_implementation() -> None:
    class ContainersOnly:
        def __init__(self, depth: int = 0) -> None:
            self.depth = depth

        def field(self, name: str) -> PatchMeta:
            return ContainersOnly(1) if name == "containers" else NO_META

        def item(self) -> PatchMeta:
            return NO_META

        @property
        def patch_strategy(self) -> str | None:
            return "merge" if self.depth else None

        @property
        def patch_merge_key(self) -> str | None:
            return "name" if self.depth else None

    result = smp({"containers": [{"name": "a"}]}, {"containers": [{"name": "b"}]}, ContainersOnly())
    assert result == {"containers": [{"name": "b"}, {"name": "a"}]}


def test_result_shares_nothing_with_inputs() -> None:
    original = {"spec": {"keep": {"deep": [1]}, "containers": [{"name": "a", "env": []}]}}
    patch = {"spec": {"new": {"deep": [2]}, "containers": [{"name": "b", "args": ["x"]}]}}
    result = smp(original, patch, POD_META)
    result["spec"]["keep"]["deep"].append(9)
    result["spec"]["new"]["deep"].append(9)
    for container in result["spec"]["containers"]:
        container["image"] = "changed"
        container.setdefault("args", []).append("y")
    assert original == {"spec": {"keep": {"deep": [1]}, "containers": [{"name": "a", "env": []}]}}
    assert patch == {"spec": {"new": {"deep": [2]}, "containers": [{"name": "b", "args": ["x"]}]}}


def test_non_object_inputs_are_rejected() -> None:
    with pytest.raises(PatchError, match="strategic merge patch must be an object, not array"):
        strategic_merge_patch({}, [])  # type: ignore[arg-type]
    with pytest.raises(PatchError, match="target must be an object, not string"):
        strategic_merge_patch("x", {})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Dispatch by content type
# ------------------------------------------------------------------------------------------


def test_apply_patch_by_content_type() -> None:
    target = {"spec": {"ports": [{"port": 80}]}}
    assert apply_patch(JSON_PATCH, target, [{"op": "add", "path": "/x", "value": 1}])["x"] == 1
    assert apply_patch(MERGE_PATCH, target, {"spec": {"ports": [{"port": 81}]}}) == {
        "spec": {"ports": [{"port": 81}]}
    }
    assert apply_patch(
        STRATEGIC_MERGE_PATCH + "; charset=utf-8",
        target,
        {"spec": {"ports": [{"port": 81}]}},
        SERVICE_META,
    ) == {"spec": {"ports": [{"port": 81}, {"port": 80}]}}
    with pytest.raises(ValueError, match="unsupported patch content type: application/apply-patch"):
        apply_patch("application/apply-patch+yaml", target, {})


# ------------------------------------------------------------------------------------------
# With the schemas compiled from the attrs models
# ------------------------------------------------------------------------------------------


def _model_schema(module: str, kind: str) -> PatchMeta:
    try:
        from importlib import import_module

        from kubeling.api.schema import schema_for

        return schema_for(getattr(import_module(f"kubeling.api.objects.{module}"), kind))
    except (ImportError, AttributeError) as exc:  # the models are another module's work
        pytest.skip(f"model schemas unavailable: {exc}")


def test_model_schemas_drive_the_merge() -> None:
    pod_meta = _model_schema("core_v1", "Pod")
    assert isinstance(pod_meta, PatchMeta)
    pod = {
        "metadata": {"name": "p", "finalizers": ["a"]},
        "spec": {
            "containers": [{"name": "app", "image": "1", "env": [{"name": "X", "value": "1"}]}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
        },
    }
    patch = {
        "metadata": {"finalizers": ["b"]},
        "spec": {
            "containers": [{"name": "app", "env": [{"name": "X", "value": "2"}]}],
            "tolerations": [{"key": "b", "operator": "Exists"}],
        },
    }
    assert smp(pod, patch, pod_meta) == {
        "metadata": {"name": "p", "finalizers": ["b", "a"]},
        "spec": {
            "containers": [{"name": "app", "image": "1", "env": [{"name": "X", "value": "2"}]}],
            "tolerations": [{"key": "b", "operator": "Exists"}],
        },
    }
    deployment_meta = _model_schema("apps_v1", "Deployment")
    deployment = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(deployment, patch, deployment_meta) == {"spec": {"strategy": {"type": "Recreate"}}}
