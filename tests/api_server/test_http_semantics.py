"""The API server over raw HTTP: paths, status codes, Status bodies, semantics."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import attrs
import pytest

from kubeling.api.server import ServerSettings
from kubeling.client.resources import CONFIGMAPS as _CM
from kubeling.testing.cluster import api_server

JSON = {"Content-Type": "application/json"}
APPLY_YAML = {"Content-Type": "application/apply-patch+yaml"}


class Http:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, body: Any = None, *,
                   headers: dict[str, str] | None = None, raw: bytes | None = None,
                   params: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        async with self.session.request(method, self.base + path, data=data,
                                        headers=headers or JSON, params=params) as resp:
            text = await resp.read()
            try:
                decoded = json.loads(text) if text else None
            except ValueError:
                decoded = text.decode()
            return resp.status, decoded, resp.headers


@pytest.fixture
async def http(api: Any) -> Any:
    async with aiohttp.ClientSession() as session:
        yield Http(session, api.url)


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": data}


CMS = "/api/v1/namespaces/default/configmaps"


async def test_create_sets_server_fields_and_get_returns_them(http: Http) -> None:
    status, obj, _ = await http.call("POST", CMS, cm("a", k="v"))
    assert status == 201
    meta = obj["metadata"]
    assert meta["namespace"] == "default"
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    status, got, _ = await http.call("GET", f"{CMS}/a")
    assert status == 200
    assert got == obj


async def test_resource_versions_increase_and_updates_need_the_current_one(http: Http) -> None:
    _, first, _ = await http.call("POST", CMS, cm("b", k="1"))
    first["data"]["k"] = "2"
    status, second, _ = await http.call("PUT", f"{CMS}/b", first)
    assert status == 200
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    first["data"]["k"] = "3"  # still carries the old resourceVersion
    status, err, _ = await http.call("PUT", f"{CMS}/b", first)
    assert status == 409
    assert err["kind"] == "Status" and err["reason"] == "Conflict"
    assert err["message"] == ('Operation cannot be fulfilled on configmaps "b": the object has '
                              "been modified; please apply your changes to the latest version "
                              "and try again")
    _, now, _ = await http.call("GET", f"{CMS}/b")
    assert now["data"] == {"k": "2"}


async def test_already_exists_and_not_found(http: Http) -> None:
    await http.call("POST", CMS, cm("dup"))
    status, err, _ = await http.call("POST", CMS, cm("dup"))
    assert (status, err["reason"], err["message"]) == (
        409, "AlreadyExists", 'configmaps "dup" already exists')
    status, err, _ = await http.call("GET", f"{CMS}/nope")
    assert (status, err["reason"], err["message"]) == (404, "NotFound",
                                                        'configmaps "nope" not found')
    assert err["details"] == {"name": "nope", "kind": "configmaps"}
    status, err, _ = await http.call("GET", "/apis/apps/v1/namespaces/default/deployments/x")
    assert err["message"] == 'deployments.apps "x" not found'
    status, err, _ = await http.call("GET", "/api/v1/nosuchthings")
    assert status == 404 and err["kind"] == "Status"


async def test_generate_name(http: Http) -> None:
    body = {"metadata": {"generateName": "web-"}, "data": {}}
    status, obj, _ = await http.call("POST", CMS, body)
    assert status == 201
    name = obj["metadata"]["name"]
    assert name.startswith("web-") and len(name) == len("web-") + 5
    status, err, _ = await http.call("POST", CMS, {"metadata": {}})
    assert status == 422
    assert err["details"]["causes"] == [{
        "reason": "FieldValueRequired", "field": "metadata.name",
        "message": "Required value: name or generateName is required"}]


async def test_invalid_names_are_422_with_causes(http: Http) -> None:
    status, err, _ = await http.call("POST", CMS, cm("Not_Valid"))
    assert status == 422
    assert err["reason"] == "Invalid"
    assert err["message"].startswith('ConfigMap "Not_Valid" is invalid: metadata.name: '
                                     'Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain')
    (cause,) = err["details"]["causes"]
    assert cause["field"] == "metadata.name" and cause["reason"] == "FieldValueInvalid"


async def test_pod_validation_names_each_bad_field(http: Http) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]},
        {"name": "a"}]}}
    status, err, _ = await http.call("POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 422
    fields = {c["field"] for c in err["details"]["causes"]}
    assert "spec.containers[0].ports[0].containerPort" in fields
    assert "spec.containers[1].image" in fields
    assert "spec.containers[1].name" in fields
    status, _, _ = await http.call("GET", "/api/v1/namespaces/default/pods/p")
    assert status == 404  # nothing half-written


async def test_namespace_must_exist_and_not_be_terminating(http: Http) -> None:
    status, err, _ = await http.call("POST", "/api/v1/namespaces/ghost/configmaps", cm("a"))
    assert (status, err["message"]) == (404, 'namespaces "ghost" not found')
    await http.call("POST", "/api/v1/namespaces", {"metadata": {"name": "going"}})
    status, ns, _ = await http.call("DELETE", "/api/v1/namespaces/going")
    assert status == 200
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    status, err, _ = await http.call("POST", "/api/v1/namespaces/going/configmaps", cm("a"))
    assert status == 403
    assert err["message"] == ("unable to create new content in namespace going because it "
                              "is being terminated")


async def test_malformed_bodies_are_400_and_nothing_is_written(http: Http) -> None:
    status, err, _ = await http.call("POST", CMS, raw=b'{"metadata": {"name": "x"')
    assert status == 400 and err["reason"] == "BadRequest"
    assert "not valid JSON" in err["message"]
    status, err, _ = await http.call("POST", CMS, raw=b"metadata: [unclosed\n",
                                     headers={"Content-Type": "application/yaml"})
    assert status == 400 and "not valid YAML" in err["message"]
    status, obj, _ = await http.call("POST", CMS, raw=b"metadata:\n  name: from-yaml\n",
                                     headers={"Content-Type": "application/yaml"})
    assert status == 201 and obj["metadata"]["name"] == "from-yaml"
    status, err, _ = await http.call("POST", CMS, {"kind": "Secret", "metadata": {"name": "s"}})
    assert status == 400 and "does not match the expected kind" in err["message"]
    status, err, _ = await http.call("POST", CMS, {"apiVersion": "apps/v1",
                                                   "metadata": {"name": "s"}})
    assert status == 400 and "API version" in err["message"]
    status, err, _ = await http.call("POST", CMS, {"metadata": {"name": 5}})
    assert status == 400 and "metadata.name" in err["message"]
    status, err, _ = await http.call("POST", CMS, [1, 2])
    assert status == 400
    status, err, _ = await http.call("POST", CMS, raw=b"<xml/>",
                                     headers={"Content-Type": "text/xml"})
    assert status == 415 and err["reason"] == "UnsupportedMediaType"
    status, listing, _ = await http.call("GET", CMS)
    assert [i["metadata"]["name"] for i in listing["items"]] == ["from-yaml"]


async def test_body_over_the_limit_is_413(http: Http) -> None:
    big = cm("big", blob="x" * (3 * 1024 * 1024 + 10))
    status, err, _ = await http.call("POST", CMS, big)
    assert status == 413 and err["reason"] == "RequestEntityTooLarge"
    status, _, _ = await http.call("GET", f"{CMS}/big")
    assert status == 404


async def test_unknown_fields_warn_strict_and_ignore(http: Http) -> None:
    body = {"metadata": {"name": "w", "bogus": 1}, "data": {}, "extra": True}
    status, obj, headers = await http.call("POST", CMS, body)
    assert status == 201
    assert "bogus" not in obj["metadata"] and "extra" not in obj
    assert 'unknown field \\"metadata.bogus\\"' in headers["Warning"]
    body["metadata"]["name"] = "s"
    status, err, _ = await http.call("POST", CMS, body, params={"fieldValidation": "Strict"})
    assert status == 400
    assert err["message"].startswith('ConfigMap in version "v1" cannot be handled as a '
                                     'ConfigMap: strict decoding error: ')
    assert 'unknown field "extra"' in err["message"]
    status, _, headers = await http.call("POST", CMS, body, params={"fieldValidation": "Ignore"})
    assert status == 201 and "Warning" not in headers


DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"

# Kubernetes' own field-validation integration test body (test/integration/apiserver)
DUPLICATED_JSON = """{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "dupename", "name": "%s", "labels": {"app": "nginx"},
               "unknownMeta": "metaVal"},
  "spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
           "paused": true, "paused": false,
           "selector": {"matchLabels": {"app": "nginx"}},
           "template": {"metadata": {"labels": {"app": "nginx"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
                                                 "unknownNested": "val1",
                                                 "imagePullPolicy": "Always",
                                                 "imagePullPolicy": "Never"}]}}}}"""

DUPLICATED_YAML = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: dupename
  name: %s
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never"""

