"""Third-party scheduler plugins: registered through the hook, enabled by config; Permit
and Bind extension points; a pip-installed plugin package under ``kubeling up``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubeling_scheduler_default.config import (
    PluginConfig,
    PluginRef,
    Plugins,
    PluginSet,
    Profile,
    SchedulerSettings,
)
from kubeling_scheduler_default.status import Code, Status

from kubeling import hookimpl
from kubeling.client import Client, HttpTransport
from kubeling.client.resources import PODS
from kubeling.testing.cluster import KubelingProcess

FIXTURE = Path(__file__).parent / "fixtures" / "kubeling-node-pool"
FAST = {"pod_initial_backoff_seconds": 0.1, "pod_max_backoff_seconds": 0.5}


class Gatekeeper:
    """Permit: hold pods labelled ``hold=yes`` until ``release`` is called."""

    name = "Gatekeeper"
    instances: list[Gatekeeper] = []

    def __init__(self, args, handle) -> None:
        self.handle = handle
        Gatekeeper.instances.append(self)

    def permit(self, state, pod, node):
        if pod.labels.get("hold") == "yes":
            return Status.wait(self.name), 30.0
        return None

    def release(self, key: str) -> None:
        self.handle.scheduler.waiting[key].allow()


class FlakyBinder:
    """Bind: fails the first attempt of each pod, then leaves it to DefaultBinder."""

    name = "FlakyBinder"
    failed: set[str] = set()

    def __init__(self, args, handle) -> None:
        pass

    async def bind(self, state, pod, node):
        if pod.key not in FlakyBinder.failed:
            FlakyBinder.failed.add(pod.key)
            return Status(Code.ERROR, "the binder is flaky")
        return Status.skip()


class ThirdParty:
    """A plugin object registered directly (as a test or an embedding would)."""

    @hookimpl
    def kubeling_register_scheduler_plugins(self, register) -> None:
        register("Gatekeeper", Gatekeeper)
        register("FlakyBinder", FlakyBinder)
        from kubeling_node_pool_inline import NodePoolInline

        register("NodePoolInline", NodePoolInline)


class NodePoolInline:
    name = "NodePoolInline"

    def __init__(self, args, handle) -> None:
        self.prefix = args["prefix"]

    def filter(self, state, pod, node_info):
        if node_info.name.startswith(self.prefix):
            return None
        return Status.unresolvable("node(s) not in the pod's node pool")


sys.modules.setdefault("kubeling_node_pool_inline", sys.modules[__name__])


@pytest.mark.parametrize("env", [[ThirdParty()]], indirect=True)
async def test_third_party_filter_enabled_by_profile(env) -> None:
    await env.nodes(2, name_prefix="blue-")
    await env.nodes(2, name_prefix="green-")
    profile = Profile(plugins=Plugins(multi_point=PluginSet(enabled=[
        PluginRef(name="NodePoolInline")])), plugin_config=[
        PluginConfig(name="NodePoolInline", args={"prefix": "green-"})])
    await env.scheduler(SchedulerSettings(profiles=[profile], **FAST))
    for i in range(4):
        await env.pod(f"p{i}")
    for i in range(4):
        assert (await env.bound(f"p{i}")).startswith("green-")
    # fits the empty blue nodes, but they are out of the pool; green ones hold 200m each
    await env.pod("big", cpu="3900m")
    event = await env.wait_event("big", "FailedScheduling")
    assert event["message"] == (
        "0/4 nodes are available: 2 Insufficient cpu, 2 node(s) not in the pod's node pool. "
        "preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling.")


@pytest.mark.parametrize("env", [[ThirdParty()]], indirect=True)
async def test_permit_wait_holds_binding_until_allowed(env) -> None:
    Gatekeeper.instances.clear()
    await env.nodes(1)
    profile = Profile(plugins=Plugins(permit=PluginSet(enabled=[PluginRef(name="Gatekeeper")])))
    sched = await env.scheduler(SchedulerSettings(profiles=[profile], **FAST))
    await env.pod("held", labels={"hold": "yes"})
    await env.pod("free")
    assert await env.bound("free") == "hollow-node-0"
    await asyncio.sleep(0.3)
    assert not (await env.client.get(PODS, "held", "default"))["spec"].get("nodeName")
    assert "default/held" in sched.waiting
    Gatekeeper.instances[-1].release("default/held")
    assert await env.bound("held") == "hollow-node-0"


@pytest.mark.parametrize("env", [[ThirdParty()]], indirect=True)
async def test_failed_binding_is_reported_and_retried(env) -> None:
    FlakyBinder.failed.clear()
    await env.nodes(1)
    profile = Profile(plugins=Plugins(bind=PluginSet(enabled=[PluginRef(name="FlakyBinder")])))
    sched = await env.scheduler(SchedulerSettings(profiles=[profile], **FAST))
    assert sched.profiles["default-scheduler"].plugin_names("bind") == [
        "DefaultBinder", "FlakyBinder"]
    # put FlakyBinder first: disable the default one at this point and re-add it after
    profile = Profile(plugins=Plugins(bind=PluginSet(
        enabled=[PluginRef(name="FlakyBinder"), PluginRef(name="DefaultBinder")],
        disabled=[PluginRef(name="*")])))
    sched.apply_settings(SchedulerSettings(profiles=[profile], **FAST))
    await env.pod("p")
    event = await env.wait_event("p", "FailedScheduling")
    assert event["message"] == "Binding rejected: the binder is flaky"
    assert await env.bound("p") == "hollow-node-0"
    assert sched.bind_errors == 1


@pytest.fixture(scope="module")
def node_pool_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The NodePool package installed with pip into a directory (as a user would)."""
    target = tmp_path_factory.mktemp("node-pool")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(FIXTURE)],
                   check=True, capture_output=True, timeout=300)
    return str(target)


def test_pip_installed_plugin_package_enabled_by_config(tmp_path: Path,
                                                        node_pool_path: str) -> None:
    current = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": os.pathsep.join([node_pool_path, *([current] if current else [])])}
    listed = subprocess.run([sys.executable, "-m", "kubeling.cli", "plugins", "--json"],
                            capture_output=True, text=True, env={**os.environ, **env},
                            timeout=120)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["node_pool"]["distribution"] == "kubeling-node-pool"
    assert rows["node_pool"]["registered"] == {"scheduler-plugin": ["NodePool"]}
    config = {
        "hollow_nodes": {"count": 4, "renew_interval_seconds": 30},
        "scheduler": {"profiles": [{
            "plugins": {"multi_point": {"enabled": [{"name": "NodePool", "weight": 5}]}},
            "plugin_config": [{"name": "NodePool", "args": {"prefix": "hollow-node-2"}}]}]},
    }
    with KubelingProcess(tmp_path, config=config, env=env) as proc:
        assert "scheduler" in "".join(proc.output) and "hollow-nodes" in "".join(proc.output)

        async def scenario() -> str:
            client = Client(HttpTransport(proc.url))
            try:
                body = {"metadata": {"name": "pooled"}, "spec": {"containers": [
                    {"name": "c", "image": "pause"}]}}
                await client.create(PODS, body, "default")
                pod = await client.wait_for(
                    PODS, "pooled", "default",
                    lambda p: p["status"].get("phase") == "Running", timeout=30)
                return pod["spec"]["nodeName"]
            finally:
                await client.close()

        assert asyncio.run(scenario()) == "hollow-node-2"
