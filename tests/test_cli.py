"""The kubeling command line: config errors, plugins, up, live config reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kubeling.testing.cluster import KubelingProcess, wait_until

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubeling.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PYTHONPATH holding the third-party test plugins, installed with pip like a user would
    (into a target directory, so the test environment itself is not changed)."""
    paths = {}
    for name in ("kubeling-hello", "kubeling-broken"):
        target = tmp_path_factory.mktemp(name)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(target),
                        str(FIXTURES / name)], check=True, capture_output=True, timeout=300)
        paths[name] = str(target)
    return paths


def with_path(*dirs: str) -> dict[str, str]:
    current = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([*dirs, *([current] if current else [])])}


def test_config_defaults_include_plugin_sections() -> None:
    result = run("config", "defaults")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert data["storage"]["backend"] == "sqlite"
    assert data["storage"]["sqlite"]["synchronous"] == "FULL"
    assert data["api"]["listen"] == "127.0.0.1:6443"


def test_config_check_names_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("api:\n  listen: 127.0.0.1:7443\nstorage:\n  backnd: sqlite\n")
    result = run("config", "check", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {bad}:4: storage.backnd: unknown key; did you mean 'backend'?")
    assert "Traceback" not in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text("storage:\n  backend: sqlite\n")
    result = run("config", "check", str(good))
    assert result.returncode == 0 and "ok" in result.stdout


def test_up_refuses_bad_config_without_traceback(tmp_path: Path) -> None:
    result = run("up", "--data-dir", str(tmp_path), "--set", "storage.backend=nosuch")
    assert result.returncode == 2
    assert "storage.backend: no installed plugin provides the storage 'nosuch'" in result.stderr
    assert "pip install kubeling-storage-nosuch" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("up", "--data-dir", str(tmp_path), "--set", "api.lisen=1")
    assert result.returncode == 2
    assert "api.lisen: unknown key; did you mean 'listen'?" in result.stderr
    result = run("up", "--data-dir", str(tmp_path), "--listen", "nonsense")
    assert result.returncode == 2 and "api.listen" in result.stderr


def test_plugins_lists_installed_distributions() -> None:
    result = run("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    sqlite = rows["storage_sqlite"]
    assert sqlite["distribution"] == "kubeling-storage-sqlite"
    assert "kubeling_register_storages" in sqlite["hooks"]
    assert sqlite["registered"]["storage"] == ["sqlite"]
    core = rows["kubeling-core"]
    assert "kind" in core["registered"]


def test_third_party_plugin_is_seen_and_used(plugin_path: dict[str, str],
                                             tmp_path: Path) -> None:
    env = with_path(plugin_path["kubeling-hello"])
    result = run("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    hello = rows["hello"]
    assert (hello["distribution"], hello["version"]) == ("kubeling-hello", "1.2.3")
    assert hello["registered"] == {"config-section": ["hello"],
                                   "admitter": ["hello-no-forbidden-names"]}
    assert "kubeling_register_commands" in hello["hooks"]
    text = run("plugins", "--hook", "kubeling_register_admitters", env=env).stdout
    assert "hello: kubeling-hello 1.2.3" in text and "storage_sqlite" not in text
    assert run("hello", env=env).stdout.strip() == "hello from kubeling-hello"
    defaults = yaml.safe_load(run("config", "defaults", env=env).stdout)
    assert defaults["hello"] == {"greeting": "hello", "forbidden_name": "forbidden"}
    # its admission plugin takes part in a running cluster
    with KubelingProcess(tmp_path / "up", env=env) as proc:
        result = proc.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "forbidden"}}))
        assert result.returncode == 1
        assert "refused by kubeling-hello" in result.stderr
    # and plugins.disabled turns it off
    cfg = tmp_path / "c.yaml"
    cfg.write_text("plugins:\n  disabled: [hello]\n")
    rows = {r["name"] for r in json.loads(run("plugins", "--json", "--config", str(cfg),
                                              env=env).stdout)}
    assert "hello" not in rows


def test_broken_plugin_is_named_in_one_line(plugin_path: dict[str, str], tmp_path: Path
                                            ) -> None:
    env = with_path(plugin_path["kubeling-broken"])
    result = run("plugins", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: plugin 'broken' from distribution kubeling-broken 0.0.1 "
                               "failed to import: ModuleNotFoundError: No module named "
                               "'kubeling_broken_missing_dependency'")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("plugins:\n  disabled: [broken]\n")
    assert run("plugins", "--config", str(cfg), env=env).returncode == 0


def test_up_writes_kubeconfig_serves_kubectl_and_stops_cleanly(tmp_path: Path,
                                                                kubectl_available: None) -> None:
    proc = KubelingProcess(tmp_path).start()
    try:
        doc = yaml.safe_load(proc.kubeconfig.read_text())
        assert doc["clusters"][0]["cluster"]["server"] == proc.url
        result = proc.kubectl("get", "namespaces")
        assert result.returncode == 0, result.stderr
        names = [line.split()[0] for line in result.stdout.splitlines()[1:]]
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
        assert result.stdout.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
        missing = proc.kubectl("get", "pod", "nope")
        assert missing.returncode == 1
        assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    finally:
        code = proc.stop()
    assert code == 0
    assert "stopping" in "".join(proc.output)


def test_config_changes_apply_live_and_bad_ones_are_ignored(plugin_path: dict[str, str],
                                                            tmp_path: Path) -> None:
    env = with_path(plugin_path["kubeling-hello"])
    proc = KubelingProcess(tmp_path, config={"hello": {"greeting": "hi"}}, env=env).start()
    try:
        time.sleep(0.5)  # let the file watcher start
        proc.config_path.write_text(yaml.safe_dump({"hello": {"greeting": "bonjour"}}))
        wait_until(lambda: any("greeting changed from hi to bonjour" in line
                               for line in proc.output), timeout=15)
        proc.config_path.write_text("hello:\n  greting: typo\n")
        wait_until(lambda: any("config change ignored" in line and "hello.greting" in line
                               for line in proc.output), timeout=15)
        assert proc.proc is not None and proc.proc.poll() is None  # still running
    finally:
        proc.stop()