JSON_PROBLEMS = [
    'duplicate field "metadata.name"', 'unknown field "metadata.unknownMeta"',
    'unknown field "spec.unknown1"', 'unknown field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"']


def warnings_of(headers: Any) -> list[str]:
    """The texts of the ``299 - "..."`` warnings of a response."""
    joined = ", ".join(headers.getall("Warning", []))
    return [json.loads(quoted) for quoted in re.findall(r'299 - ("(?:[^"\\]|\\.)*")', joined)]


async def test_duplicate_json_fields_per_field_validation(http: Http) -> None:
    def body(name: str) -> bytes:
        return (DUPLICATED_JSON % name).encode()

    status, err, _ = await http.call("POST", DEPLOYS, raw=body("strict"),
                                     params={"fieldValidation": "Strict"})
    assert status == 400 and err["reason"] == "BadRequest"
    assert err["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: '
                              "strict decoding error: " + ", ".join(JSON_PROBLEMS))
    status, _, _ = await http.call("GET", f"{DEPLOYS}/strict")
    assert status == 404
    for params, name in (({"fieldValidation": "Warn"}, "warn"), ({}, "default")):
        status, obj, headers = await http.call("POST", DEPLOYS, raw=body(name), params=params)
        assert status == 201 and warnings_of(headers) == JSON_PROBLEMS
        # the last value wins, as in Kubernetes
        assert obj["metadata"]["name"] == name and obj["spec"]["paused"] is False
        assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    status, obj, headers = await http.call("POST", DEPLOYS, raw=body("ignore"),
                                           params={"fieldValidation": "Ignore"})
    assert status == 201 and "Warning" not in headers
    # a replace is held to the same rules
    status, err, _ = await http.call("PUT", f"{DEPLOYS}/ignore", raw=body("ignore"),
                                     params={"fieldValidation": "Strict"})
    assert status == 400 and err["message"].endswith(", ".join(JSON_PROBLEMS))
    # keys repeated in different objects, or inside strings, are no duplicates
    status, _, headers = await http.call("POST", CMS, raw=(
        b'{"metadata": {"name": "fine", "labels": {"name": "x"}}, "data": '
        b'{"name": "\\"name\\": 1", "k" : "v"}}'), params={"fieldValidation": "Strict"})
    assert status == 201 and "Warning" not in headers


