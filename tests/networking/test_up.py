"""``kubeling up`` wires the proxy: the component starts with the configured proxier and
settings (here pointed at a test network namespace) and programs Services created with
kubectl; ``kubeling proxy cleanup`` removes the rules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubeling.testing.cluster import KubelingProcess
from kubeling.testing.proxier_contract import lab_available

pytest.importorskip("kubeling_proxy_iptables")
pytestmark = pytest.mark.skipif(lab_available() is not None, reason=str(lab_available()))


def nat(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"],
                          capture_output=True, text=True, check=True).stdout


def test_kubeling_up_runs_the_proxy(tmp_path: Path, kubectl_available: None) -> None:
    import secrets

    netns = f"kl-test-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    config = {"proxy": {"enabled": True, "min_sync_period_seconds": 0.2,
                        "iptables": {"netns": netns}},
              "node": {"name": "node-a"}}
    if subprocess.run([sys.executable, "-c", "import kubeling_dns"]).returncode == 0:
        config["dns"] = {"enabled": False}
    proc = KubelingProcess(tmp_path / "up", config=config)
    try:
        proc.start()
        assert "proxy" in "".join(proc.output)
        manifest = {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
        proc.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=True)
        svc = json.loads(proc.kubectl("get", "service", "web", "-o", "json",
                                      check=True).stdout)
        ip = svc["spec"]["clusterIP"]
        deadline = time.monotonic() + 15
        while f"{ip}/32" not in nat(netns) and time.monotonic() < deadline:
            time.sleep(0.2)
        rules = subprocess.run(["ip", "netns", "exec", netns, "iptables-save"],
                               capture_output=True, text=True).stdout
        assert f"-d {ip}/32" in rules  # a REJECT: no endpoints yet
        assert "10.96.0.1/32" in nat(netns) or "10.96.0.1/32" in rules  # kubernetes Svc
    finally:
        proc.stop()
    result = subprocess.run([sys.executable, "-m", "kubeling.cli", "proxy", "cleanup",
                             "--netns", netns], capture_output=True, text=True)
    try:
        assert result.returncode == 0, result.stderr
        assert "KUBE-" not in subprocess.run(["ip", "netns", "exec", netns, "iptables-save"],
                                             capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
