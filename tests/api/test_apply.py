"""Server-side apply and managedFields (kubeling.api.apply) on their own."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeling.api import apply as ssa
from kubeling.api.errors import ApiError
from kubeling.api.kinds import builtin_kinds
from kubeling.api.registry import KindInfo
from kubeling.api.schema import schema_for
from kubeling.api.strategy import Strategy

KINDS = {k.kind: k for k in builtin_kinds()}
DEPLOYMENT = KINDS["Deployment"]
SERVICE = KINDS["Service"]
POD = KINDS["Pod"]


def deployment(**spec: Any) -> dict[str, Any]:
    base = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [
                                      {"name": "web", "image": "nginx",
                                       "ports": [{"containerPort": 80}]},
                                      {"name": "side", "image": "busybox"}]}}}}
    base["spec"].update(spec)
    return base


def owners(obj: dict[str, Any]) -> dict[str, set[tuple[str, ...]]]:
    return {m["manager"]: ssa.decode_fields(m["fieldsV1"])
            for m in obj["metadata"].get("managedFields", [])}


def test_field_set_follows_list_and_map_types() -> None:
    paths = ssa.field_set(deployment(), schema_for(DEPLOYMENT.model))
    containers = ("f:spec", "f:template", "f:spec", "f:containers")
    web = (*containers, 'k:{"name":"web"}')
    assert web in paths  # list-map items are members themselves
    assert (*web, "f:image") in paths
    # a port's protocol defaults to TCP, so it is part of the key even when left out
    assert (*web, "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}') in paths
    assert ("f:spec", "f:selector") in paths  # LabelSelector is atomic
    assert not any(p[:2] == ("f:spec", "f:selector") and len(p) > 2 for p in paths)
    assert ("f:metadata", "f:labels", "f:app") in paths
    assert ("f:metadata", "f:labels") not in paths
    with_maps = ssa.field_set(deployment(), schema_for(DEPLOYMENT.model), maps=True)
    assert ("f:metadata", "f:labels") in with_maps
    finalizers = ssa.field_set({"metadata": {"finalizers": ["a", "b"]}},
                               schema_for(POD.model))
    assert finalizers == {("f:metadata", "f:finalizers", 'v:"a"'),
                          ("f:metadata", "f:finalizers", 'v:"b"')}
    args = ssa.field_set({"spec": {"containers": [{"name": "c", "args": ["x"]}]}},
                         schema_for(POD.model))
    assert ("f:spec", "f:containers", 'k:{"name":"c"}', "f:args") in args  # atomic list


def test_fields_encode_and_decode() -> None:
    paths = {("f:a",), ("f:b",), ("f:b", "f:c"), ("f:l", 'k:{"name":"x"}'),
             ("f:l", 'k:{"name":"x"}', "f:v")}
    tree = ssa.encode_fields(paths)
    assert tree == {"f:a": {}, "f:b": {".": {}, "f:c": {}},
                    "f:l": {'k:{"name":"x"}': {".": {}, "f:v": {}}}}
    assert list(tree["f:b"]) == [".", "f:c"]
    assert ssa.decode_fields(tree) == paths
    assert ssa.path_string(("f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == \
        '.spec.containers[name="web"].image'
    assert ssa.path_string(("f:metadata", "f:finalizers", 'v:"x"')) == \
        '.metadata.finalizers[="x"]'


def test_apply_merges_by_keys_and_prunes_what_it_stops_applying() -> None:
    live = ssa.apply_configuration(DEPLOYMENT, None, None, deployment(), "me", force=False)
    # another manager adds an env var to the web container
    other = copy.deepcopy(live)
    other["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "X", "value": "1"}]
    ssa.track_update(DEPLOYMENT, None, live, other, "other")
    slim = deployment()
    containers = slim["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "nginx:2"
    del containers[1]
    new = ssa.apply_configuration(DEPLOYMENT, None, other, slim, "me", force=False)
    got = new["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in got] == ["web"]
    assert got[0]["image"] == "nginx:2"
    assert got[0]["env"] == [{"name": "X", "value": "1"}]  # owned by someone else: kept
    assert got[0]["ports"] == [{"containerPort": 80}]
    assert set(owners(new)) == {"me", "other"}


def test_prune_keeps_maps_that_still_hold_applied_fields() -> None:
    cm = KINDS["ConfigMap"]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
              "data": {"a": "1", "b": "2"}}
    live = ssa.apply_configuration(cm, None, None, config, "me", force=False)
    # the manager's set names the map itself too (as after kubectl's CSA migration)
    entry = live["metadata"]["managedFields"][0]
    entry["fieldsV1"] = {"f:data": {".": {}, "f:a": {}, "f:b": {}}}
    new = ssa.apply_configuration(cm, None, live, {**config, "data": {"a": "1"}}, "me",
                                  force=False)
    assert new["data"] == {"a": "1"}
    gone = ssa.apply_configuration(cm, None, new, {**config, "data": {}}, "me", force=False)
    assert "data" not in gone or gone["data"] == {}


def test_conflicts_and_force() -> None:
    live = ssa.apply_configuration(DEPLOYMENT, None, None, deployment(), "me", force=False)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled["metadata"]["labels"]["app"] = "changed"
    ssa.track_update(DEPLOYMENT, None, live, scaled, "scaler")
    with pytest.raises(ApiError) as info:
        ssa.apply_configuration(DEPLOYMENT, None, scaled, deployment(), "me", force=False)
    err = info.value
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == ('Apply failed with 2 conflicts: conflicts with "scaler" using '
                           'apps/v1:\n- .metadata.labels.app\n- .spec.replicas')
    assert [c["field"] for c in err.details["causes"]] == [".metadata.labels.app",
                                                            ".spec.replicas"]
    # applying the live value is shared ownership, not a conflict
    agreeing = deployment(replicas=5)
    agreeing["metadata"]["labels"]["app"] = "changed"
    shared = ssa.apply_configuration(DEPLOYMENT, None, scaled, agreeing, "me", force=False)
    assert ("f:spec", "f:replicas") in owners(shared)["scaler"]
    assert ("f:spec", "f:replicas") in owners(shared)["me"]
    forced = ssa.apply_configuration(DEPLOYMENT, None, scaled, deployment(), "me", force=True)
    assert forced["spec"]["replicas"] == 2
    assert "scaler" not in owners(forced)


def test_update_tracking_takes_fields_from_others() -> None:
    created = deployment()
    ssa.track_update(DEPLOYMENT, None, None, created, "creator")
    assert owners(created)["creator"] >= {("f:spec", "f:replicas"),
                                          ("f:metadata", "f:labels")}
    changed = copy.deepcopy(created)
    changed["spec"]["replicas"] = 3
    ssa.track_update(DEPLOYMENT, "scale", created, changed, "scaler")
    entries = {m["manager"]: m for m in changed["metadata"]["managedFields"]}
    assert entries["scaler"]["subresource"] == "scale"
    assert ssa.decode_fields(entries["scaler"]["fieldsV1"]) == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners(changed)["creator"]
    # nothing changed: entries (and their times) stay as they were
    same = copy.deepcopy(changed)
    ssa.track_update(DEPLOYMENT, None, changed, same, "noop")
    assert same["metadata"]["managedFields"] == changed["metadata"]["managedFields"]
    # status is not owned through the object itself, only through /status
    with_status = copy.deepcopy(changed)
    with_status["status"] = {"replicas": 3}
    ssa.track_update(DEPLOYMENT, None, changed, with_status, "writer")
    assert "writer" not in owners(with_status)
    ssa.track_update(DEPLOYMENT, "status", changed, with_status, "writer")
    assert owners(with_status)["writer"] == {("f:status", "f:replicas")}


def test_service_ports_keyed_by_port_and_defaulted_protocol() -> None:
    config = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
              "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    created = ssa.apply_configuration(SERVICE, None, None, config, "me", force=False)
    live = copy.deepcopy(created)
    for port in live["spec"]["ports"]:
        port["protocol"] = "TCP"  # what defaulting adds
    config["spec"]["ports"] = [{"port": 80, "name": "web"}]
    new = ssa.apply_configuration(SERVICE, None, live, config, "me", force=False)
    assert new["spec"]["ports"] == [{"port": 80, "name": "web", "protocol": "TCP"}]


def test_kinds_without_a_model_are_granular_maps() -> None:
    kind = KindInfo(group="example.com", version="v1", kind="Widget", plural="widgets",
                    strategy=Strategy())
    config = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
              "spec": {"size": 1, "color": "red"}}
    live = ssa.apply_configuration(kind, None, None, config, "me", force=False)
    assert owners(live)["me"] == {("f:spec", "f:size"), ("f:spec", "f:color")}
    new = ssa.apply_configuration(kind, None, live, {**config, "spec": {"size": 2}}, "me",
                                  force=False)
    assert new["spec"] == {"size": 2}


def test_manager_names() -> None:
    from kubeling.api.request import ApiRequest

    req = ApiRequest(method="PATCH", path="/x", headers={"user-agent": "kubectl/v1.32.4 (x)"})
    assert ssa.manager_name(req) == "kubectl"
    assert ssa.manager_name(req, subresource="scale").subresource == "scale"
    with pytest.raises(ApiError) as info:
        ssa.manager_name(ApiRequest(method="PATCH", path="/x", query={"fieldManager": "x" * 129}))
    assert info.value.code == 422
    with pytest.raises(ApiError) as info:
        ssa.manager_name(ApiRequest(method="PATCH", path="/x"), required=True)
    assert "fieldManager: Required value" in info.value.message