async def test_duplicate_yaml_keys_per_field_validation(http: Http) -> None:
    yaml_type = {"Content-Type": "application/yaml"}
    lines = ['line 5: key "name" already set in map',
             'line 12: key "unknownDupe" already set in map',
             'line 14: key "paused" already set in map',
             'line 28: key "imagePullPolicy" already set in map']
    unknown = ['unknown field "metadata.unknownMeta"',
               'unknown field "spec.template.spec.containers[0].unknownNested"',
               'unknown field "spec.unknown1"', 'unknown field "spec.unknownDupe"']
    status, err, _ = await http.call("POST", DEPLOYS, raw=(DUPLICATED_YAML % "y").encode(),
                                     headers=yaml_type, params={"fieldValidation": "Strict"})
    assert status == 400
    assert err["message"].endswith("strict decoding error: yaml: unmarshal errors:\n  " +
                                   "\n  ".join(lines) + ", " + ", ".join(unknown))
    status, obj, headers = await http.call("POST", DEPLOYS, raw=(DUPLICATED_YAML % "y").encode(),
                                           headers=yaml_type)
    assert status == 201 and warnings_of(headers) == lines + unknown
    assert obj["spec"]["paused"] is False


async def test_duplicate_fields_in_patches_and_apply(http: Http) -> None:
    created = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"},
               "spec": {"selector": {"matchLabels": {"app": "nginx"}},
                        "template": {"metadata": {"labels": {"app": "nginx"}},
                                     "spec": {"containers": [{"name": "nginx",
                                                              "image": "nginx:latest"}]}}}}
    status, _, _ = await http.call("POST", DEPLOYS, created)
    assert status == 201
    patch = (b'{"spec": {"unknown1": "val1", "unknownDupe": "a", "unknownDupe": "b", '
             b'"paused": true, "paused": false, "template": {"spec": {"containers": [{'
             b'"name": "nginx", "image": "nginx:latest", "unknownNested": "val1", '
             b'"imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}')
    problems = ['duplicate field "spec.unknownDupe"', 'duplicate field "spec.paused"',
                'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
                'unknown field "spec.template.spec.containers[0].unknownNested"',
                'unknown field "spec.unknown1"', 'unknown field "spec.unknownDupe"']
    for patch_type in ("application/merge-patch+json",
                       "application/strategic-merge-patch+json"):
        status, err, _ = await http.call("PATCH", f"{DEPLOYS}/p", raw=patch,
                                         headers={"Content-Type": patch_type},
                                         params={"fieldValidation": "Strict"})
        assert status == 400, err
        assert err["message"].endswith("strict decoding error: " + ", ".join(problems))
        status, _, headers = await http.call("PATCH", f"{DEPLOYS}/p", raw=patch,
                                             headers={"Content-Type": patch_type})
        assert status == 200 and warnings_of(headers) == problems
    apply = (b'{\n"apiVersion": "apps/v1",\n"kind": "Deployment",\n"metadata": {"name": "p"},'
             b'\n"spec": {\n"paused": false,\n"paused": true}}')
    params = {"fieldManager": "mgr", "force": "true"}
    status, err, _ = await http.call("PATCH", f"{DEPLOYS}/p", raw=apply, headers=APPLY_YAML,
                                     params={**params, "fieldValidation": "Strict"})
    assert status == 400
    assert err["message"] == ("error strict decoding YAML: error converting YAML to JSON: "
                              'yaml: unmarshal errors:\n  line 7: key "paused" already set '
                              "in map")
    status, obj, headers = await http.call("PATCH", f"{DEPLOYS}/p", raw=apply,
                                           headers=APPLY_YAML, params=params)
    assert status == 200 and obj["spec"]["paused"] is True
    assert warnings_of(headers) == ['line 7: key "paused" already set in map']
    status, _, headers = await http.call("PATCH", f"{DEPLOYS}/p", raw=apply, headers=APPLY_YAML,
                                         params={**params, "fieldValidation": "Ignore"})
    assert status == 200 and "Warning" not in headers


