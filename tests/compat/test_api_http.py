"""The documents and negotiations kubectl and the clients rely on, over raw HTTP:
OpenAPI v2/v3, aggregated discovery, Table and PartialObjectMetadata, field validation,
server-side apply and managedFields."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubeling.testing.cluster import KubelingProcess

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


class Response:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Http:
    """Plain HTTP calls to the cluster, returning errors instead of raising them."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, method: str, path: str, body: Any = None, *,
                 headers: dict[str, str] | None = None) -> Response:
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())


@pytest.fixture(scope="module")
def http(kubeling: KubelingProcess) -> Http:
    return Http(kubeling.url)


@pytest.fixture
def hns(http: Http) -> Iterator[str]:
    name = f"h-{uuid.uuid4().hex[:10]}"
    assert http("POST", "/api/v1/namespaces", {"metadata": {"name": name}}).status == 201
    yield name
    http("DELETE", f"/api/v1/namespaces/{name}")


# -- OpenAPI -----------------------------------------------------------------------------

def test_openapi_v3_index_and_documents(http: Http) -> None:
    index = http("GET", "/openapi/v3").json()
    assert {"api/v1", "apis/apps/v1"} <= set(index["paths"])
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    resp = http("GET", url)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, immutable"
    doc = resp.json()
    assert doc["openapi"].startswith("3.0")
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"][
        "x-kubernetes-map-type"] == "atomic"
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment",
                                                        "version": "v1"}
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= {
        p["name"] for p in patch["parameters"]}
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["put"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas
    # an outdated hash is redirected to the current document; ETags revalidate
    stale = http("GET", "/openapi/v3/apis/apps/v1?hash=0000")
    assert stale.status == 200 and stale.json() == doc  # urllib followed the redirect
    again = http("GET", url, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


def test_openapi_core_schemas_carry_merge_metadata_and_docs(http: Http) -> None:
    index = http("GET", "/openapi/v3").json()
    doc = http("GET", index["paths"]["api/v1"]["serverRelativeURL"]).json()
    schemas = doc["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    container = schemas["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    assert container["properties"]["image"] == {"description": "Image reference to run.",
                                                "type": "string"}
    ports = schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == \
        "int-or-string"
    pod_list = schemas["io.k8s.api.core.v1.PodList"]
    assert pod_list["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "PodList", "version": "v1"}]
    list_op = doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"]
    assert list_op["operationId"] == "listCoreV1NamespacedPod"
    assert {"labelSelector", "fieldSelector", "limit", "continue", "watch"} <= {
        p["name"] for p in list_op["parameters"]}
    assert "/api/v1/pods" in doc["paths"] and "/api/v1/watch/namespaces/{namespace}/pods" in \
        doc["paths"]


def test_openapi_v2_json_and_protobuf_negotiation(http: Http) -> None:
    resp = http("GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert resp.status == 200
    doc = resp.json()
    assert doc["swagger"] == "2.0"
    pod = doc["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert pod["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Pod", "version": "v1"}]
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    protobuf = http("GET", "/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert protobuf.status == 406
    status = protobuf.json()
    assert status["kind"] == "Status" and status["reason"] == "NotAcceptable"
    both = http("GET", "/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, "
                  "application/json"})
    assert both.status == 200 and both.json()["swagger"] == "2.0"
    assert http("GET", "/openapi/v3/apis/nope/v1").status == 404


# -- discovery ----------------------------------------------------------------------------

def test_aggregated_discovery(http: Http) -> None:
    core = http("GET", "/api", headers={"Accept": AGGREGATED + ",application/json"})
    assert core.headers["Content-Type"] == AGGREGATED
    doc = core.json()
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    [group] = doc["items"]
    assert "name" not in group["metadata"]
    [v1] = group["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    pods = next(r for r in v1["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert {"subresource": "status", "responseKind": {"group": "", "version": "v1",
                                                      "kind": "Pod"},
            "verbs": ["get", "patch", "update"]} in pods["subresources"]
    namespaces = next(r for r in v1["resources"] if r["resource"] == "namespaces")
    assert namespaces["scope"] == "Cluster" and namespaces["shortNames"] == ["ns"]

    groups = http("GET", "/apis", headers={"Accept": AGGREGATED}).json()
    apps = next(g for g in groups["items"] if g["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"]
                       if r["resource"] == "deployments")
    assert deployments["shortNames"] == ["deploy"]
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}

    beta = http("GET", "/apis", headers={
        "Accept": AGGREGATED.replace("v=v2;", "v=v2beta1;")})
    assert beta.json()["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    legacy = http("GET", "/apis", headers={"Accept": "application/json"})
    assert legacy.headers["Content-Type"] == "application/json"
    assert legacy.json()["kind"] == "APIGroupList"
    etag = http("GET", "/apis", headers={"Accept": AGGREGATED}).headers["ETag"]
    cached = http("GET", "/apis", headers={"Accept": AGGREGATED, "If-None-Match": etag})
    assert cached.status == 304


# -- Table and PartialObjectMetadata --------------------------------------------------------

def test_tables_and_partial_metadata(http: Http, hns: str) -> None:
    base = f"/api/v1/namespaces/{hns}/configmaps"
    for name in ("t1", "t2"):
        assert http("POST", base, {"metadata": {"name": name, "labels": {"t": "x"}},
                                   "data": {"a": "b"}}).status == 201
    table = http("GET", base, headers={"Accept": TABLE}).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert [r["cells"][:2] for r in table["rows"]] == [["t1", 1], ["t2", 1]]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["resourceVersion"]
    full = http("GET", base + "?includeObject=Object", headers={"Accept": TABLE}).json()
    assert full["rows"][0]["object"]["data"] == {"a": "b"}
    bare = http("GET", base + "?includeObject=None", headers={"Accept": TABLE}).json()
    assert "object" not in bare["rows"][0]
    one = http("GET", base + "/t1", headers={"Accept": TABLE}).json()
    assert [r["cells"][0] for r in one["rows"]] == ["t1"]
    paged = http("GET", base + "?limit=1", headers={"Accept": TABLE}).json()
    assert len(paged["rows"]) == 1 and paged["metadata"]["continue"]

    meta_list = http("GET", base, headers={
        "Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"}).json()
    assert meta_list["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"]["name"] for i in meta_list["items"]] == ["t1", "t2"]
    assert all("data" not in i for i in meta_list["items"])
    meta = http("GET", base + "/t2", headers={
        "Accept": "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"}).json()
    assert meta["kind"] == "PartialObjectMetadata" and meta["metadata"]["labels"] == {"t": "x"}
    assert "data" not in meta

    # watches convert every event's object the same way
    events = [json.loads(line) for line in http(
        "GET", base + "?watch=true&resourceVersion=0&timeoutSeconds=1",
        headers={"Accept": TABLE}).body.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert [c["name"] for c in events[0]["object"]["columnDefinitions"]] == \
        ["Name", "Data", "Age"]
    assert events[1]["object"]["columnDefinitions"] == []
    assert [e["object"]["rows"][0]["cells"][0] for e in events] == ["t1", "t2"]
    events = [json.loads(line) for line in http(
        "GET", base + "?watch=true&resourceVersion=0&timeoutSeconds=1",
        headers={"Accept": "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"}
    ).body.splitlines()]
    assert {e["object"]["kind"] for e in events} == {"PartialObjectMetadata"}
    assert all("data" not in e["object"] for e in events)


# -- field validation ---------------------------------------------------------------------

def test_field_validation_modes(http: Http, hns: str) -> None:
    base = f"/api/v1/namespaces/{hns}/configmaps"
    body = {"metadata": {"name": "v", "bogus": 1}, "data": {"a": "b"}, "extra": True}
    strict = http("POST", base + "?fieldValidation=Strict", body)
    assert strict.status == 400
    assert strict.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "metadata.bogus", unknown field "extra"')
    warn = http("POST", base + "?fieldValidation=Warn", body)
    assert warn.status == 201
    warnings = warn.headers.get_all("Warning")
    joined = ",".join(warnings)
    assert '299 - "unknown field \\"extra\\""' in joined
    assert '299 - "unknown field \\"metadata.bogus\\""' in joined
    assert "extra" not in warn.json()
    body["metadata"]["name"] = "i"
    ignore = http("POST", base + "?fieldValidation=Ignore", body)
    assert ignore.status == 201 and ignore.headers.get("Warning") is None
    bad = http("POST", base + "?fieldValidation=Loose", body)
    assert bad.status == 422
    assert bad.json()["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
        '"Loose": supported values: "", "Ignore", "Strict", "Warn"')
    patch = http("PATCH", base + "/v?fieldValidation=Strict", {"data": {"x": "y"}, "nope": 1},
                 headers={"Content-Type": "application/merge-patch+json"})
    assert patch.status == 400 and 'unknown field "nope"' in patch.json()["message"]


# -- server-side apply and managedFields ----------------------------------------------------

APPLY = {"Content-Type": "application/apply-patch+yaml"}


def test_apply_creates_and_records_managers(http: Http, hns: str) -> None:
    path = f"/api/v1/namespaces/{hns}/configmaps/sa"
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sa\ndata:\n  a: '1'\n"
    missing = http("PATCH", path, config.encode(), headers=APPLY)
    assert missing.status == 422
    assert missing.json()["message"] == ('PatchOptions.meta.k8s.io "" is invalid: '
                                         'fieldManager: Required value: is required for apply '
                                         'patch')
    created = http("PATCH", path + "?fieldManager=tool", config.encode(), headers=APPLY)
    assert created.status == 201
    obj = created.json()
    assert obj["data"] == {"a": "1"}
    [entry] = obj["metadata"]["managedFields"]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "fieldsType")} == {
        "manager": "tool", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1"}
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    same = http("PATCH", path + "?fieldManager=tool", config.encode(), headers=APPLY)
    assert same.status == 200
    assert same.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]

    # an update by another client: ownership moves without conflict, manager from the agent
    changed = http("PATCH", path, {"data": {"a": "2", "b": "3"}}, headers={
        "Content-Type": "application/merge-patch+json", "User-Agent": "my-script/1.0 (x)"})
    managers = {m["manager"]: m for m in changed.json()["metadata"]["managedFields"]}
    assert set(managers) == {"my-script"}  # the applier lost its only field
    assert managers["my-script"]["operation"] == "Update"
    assert managers["my-script"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}

    conflict = http("PATCH", path + "?fieldManager=tool", config.encode(), headers=APPLY)
    assert conflict.status == 409
    status = conflict.json()
    assert status["reason"] == "Conflict"
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "my-script" '
                                 'using v1: .data.a')
    forced = http("PATCH", path + "?fieldManager=tool&force=true", config.encode(),
                  headers=APPLY)
    assert forced.status == 200
    assert forced.json()["data"] == {"a": "1", "b": "3"}
    not_apply = http("PATCH", path + "?force=true", {"data": {}},
                     headers={"Content-Type": "application/merge-patch+json"})
    assert not_apply.status == 422
    assert "force: Forbidden: may not be specified for non-apply patch" in \
        not_apply.json()["message"]


def test_apply_dry_run_and_validation(http: Http, hns: str) -> None:
    base = f"/apis/apps/v1/namespaces/{hns}/deployments"
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    dry = http("PATCH", base + "/d?fieldManager=t&dryRun=All", config, headers=APPLY)
    assert dry.status == 201 and dry.json()["spec"]["replicas"] == 1  # defaulted
    assert http("GET", base + "/d").status == 404
    no_kind = http("PATCH", base + "/d?fieldManager=t", {**config, "kind": ""}, headers=APPLY)
    assert no_kind.status == 400 and "Object 'Kind' is missing" in no_kind.json()["message"]
    other = http("PATCH", base + "/other?fieldManager=t", config, headers=APPLY)
    assert other.status == 400
    assert other.json()["message"] == ("the name of the object (d) does not match the name on "
                                       "the URL (other)")
    managed = {**config, "metadata": {"name": "d", "managedFields": [{"manager": "x"}]}}
    refused = http("PATCH", base + "/d?fieldManager=t", managed, headers=APPLY)
    assert refused.status == 400
    assert refused.json()["message"] == "metadata.managedFields must be nil"
    invalid = {**config, "spec": {**config["spec"], "selector": {"matchLabels": {"x": "y"}}}}
    bad = http("PATCH", base + "/d?fieldManager=t", invalid, headers=APPLY)
    assert bad.status == 422 and bad.json()["reason"] == "Invalid"


def test_managed_fields_can_be_rewritten_and_cleared(http: Http, hns: str) -> None:
    path = f"/api/v1/namespaces/{hns}/configmaps/mf"
    assert http("POST", f"/api/v1/namespaces/{hns}/configmaps?fieldManager=maker",
                {"metadata": {"name": "mf", "labels": {"x": "1"}}, "data": {"a": "b"}}
                ).status == 201
    obj = http("GET", path).json()
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "maker" and entry["operation"] == "Update"
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:a": {}},
                                 "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}
    renamed = [{**entry, "manager": "renamed"}]
    resp = http("PATCH", path, [{"op": "replace", "path": "/metadata/managedFields",
                                 "value": renamed}],
                headers={"Content-Type": "application/json-patch+json"})
    assert [m["manager"] for m in resp.json()["metadata"]["managedFields"]] == ["renamed"]
    cleared = http("PATCH", path, {"metadata": {"managedFields": [{}]}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert "managedFields" not in cleared.json()["metadata"]
