"""Volumes on disk: the atomic writer, live updates, items and modes, hostPath checks."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from kubeling_kubelet.volumes import VolumeError, VolumeManager

OBJECTS: dict[tuple[str, str], dict] = {}


def lookup(namespace: str, name: str) -> dict | None:
    return OBJECTS.get((namespace, name))


@pytest.fixture
def manager(tmp_path: Path) -> VolumeManager:
    OBJECTS.clear()
    return VolumeManager(tmp_path / "root", configmap=lookup, secret=lookup)


def pod(*volumes: dict, labels: dict | None = None) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1",
                         "labels": labels or {}},
            "spec": {"containers": [{"name": "c"}], "volumes": list(volumes)}}


def test_config_map_files_and_live_update(manager: VolumeManager) -> None:
    OBJECTS[("ns", "cm")] = {"data": {"a": "1", "b": "2"}}
    paths = manager.setup(pod({"name": "v", "configMap": {"name": "cm"}}))
    root = paths["v"]
    assert (root / "a").read_text() == "1" and (root / "b").read_text() == "2"
    assert (root / "a").is_symlink() and os.readlink(root / "..data").startswith("..")
    first_target = os.readlink(root / "..data")
    manager.setup(pod({"name": "v", "configMap": {"name": "cm"}}))
    assert os.readlink(root / "..data") == first_target  # unchanged: nothing rewritten
    OBJECTS[("ns", "cm")] = {"data": {"a": "one"}}
    manager.setup(pod({"name": "v", "configMap": {"name": "cm"}}))
    assert (root / "a").read_text() == "one"
    assert not (root / "b").exists()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("..")) == \
        sorted(["..data", os.readlink(root / "..data")])


def test_items_modes_and_secrets(manager: VolumeManager) -> None:
    OBJECTS[("ns", "s")] = {"data": {"key": base64.b64encode(b"\x00bin").decode()}}
    OBJECTS[("ns", "cm")] = {"data": {"a": "1", "b": "2"}}
    paths = manager.setup(pod(
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
        {"name": "cm", "configMap": {"name": "cm", "items": [
            {"key": "a", "path": "sub/dir/a.txt", "mode": 0o600}]}}))
    assert (paths["sec"] / "key").read_bytes() == b"\x00bin"
    assert oct((paths["sec"] / "key").stat().st_mode & 0o777) == oct(0o400)
    assert (paths["cm"] / "sub" / "dir" / "a.txt").read_text() == "1"
    assert oct((paths["cm"] / "sub/dir/a.txt").stat().st_mode & 0o777) == oct(0o600)
    assert not (paths["cm"] / "b").exists()


def test_missing_objects(manager: VolumeManager) -> None:
    with pytest.raises(VolumeError, match='volume "v": configmap "nope" not found'):
        manager.setup(pod({"name": "v", "configMap": {"name": "nope"}}))
    paths = manager.setup(pod({"name": "v", "configMap": {"name": "nope", "optional": True}}))
    assert list(paths["v"].iterdir()) == []
    OBJECTS[("ns", "cm")] = {"data": {"a": "1"}}
    with pytest.raises(VolumeError, match='configuration key "zz" not found'):
        manager.setup(pod({"name": "v", "configMap": {"name": "cm", "items": [
            {"key": "zz", "path": "x"}]}}))


def test_downward_and_projected(manager: VolumeManager) -> None:
    OBJECTS[("ns", "cm")] = {"data": {"color": "blue"}}
    volumes = [{"name": "d", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
               {"name": "p", "projected": {"sources": [
                   {"configMap": {"name": "cm"}},
                   {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {
                       "fieldPath": "metadata.namespace"}}]}}]}}]
    paths = manager.setup(pod(*volumes, labels={"b": "2", "a": "1"}))
    assert (paths["d"] / "labels").read_text() == 'a="1"\nb="2"'
    assert (paths["d"] / "name").read_text() == "p"
    assert (paths["p"] / "color").read_text() == "blue" and (paths["p"] / "ns").read_text() \
        == "ns"
    manager.setup(pod(*volumes, labels={"a": "changed"}))
    assert (paths["d"] / "labels").read_text() == 'a="changed"'


def test_host_path_types(manager: VolumeManager, tmp_path: Path) -> None:
    target = tmp_path / "made"
    manager.setup(pod({"name": "h", "hostPath": {"path": str(target),
                                                  "type": "DirectoryOrCreate"}}))
    assert target.is_dir()
    manager.setup(pod({"name": "h", "hostPath": {"path": str(target / "f"),
                                                  "type": "FileOrCreate"}}))
    assert (target / "f").is_file()
    with pytest.raises(VolumeError, match="is not a Directory"):
        manager.setup(pod({"name": "h", "hostPath": {"path": str(target / "f"),
                                                      "type": "Directory"}}))
    with pytest.raises(VolumeError, match="does not exist"):
        manager.setup(pod({"name": "h", "hostPath": {"path": str(tmp_path / "x"),
                                                      "type": "File"}}))


def test_mounts_and_teardown(manager: VolumeManager) -> None:
    spec = pod({"name": "e", "emptyDir": {}})
    paths = manager.setup(spec)
    container = {"name": "c", "volumeMounts": [
        {"name": "e", "mountPath": "/data", "readOnly": True},
        {"name": "e", "mountPath": "/sub", "subPath": "inner",
         "mountPropagation": "HostToContainer"}]}
    mounts = manager.mounts(spec, container, paths)
    assert [(m.container_path, m.read_only, m.propagation) for m in mounts] == [
        ("/data", True, "rprivate"), ("/sub", False, "rslave")]
    assert Path(mounts[1].host_path).is_dir()
    with pytest.raises(VolumeError, match="must be relative"):
        manager.mounts(spec, {"name": "c", "volumeMounts": [
            {"name": "e", "mountPath": "/x", "subPath": "../escape"}]}, paths)
    manager.teardown("uid-1")
    assert not manager.pod_dir("uid-1").exists()