async def test_label_and_field_selectors(http: Http) -> None:
    for name, labels in [("l1", {"app": "web", "tier": "front"}), ("l2", {"app": "web"}),
                         ("l3", {"app": "db"}), ("l4", {})]:
        await http.call("POST", CMS, {"metadata": {"name": name, "labels": labels}})

    async def names(**params: str) -> list[str]:
        status, listing, _ = await http.call("GET", CMS, params=params)
        assert status == 200, listing
        return [i["metadata"]["name"] for i in listing["items"]]

    assert await names(labelSelector="app=web") == ["l1", "l2"]
    assert await names(labelSelector="app==web,tier") == ["l1"]
    assert await names(labelSelector="app!=web") == ["l3", "l4"]
    assert await names(labelSelector="app in (db, web),!tier") == ["l2", "l3"]
    assert await names(labelSelector="app notin (web)") == ["l3", "l4"]
    assert await names(fieldSelector="metadata.name=l3") == ["l3"]
    assert await names(fieldSelector="metadata.name!=l3,metadata.namespace=default") == [
        "l1", "l2", "l4"]
    status, err, _ = await http.call("GET", CMS, params={"fieldSelector": "spec.foo=1"})
    assert status == 400 and err["message"] == "field label not supported: spec.foo"
    status, err, _ = await http.call("GET", CMS, params={"labelSelector": "a in (b"})
    assert status == 400 and err["reason"] == "BadRequest"


