"""OpenAPI documents generated from the models and kinds (kubeling.api.openapi)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from kubeling.api.kinds import builtin_kinds
from kubeling.api.openapi import OpenAPIDocuments, build_v2, build_v3, schema_name
from kubeling.api.registry import KindInfo, KindRegistry
from kubeling.api.strategy import Strategy


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_every_reference_resolves() -> None:
    kinds = builtin_kinds()
    v3 = build_v3(kinds, "v1.32.0")
    schemas = v3["components"]["schemas"]
    for ref in refs(v3):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    v2 = build_v2(kinds, "v1.32.0")
    for ref in refs(v2):
        assert ref.removeprefix("#/definitions/") in v2["definitions"], ref


def test_descriptions_come_from_the_models() -> None:
    schemas = build_v3(builtin_kinds(), "v1.32.0")["components"]["schemas"]
    assert schemas["io.k8s.api.core.v1.Pod"]["description"] == \
        "A group of containers scheduled together on one node."
    # placeholder docstrings of generated wire types are not descriptions
    assert all(not s.get("description", "").startswith("Wire type") for s in schemas.values())
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
    assert spec["replicas"]["type"] == "integer" and spec["replicas"]["format"] == "int32"
    assert spec["template"]["allOf"][0]["$ref"].endswith("io.k8s.api.core.v1.PodTemplateSpec")
    requests = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["requests"]
    assert requests["additionalProperties"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}


def test_kinds_without_models_and_plugin_groups() -> None:
    widget = KindInfo(group="widgets.example.com", version="v1alpha1", kind="Widget",
                      plural="widgets", strategy=Strategy(), namespaced=False,
                      subresources=("status",))
    docs = OpenAPIDocuments(KindRegistry([*builtin_kinds(), widget]), "v1.32.0")
    index = docs.v3_index()
    url = index["paths"]["apis/widgets.example.com/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/widgets.example.com/v1alpha1?hash=")
    found = docs.v3("apis/widgets.example.com/v1alpha1")
    assert found is not None
    doc = orjson.loads(found[0])
    schema = doc["components"]["schemas"]["io.kubeling.widgets_example_com.v1alpha1.Widget"]
    assert schema["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "widgets.example.com", "kind": "Widget", "version": "v1alpha1"}]
    patch = doc["paths"]["/apis/widgets.example.com/v1alpha1/widgets/{name}"]["patch"]
    assert patch["operationId"] == "patchWidgetsExampleComV1alpha1Widget"
    status = doc["paths"]["/apis/widgets.example.com/v1alpha1/widgets/{name}/status"]
    assert status["put"]["operationId"] == "replaceWidgetsExampleComV1alpha1WidgetStatus"
    assert "/apis/widgets.example.com/v1alpha1/watch/widgets" in doc["paths"]
    # documents are built once and kept
    assert docs.v3("apis/widgets.example.com/v1alpha1") is found
    assert docs.v3("apis/nothing/v1") is None


def test_schema_names() -> None:
    from kubeling.api.objects.core_v1 import Pod

    assert schema_name(Pod) == "io.k8s.api.core.v1.Pod"

    class Local:
        pass

    assert schema_name(Local) == "io.kubeling.test_openapi.Local"


def test_documents_follow_the_registry() -> None:
    from kubeling.api.openapi import documents_for

    class Server:
        registry = KindRegistry(builtin_kinds())

    server = Server()
    first = documents_for(server)  # type: ignore[arg-type]
    assert documents_for(server) is first  # type: ignore[arg-type]
    server.registry.add(KindInfo(group="late.example.com", version="v1", kind="Late",
                                 plural="lates", strategy=Strategy()))
    later = documents_for(server)  # type: ignore[arg-type]
    assert later is not first
    assert "apis/late.example.com/v1" in later.v3_index()["paths"]
