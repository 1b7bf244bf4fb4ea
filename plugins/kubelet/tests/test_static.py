"""Static pod manifests: parsing, defaults, stable uids, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubeling_kubelet.static import ManifestError, parse_manifest

MANIFEST = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: c, image: busybox:1}]
"""


def test_parse(tmp_path: Path) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(MANIFEST)
    pod = parse_manifest(path, "node-1")
    meta = pod["metadata"]
    assert meta["name"] == "web-node-1" and meta["namespace"] == "default"
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["spec"]["restartPolicy"] == "Always"  # defaulted like the API does
    assert meta["annotations"]["kubernetes.io/config.source"] == "file"
    assert parse_manifest(path, "node-1")["metadata"]["uid"] == meta["uid"]
    assert parse_manifest(path, "node-2")["metadata"]["uid"] != meta["uid"]
    path.write_text(MANIFEST.replace("busybox:1", "busybox:2"))
    assert parse_manifest(path, "node-1")["metadata"]["uid"] != meta["uid"]


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Service\nmetadata: {name: x}", "expected a Pod manifest"),
    ("kind: Pod\nmetadata: {}", "metadata.name is required"),
    ("kind: Pod\nmetadata: {name: x}\nspec: {containers: []}", "spec.containers"),
    ("kind: [", "web.yaml"),
])
def test_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message):
        parse_manifest(path, "n")