async def test_pod_field_selectors(http: Http) -> None:
    pods = "/api/v1/namespaces/default/pods"
    for name, node in [("p1", "n1"), ("p2", "n2"), ("p3", None)]:
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        status, _, _ = await http.call("POST", pods, {"metadata": {"name": name}, "spec": spec})
        assert status == 201
    _, listing, _ = await http.call("GET", pods, params={"fieldSelector": "spec.nodeName=n2"})
    assert [i["metadata"]["name"] for i in listing["items"]] == ["p2"]
    _, listing, _ = await http.call("GET", "/api/v1/pods",
                                    params={"fieldSelector": "spec.nodeName="})
    assert [i["metadata"]["name"] for i in listing["items"]] == ["p3"]
    _, listing, _ = await http.call("GET", pods, params={"fieldSelector": "status.phase=Pending"})
    assert len(listing["items"]) == 3
    # booleans read as "true"/"false" and unset as false, as Kubernetes' pod field set has it
    _, listing, _ = await http.call("GET", pods,
                                    params={"fieldSelector": "spec.hostNetwork=false"})
    assert len(listing["items"]) == 3


async def test_pagination_across_1200_objects(api: Any, http: Http) -> None:
    client = api.client()
    await asyncio.gather(*(client.create(_CM, cm(f"page-{i:04d}"), "default")
                           for i in range(1200)))
    seen: list[str] = []
    token = None
    pages = 0
    list_rv = None
    while True:
        params = {"limit": "500"}
        if token:
            params["continue"] = token
        status, page, _ = await http.call("GET", CMS, params=params)
        assert status == 200
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        list_rv = list_rv or page["metadata"]["resourceVersion"]
        assert page["metadata"]["resourceVersion"] == list_rv  # one consistent snapshot
        token = page["metadata"].get("continue")
        if pages == 1:  # a write between pages must not show up in later pages
            await client.create(_CM, cm("page-9999"), "default")
        if not token:
            break
    assert pages == 3
    assert seen == [f"page-{i:04d}" for i in range(1200)]
    status, _err, _ = await http.call("GET", CMS, params={"limit": "5", "continue": "garbage!"})
    assert status == 400


async def test_watch_resumes_from_a_resource_version(api: Any, http: Http) -> None:
    _, a, _ = await http.call("POST", CMS, cm("wa"))
    _, b, _ = await http.call("POST", CMS, cm("wb"))
    b["data"] = {"changed": "yes"}
    _, b2, _ = await http.call("PUT", f"{CMS}/wb", b)
    await http.call("DELETE", f"{CMS}/wa")
    rv = a["metadata"]["resourceVersion"]
    events = await _watch(http, CMS, {"resourceVersion": rv, "timeoutSeconds": "1"})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "wb"), ("MODIFIED", "wb"), ("DELETED", "wa")]
    assert events[1]["object"]["metadata"]["resourceVersion"] == b2["metadata"][
        "resourceVersion"]
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revs == sorted(revs) and revs[0] > int(rv)


async def test_watch_from_zero_lists_then_follows_and_times_out(api: Any, http: Http) -> None:
    await http.call("POST", CMS, cm("z1"))

    async def later() -> None:
        await asyncio.sleep(0.3)
        await http.call("POST", CMS, cm("z2"))

    task = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await _watch(http, CMS, {"resourceVersion": "0", "timeoutSeconds": "2"})
    await task
    assert loop.time() - started >= 1.9
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "z1"), ("ADDED", "z2")]


async def test_watch_with_selectors_translates_events(api: Any, http: Http) -> None:
    _, obj, _ = await http.call("POST", CMS, {"metadata": {"name": "sel", "labels": {"a": "1"}}})
    rv = obj["metadata"]["resourceVersion"]
    obj["metadata"]["labels"] = {"a": "2"}
    _, obj, _ = await http.call("PUT", f"{CMS}/sel", obj)
    obj["metadata"]["labels"] = {"a": "1"}
    await http.call("PUT", f"{CMS}/sel", obj)
    events = await _watch(http, CMS, {"resourceVersion": rv, "labelSelector": "a=1",
                                      "timeoutSeconds": "1"})
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


