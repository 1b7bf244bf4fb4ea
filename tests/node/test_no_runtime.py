"""Without a usable container runtime, ``kubeling up`` still runs the control plane and
says why no node registered and what to install (needs no dockerd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeling.testing.cluster import KubelingProcess


def notes(proc: KubelingProcess) -> str:
    return "".join(line for line in proc.output if line.startswith("note:"))


@pytest.fixture
def no_daemon(tmp_path: Path) -> str:
    return f"unix://{tmp_path}/no-dockerd.sock"


def test_no_runtime_named_and_no_dockerd(tmp_path: Path, no_daemon: str) -> None:
    pytest.importorskip("kubeling_runtime_docker")
    pytest.importorskip("kubeling_kubelet")
    with KubelingProcess(tmp_path / "c", config={"node": {"docker": {"host": no_daemon}}}) \
            as proc:
        said = notes(proc)
        assert "no node registered" in said
        assert "node.runtime is not set" in said and "no-dockerd.sock" in said
        assert "apt-get install docker.io" in said
        assert "kubelet" not in "".join(line for line in proc.output
                                        if line.startswith("components:"))
        assert proc.kubectl("get", "nodes", "-o", "name").stdout == ""
        assert proc.kubectl("get", "namespaces").returncode == 0  # the control plane runs


def test_docker_named_but_unreachable(tmp_path: Path, no_daemon: str) -> None:
    pytest.importorskip("kubeling_runtime_docker")
    pytest.importorskip("kubeling_kubelet")
    config = {"node": {"runtime": "docker", "docker": {"host": no_daemon}}}
    with KubelingProcess(tmp_path / "c", config=config) as proc:
        said = notes(proc)
        assert "node.runtime: docker: cannot reach dockerd at" in said
        assert "no-dockerd.sock" in said and "systemctl start docker" in said


def test_unknown_runtime(tmp_path: Path) -> None:
    pytest.importorskip("kubeling_kubelet")
    with KubelingProcess(tmp_path / "c", config={"node": {"runtime": "rocket"}}) as proc:
        said = notes(proc)
        assert "no installed plugin provides the runtime 'rocket'" in said
        assert "pip install kubeling-runtime-rocket" in said