async def test_watch_too_old_is_410_gone_event(tmp_path: Any) -> None:
    settings = ServerSettings(watch_cache_events=3, compaction_interval_seconds=0)
    async with api_server(tmp_path, settings=settings) as small, aiohttp.ClientSession() as s:
        http = Http(s, small.url)
        for i in range(6):
            await http.call("POST", CMS, cm(f"old-{i}"))
        _, first, _ = await http.call("GET", f"{CMS}/old-0")
        rv = first["metadata"]["resourceVersion"]
        # older than the cache's ring, but storage still has it: served from storage
        events = await _watch(http, CMS, {"resourceVersion": rv, "timeoutSeconds": "1"})
        assert [e["object"]["metadata"]["name"] for e in events] == [
            f"old-{i}" for i in range(1, 6)]
        current = await small.storage.current_revision()
        await small.storage.compact(current - 1)
        events = await _watch(http, CMS, {"resourceVersion": rv, "timeoutSeconds": "2"})
        assert [e["type"] for e in events] == ["ERROR"]
        status = events[0]["object"]
        assert status["code"] == 410 and status["reason"] == "Expired"
        assert status["message"].startswith(f"too old resource version: {rv}")


async def test_watch_bookmarks(api: Any, http: Http) -> None:
    api.server.settings = attrs.evolve(api.server.settings, bookmark_interval_seconds=0.2)
    _, obj, _ = await http.call("POST", CMS, cm("bm"))
    events = await _watch(http, CMS, {"resourceVersion": obj["metadata"]["resourceVersion"],
                                      "allowWatchBookmarks": "true", "timeoutSeconds": "1"})
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) >= int(
        obj["metadata"]["resourceVersion"])


async def test_finalizers_hold_deletion_until_removed(http: Http) -> None:
    body = cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await http.call("POST", CMS, body)
    status, obj, _ = await http.call("DELETE", f"{CMS}/fin")
    assert status == 200
    assert obj["metadata"]["deletionTimestamp"]
    status, obj, _ = await http.call("GET", f"{CMS}/fin")
    assert status == 200 and obj["metadata"]["deletionTimestamp"]
    obj["metadata"]["finalizers"].append("example.com/more")
    status, err, _ = await http.call("PUT", f"{CMS}/fin", obj)
    assert status == 422 and "no new finalizers" in err["message"]
    status, _, _ = await http.call("PATCH", f"{CMS}/fin",
                                   {"metadata": {"finalizers": None}},
                                   headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200
    status, _, _ = await http.call("GET", f"{CMS}/fin")
    assert status == 404


async def test_dry_run_writes_nothing(http: Http) -> None:
    status, obj, _ = await http.call("POST", CMS, cm("dry"), params={"dryRun": "All"})
    assert status == 201 and obj["metadata"]["name"] == "dry"
    status, _, _ = await http.call("GET", f"{CMS}/dry")
    assert status == 404
    _, real, _ = await http.call("POST", CMS, cm("dry2", a="1"))
    status, _, _ = await http.call("PATCH", f"{CMS}/dry2", {"data": {"a": "2"}},
                                   headers={"Content-Type": "application/merge-patch+json"},
                                   params={"dryRun": "All"})
    assert status == 200
    status, _, _ = await http.call("DELETE", f"{CMS}/dry2", params={"dryRun": "All"})
    assert status == 200
    _, now, _ = await http.call("GET", f"{CMS}/dry2")
    assert now == real
    status, _err, _ = await http.call("POST", CMS, cm("dry3"), params={"dryRun": "Some"})
    assert status == 400


async def test_patch_types(http: Http) -> None:
    await http.call("POST", CMS, cm("pt", a="1", b="2"))
    status, obj, _ = await http.call(
        "PATCH", f"{CMS}/pt", [{"op": "replace", "path": "/data/a", "value": "x"},
                               {"op": "remove", "path": "/data/b"}],
        headers={"Content-Type": "application/json-patch+json"})
    assert status == 200 and obj["data"] == {"a": "x"}
    status, err, _ = await http.call(
        "PATCH", f"{CMS}/pt", [{"op": "test", "path": "/data/a", "value": "nope"}],
        headers={"Content-Type": "application/json-patch+json"})
    assert status == 422 and "test failed" in err["message"]
    status, obj, _ = await http.call("PATCH", f"{CMS}/pt", {"data": {"c": "3"}},
                                     headers={"Content-Type": "application/merge-patch+json"})
    assert obj["data"] == {"a": "x", "c": "3"}
    status, _, _ = await http.call("PATCH", f"{CMS}/pt", {"data": {}},
                                   headers={"Content-Type": "text/plain"})
    assert status == 415
    status, _err, _ = await http.call(
        "PATCH", f"{CMS}/pt", {"metadata": {"resourceVersion": "1"}, "data": {"d": "4"}},
        headers={"Content-Type": "application/merge-patch+json"})
    assert status == 409


async def test_strategic_merge_patch_of_service_ports_by_port(http: Http) -> None:
    svc = {"metadata": {"name": "svc"}, "spec": {"selector": {"app": "a"}, "ports": [
        {"name": "http", "port": 80}, {"name": "https", "port": 443}]}}
    status, _, _ = await http.call("POST", "/api/v1/namespaces/default/services", svc)
    assert status == 201
    status, obj, _ = await http.call(
        "PATCH", "/api/v1/namespaces/default/services/svc",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"},
                            {"port": 8443, "name": "alt"}]}},
        headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert status == 200, obj
    ports = {p["port"]: p for p in obj["spec"]["ports"]}
    assert set(ports) == {80, 443, 8443}
    assert ports[80]["targetPort"] == 8080
    assert ports[443]["targetPort"] == 443


async def test_status_subresource_and_generation(http: Http) -> None:
    deps = "/apis/apps/v1/namespaces/default/deployments"
    dep = {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
           "status": {"replicas": 99}}
    status, obj, _ = await http.call("POST", deps, dep)
    assert status == 201
    assert obj["metadata"]["generation"] == 1
    assert "replicas" not in (obj.get("status") or {})  # status is not set on create
    obj["spec"]["replicas"] = 4
    obj["status"] = {"replicas": 7}
    _, obj, _ = await http.call("PUT", f"{deps}/d", obj)
    assert obj["metadata"]["generation"] == 2 and obj["spec"]["replicas"] == 4
    assert "replicas" not in (obj.get("status") or {})  # the object update ignores status
    obj["status"] = {"replicas": 3, "observedGeneration": 2}
    obj["spec"]["replicas"] = 1
    status, obj, _ = await http.call("PUT", f"{deps}/d/status", obj)
    assert status == 200
    assert obj["status"]["replicas"] == 3 and obj["spec"]["replicas"] == 4
    assert obj["metadata"]["generation"] == 2  # status changes do not bump generation
    status, scale, _ = await http.call("GET", f"{deps}/d/scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 4
    assert scale["status"] == {"replicas": 3, "selector": "app=d"}
    status, scale, _ = await http.call("PATCH", f"{deps}/d/scale", {"spec": {"replicas": 6}},
                                       headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200 and scale["spec"]["replicas"] == 6
    _, obj, _ = await http.call("GET", f"{deps}/d")
    assert obj["spec"]["replicas"] == 6 and obj["metadata"]["generation"] == 3


async def test_pod_binding(http: Http) -> None:
    pods = "/api/v1/namespaces/default/pods"
    await http.call("POST", pods, {"metadata": {"name": "b"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    status, _, _ = await http.call("POST", f"{pods}/b/binding", binding)
    assert status == 201
    _, pod, _ = await http.call("GET", f"{pods}/b")
    assert pod["spec"]["nodeName"] == "node-1"
    assert {"type": "PodScheduled", "status": "True"}.items() <= pod["status"]["conditions"][
        0].items()
    status, err, _ = await http.call("POST", f"{pods}/b/binding", binding)
    assert status == 409
    assert err["message"] == ('Operation cannot be fulfilled on pods/binding "b": pod b is '
                              'already assigned to node "node-1"')


async def test_graceful_pod_deletion(http: Http) -> None:
    pods = "/api/v1/namespaces/default/pods"
    await http.call("POST", pods, {"metadata": {"name": "g"}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}})
    status, pod, _ = await http.call("DELETE", f"{pods}/g")
    assert status == 200 and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    status, _, _ = await http.call("GET", f"{pods}/g")
    assert status == 200  # the node agent finishes the deletion
    status, _, _ = await http.call("DELETE", f"{pods}/g", {"gracePeriodSeconds": 0})
    assert status == 200
    status, _, _ = await http.call("GET", f"{pods}/g")
    assert status == 404
    await http.call("POST", pods, {"metadata": {"name": "u"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    await http.call("DELETE", f"{pods}/u")  # unscheduled: gone at once
    status, _, _ = await http.call("GET", f"{pods}/u")
    assert status == 404


async def test_delete_preconditions_and_collection(http: Http) -> None:
    _, _obj, _ = await http.call("POST", CMS, {"metadata": {"name": "dc1", "labels": {"g": "x"}}})
    status, err, _ = await http.call("DELETE", f"{CMS}/dc1",
                                     {"preconditions": {"uid": "not-the-uid"}})
    assert status == 409 and "Precondition failed" in err["message"]
    await http.call("POST", CMS, {"metadata": {"name": "dc2", "labels": {"g": "x"}}})
    await http.call("POST", CMS, {"metadata": {"name": "dc3", "labels": {"g": "y"}}})
    status, out, _ = await http.call("DELETE", CMS, params={"labelSelector": "g=x"})
    assert status == 200
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["dc1", "dc2"]
    _, listing, _ = await http.call("GET", CMS)
    assert [i["metadata"]["name"] for i in listing["items"]] == ["dc3"]


async def test_discovery_and_health(http: Http) -> None:
    status, api_versions, _ = await http.call("GET", "/api")
    assert api_versions["kind"] == "APIVersions" and api_versions["versions"] == ["v1"]
    _, groups, _ = await http.call("GET", "/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {"apps", "coordination.k8s.io", "discovery.k8s.io"} <= names
    _, v1, _ = await http.call("GET", "/api/v1")
    pods = next(r for r in v1["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and pods["kind"] == "Pod" and "po" in pods["shortNames"]
    assert "watch" in pods["verbs"]
    assert any(r["name"] == "pods/binding" for r in v1["resources"])
    _, apps, _ = await http.call("GET", "/apis/apps/v1")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["kind"]) == ("autoscaling", "Scale")
    _, group, _ = await http.call("GET", "/apis/apps")
    assert group["preferredVersion"]["groupVersion"] == "apps/v1"
    _, version, _ = await http.call("GET", "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    for path in ("/healthz", "/livez", "/readyz"):
        status, body, _ = await http.call("GET", path)
        assert (status, body) == (200, "ok")


async def test_system_namespaces_exist(http: Http) -> None:
    _, listing, _ = await http.call("GET", "/api/v1/namespaces")
    names = {i["metadata"]["name"] for i in listing["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


async def _watch(http: Http, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    events = []
    async with http.session.get(http.base + path, params={"watch": "true", **params}) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.strip():
                events.append(json.loads(line))
    return events



async def test_emptied_metadata_collections_are_omitted(http: Http) -> None:
    body = cm("emptied")
    body["metadata"].update({"labels": {"a": "b"}, "annotations": {},
                             "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                  "name": "owner", "uid": "u-1"}]})
    status, created, _ = await http.call("POST", "/api/v1/namespaces/default/configmaps",
                                         body)
    assert status == 201 and "annotations" not in created["metadata"]
    status, patched, _ = await http.call(
        "PATCH", "/api/v1/namespaces/default/configmaps/emptied",
        {"metadata": {"labels": {"a": None},
                      "ownerReferences": [{"$patch": "delete", "uid": "u-1"}]}},
        headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert status == 200, patched
    assert "labels" not in patched["metadata"]
    assert "ownerReferences" not in patched["metadata"]
    _, stored, _ = await http.call("GET", "/api/v1/namespaces/default/configmaps/emptied")
    assert not {"labels", "ownerReferences", "annotations"} & set(stored["metadata"])
