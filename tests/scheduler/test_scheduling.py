"""The scheduler end to end through the API: binding, events, conditions, profiles,
affinity and spread, preemption, live weights."""

from __future__ import annotations

import asyncio

import attrs
from kubeling_scheduler_default.config import (
    PluginConfig,
    PluginRef,
    Plugins,
    PluginSet,
    Profile,
    SchedulerSettings,
)
from kubeling_scheduler_default.scheduler import PRIORITY_CLASSES

from kubeling.api.errors import ApiError
from kubeling.client.resources import NODES, PODS
from kubeling.config import load_config

FAST = {"pod_initial_backoff_seconds": 0.1, "pod_max_backoff_seconds": 0.5}
ZONE = "topology.kubernetes.io/zone"


def condition(pod: dict, kind: str = "PodScheduled") -> dict:
    return next((c for c in pod["status"].get("conditions") or [] if c["type"] == kind), {})


async def test_pods_are_bound_run_and_get_scheduled_events(env) -> None:
    fleet = await env.nodes(3)
    await env.scheduler()
    for i in range(6):
        await env.pod(f"web-{i}", cpu="500m")
    nodes = set()
    for i in range(6):
        pod = await env.running(f"web-{i}")
        nodes.add(pod["spec"]["nodeName"])
        assert condition(pod)["status"] == "True"
        event = await env.wait_event(f"web-{i}", "Scheduled")
        assert event["message"] == f"Successfully assigned default/web-{i} to " \
                                   f"{pod['spec']['nodeName']}"
        assert event["type"] == "Normal" and event["source"]["component"] == "default-scheduler"
    assert nodes == set(fleet.names)  # least-allocated spreads them


async def test_failed_scheduling_event_and_condition_in_kubernetes_form(env) -> None:
    await env.nodes(2, cpu="1", name_prefix="small-")
    await env.nodes(1, cpu="8", name_prefix="tainted-", labels={})
    sched = await env.scheduler()
    # taint the big node so the reasons differ
    big = "tainted-0"
    await env.client.patch(NODES,
                           big, {"spec": {"taints": [{"key": "dedicated", "value": "gpu",
                                                      "effect": "NoSchedule"}]}})
    await asyncio.sleep(0.2)
    await env.pod("big", cpu="2")
    want = ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
            "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not "
            "helpful for scheduling, 2 No preemption victims found for incoming pod.")
    event = await env.wait_event("big", "FailedScheduling")
    assert event["message"] == want and event["type"] == "Warning"
    pod = await env.wait_pod("big", lambda p: condition(p).get("status") == "False")
    assert condition(pod)["reason"] == "Unschedulable"
    assert condition(pod)["message"] == want
    assert not pod["spec"].get("nodeName")
    assert sched.queue.pending()["unschedulable"] == ["default/big"] or \
        sched.queue.pending()["backoff"] == ["default/big"]


async def test_unschedulable_pod_is_scheduled_once_a_node_fits(env) -> None:
    await env.nodes(1, cpu="1", name_prefix="small-")
    await env.scheduler()
    await env.pod("big", cpu="3")
    await env.wait_event("big", "FailedScheduling")
    await env.nodes(1, cpu="4", name_prefix="large-")
    assert await env.bound("big") == "large-0"
    pod = await env.running("big")
    assert condition(pod)["status"] == "True"


async def test_scheduler_name_picks_the_profile_and_other_pods_are_left_alone(env) -> None:
    await env.nodes(2, cpu="4")
    packing = Profile(scheduler_name="bin-packing", plugin_config=[PluginConfig(
        name="NodeResourcesFit", args={"scoringStrategy": {"type": "MostAllocated"}})])
    await env.scheduler(SchedulerSettings(profiles=[Profile(), packing], **FAST))
    await env.pod("first", cpu="1", schedulerName="bin-packing")
    first = await env.bound("first")
    for i in range(3):
        await env.pod(f"packed-{i}", cpu="500m", schedulerName="bin-packing")
        assert await env.bound(f"packed-{i}") == first
    event = await env.wait_event("packed-0", "Scheduled")
    assert event["source"]["component"] == "bin-packing"
    await env.pod("spread", cpu="500m")  # default profile: least allocated
    assert await env.bound("spread") != first
    await env.pod("foreign", schedulerName="someone-else")
    await asyncio.sleep(0.5)
    foreign = await env.client.get(PODS, "foreign", "default")
    assert not foreign["spec"].get("nodeName") and not foreign["status"].get("conditions")
    assert await env.events("foreign") == []


async def test_anti_affinity_puts_each_replica_on_its_own_node(env) -> None:
    await env.nodes(3, zones=3)
    await env.scheduler()
    term = {"labelSelector": {"matchLabels": {"app": "db"}},
            "topologyKey": "kubernetes.io/hostname"}
    affinity = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    for i in range(4):
        await env.pod(f"db-{i}", labels={"app": "db"}, affinity=affinity)
    hosts = [await env.bound(f"db-{i}") for i in range(3)]
    assert len(set(hosts)) == 3
    event = await env.wait_event("db-3", "FailedScheduling")
    assert event["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")


async def test_affinity_follows_the_pods_it_names(env) -> None:
    await env.nodes(4, zones=2)
    await env.scheduler()
    await env.pod("cache", labels={"app": "cache"})
    cache_node = await env.bound("cache")
    zone = (await env.client.get(NODES, cache_node))["metadata"]["labels"][ZONE]
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": ZONE}]}}
    for i in range(4):
        await env.pod(f"web-{i}", labels={"app": "web"}, affinity=affinity)
    for i in range(4):
        node = await env.client.get(NODES, await env.bound(f"web-{i}"))
        assert node["metadata"]["labels"][ZONE] == zone


async def test_topology_spread_balances_zones(env) -> None:
    fleet = await env.nodes(6, zones=3)
    await env.scheduler()
    constraint = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "api"}}}]
    for i in range(9):
        await env.pod(f"api-{i}", labels={"app": "api"}, topologySpreadConstraints=constraint)
    zones: dict[str, int] = {}
    for i in range(9):
        node = await env.bound(f"api-{i}")
        zone = f"zone-{fleet.names.index(node) % 3}"
        zones[zone] = zones.get(zone, 0) + 1
    assert sorted(zones.values()) == [3, 3, 3]


async def test_preemption_evicts_lower_priority_pods_and_nominates_the_node(env) -> None:
    await env.client.create(PRIORITY_CLASSES, {"metadata": {"name": "low"}, "value": 10})
    await env.client.create(PRIORITY_CLASSES, {"metadata": {"name": "high"}, "value": 1000,
                                               "description": "important"})
    await env.nodes(1, cpu="2", name_prefix="only-")
    sched = await env.scheduler()
    await env.pod("low-a", cpu="1", priorityClassName="low")
    await env.pod("low-b", cpu="1", priorityClassName="low")
    await env.running("low-a")
    await env.running("low-b")
    vip = await env.pod("vip", cpu="1500m", priorityClassName="high")
    event = await env.wait_event("vip", "FailedScheduling")
    assert event["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    await env.wait_pod("vip", lambda p: p["status"].get("nominatedNodeName") == "only-0")
    assert await env.bound("vip") == "only-0"
    await env.running("vip")
    preempted = [await env.wait_event(n, "Preempted") for n in ("low-a", "low-b")]
    for e in preempted:
        assert e["message"] == f"Preempted by pod {vip['metadata']['uid']} on node only-0"
    remaining = (await env.client.list(PODS, "default"))["items"]
    assert [p["metadata"]["name"] for p in remaining] == ["vip"]
    assert sched.nominator.count == 0


async def test_pods_of_never_preempting_class_wait(env) -> None:
    await env.client.create(PRIORITY_CLASSES, {"metadata": {"name": "polite"}, "value": 1000,
                                               "preemptionPolicy": "Never"})
    await env.nodes(1, cpu="1")
    await env.scheduler()
    await env.pod("low", cpu="1")
    await env.running("low")
    await env.pod("polite", cpu="1", priorityClassName="polite")
    event = await env.wait_event("polite", "FailedScheduling")
    assert event["message"] == ("0/1 nodes are available: 1 Insufficient cpu. preemption: "
                                "not eligible due to preemptionPolicy=Never.")


async def test_scheduling_gates_hold_a_pod_until_removed(env) -> None:
    await env.nodes(1)
    await env.scheduler()
    await env.pod("gated", schedulingGates=[{"name": "example.com/wait"}])
    await asyncio.sleep(0.3)
    assert not (await env.client.get(PODS, "gated", "default"))["spec"].get("nodeName")
    await env.client.patch(PODS, "gated", {"spec": {"schedulingGates": None}}, "default")
    assert await env.bound("gated") == "hollow-node-0"


async def test_score_weights_change_live_on_config_reload(env) -> None:
    await env.nodes(1, cpu="4", name_prefix="ssd-", labels={"disk": "ssd"})
    await env.nodes(1, cpu="4", name_prefix="hdd-")
    config_cls = env.api.host.config_class
    before = load_config({"scheduler": {"pod_initial_backoff_seconds": 0.1}}, config_cls)
    sched = await env.scheduler(before.scheduler)
    env.api.host.pm.register(sched, name="component:scheduler")
    await env.pod("filler", cpu="3", nodeSelector={"disk": "ssd"})
    await env.bound("filler")
    prefers_ssd = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    await env.pod("one", cpu="100m", affinity=prefers_ssd)
    assert await env.bound("one") == "ssd-0"  # NodeAffinity (weight 2) beats free cpu
    after = load_config({"scheduler": {"pod_initial_backoff_seconds": 0.1, "profiles": [
        {"plugins": {"score": {"enabled": [{"name": "NodeResourcesFit", "weight": 20}]}}}]}},
        config_cls)
    env.api.host.call_config_changed(before, after)
    assert sched.profiles["default-scheduler"].weights["NodeResourcesFit"] == 20
    await env.pod("two", cpu="100m", affinity=prefers_ssd)
    assert await env.bound("two") == "hdd-0"
    env.api.host.pm.unregister(sched)


async def test_bad_profile_on_reload_keeps_the_running_one(env) -> None:
    sched = await env.scheduler()
    good = sched.settings
    bad = attrs.evolve(good, profiles=[Profile(plugins=Plugins(filter=PluginSet(
        enabled=[PluginRef(name="NoSuchPlugin")])))])
    try:
        sched.apply_settings(bad)
    except ValueError as exc:
        assert "no scheduler plugin named 'NoSuchPlugin'" in str(exc)
    else:
        raise AssertionError("expected the bad profile to be refused")
    assert sched.settings is good


async def test_priority_class_is_served_and_validated(env) -> None:
    created = await env.client.create(PRIORITY_CLASSES, {"metadata": {"name": "batch"},
                                                         "value": 100})
    assert created["preemptionPolicy"] == "PreemptLowerPriority"
    try:
        await env.client.patch(PRIORITY_CLASSES, "batch", {"value": 5})
    except ApiError as exc:
        assert exc.code == 422 and "value" in exc.message
    else:
        raise AssertionError("value must be immutable")
    for body, text in (({"metadata": {"name": "novalue"}}, "value: Required value"),
                       ({"metadata": {"name": "system-mine"}, "value": 1}, "reserved"),
                       ({"metadata": {"name": "huge"}, "value": 2_000_000_000},
                        "maximum allowed value")):
        try:
            await env.client.create(PRIORITY_CLASSES, body)
        except ApiError as exc:
            assert exc.code == 422 and text in exc.message, exc.message
        else:
            raise AssertionError(f"{body} should be refused")


async def test_own_status_update_does_not_retry_an_unschedulable_pod(env) -> None:
    # regression: the PodScheduled=False patch came back through the informer as a pod
    # update and sent the pod round the queue again (a second FailedScheduling each time)
    await env.nodes(1, cpu="1")
    sched = await env.scheduler()
    await env.pod("big", cpu="2")
    await env.wait_pod("big", lambda p: condition(p).get("status") == "False")
    await asyncio.sleep(1.0)  # several backoffs long (0.1 s .. 0.5 s)
    events = await env.events("big", "FailedScheduling")
    assert len(events) == 1 and events[0]["count"] == 1
    assert sched.queue.pending()["unschedulable"] == ["default/big"]
    await env.client.patch(PODS, "big", {"metadata": {"labels": {"retry": "yes"}}}, "default")
    await asyncio.sleep(1.0)
    events = await env.events("big", "FailedScheduling")
    assert events[0]["count"] == 2  # a real change does give it another try


async def test_pods_of_a_service_spread_by_default(env) -> None:
    from kubeling.client.resources import SERVICES

    await env.nodes(3, cpu="4")
    packing = Profile(scheduler_name="bin-packing", plugin_config=[PluginConfig(
        name="NodeResourcesFit", args={"scoringStrategy": {"type": "MostAllocated"}})])
    await env.scheduler(SchedulerSettings(profiles=[packing], **FAST))
    await env.client.create(SERVICES, {"metadata": {"name": "w"}, "spec": {
        "selector": {"app": "w"}, "ports": [{"port": 80}]}}, "default")
    await asyncio.sleep(0.3)  # the scheduler's Service informer
    packed, spread = set(), set()
    for i in range(6):
        await env.pod(f"alone-{i}", cpu="100m", labels={"app": "z"},
                      schedulerName="bin-packing")
        packed.add(await env.bound(f"alone-{i}"))
        await env.pod(f"served-{i}", cpu="100m", labels={"app": "w"},
                      schedulerName="bin-packing")
        spread.add(await env.bound(f"served-{i}"))
    assert len(packed) == 1  # nothing selects them: bin packing alone decides
    assert len(spread) == 3  # the Service's pods get the default topology spreading


async def test_pods_wait_for_their_claims_to_exist_and_be_bound(env) -> None:
    from kubeling.client.resources import PERSISTENTVOLUMECLAIMS as claims

    await env.nodes(2)
    await env.scheduler()
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
    await env.pod("db-0", volumes=volumes)
    event = await env.wait_event("db-0", "FailedScheduling")
    assert event["message"] == (
        '0/2 nodes are available: persistentvolumeclaim "data-db-0" not found. '
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    claim = {"metadata": {"name": "data-db-0"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    await env.client.create(claims, claim, "default")

    async def unbound_message() -> bool:
        return any(e["message"].startswith(
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. ")
            for e in await env.events("db-0", "FailedScheduling"))

    for _ in range(100):
        if await unbound_message():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(await env.events("db-0", "FailedScheduling"))
    pod = await env.client.get(PODS, "db-0", "default")
    assert not pod["spec"].get("nodeName")
    # a claim that is bound lets the pod be scheduled
    await env.client.create(claims, {**claim, "metadata": {"name": "bound"},
                                     "spec": {**claim["spec"], "volumeName": "pv-1"}},
                            "default")
    await env.pod("db-1", volumes=[{"name": "data",
                                    "persistentVolumeClaim": {"claimName": "bound"}}])
    assert await env.bound("db-1")
    # pods without claims are not held up
    await env.pod("plain")
    assert await env.bound("plain")


async def test_preemption_prefers_victims_no_disruption_budget_protects(env) -> None:
    from kubeling.client.resources import PODDISRUPTIONBUDGETS

    await env.client.create(PRIORITY_CLASSES, {"metadata": {"name": "low"}, "value": 10})
    await env.client.create(PRIORITY_CLASSES, {"metadata": {"name": "high"}, "value": 1000})
    fleet = await env.nodes(2, cpu="1", name_prefix="pair-")
    # the protected pod starts last: without budgets, the youngest victim's node would win
    await env.pod("free", cpu="1", labels={"app": "batch"}, priorityClassName="low",
                  nodeName=fleet.names[1])
    await env.running("free")
    await asyncio.sleep(1.1)  # start times have a resolution of a second
    await env.pod("guarded", cpu="1", labels={"app": "db"}, priorityClassName="low",
                  nodeName=fleet.names[0])
    await env.running("guarded")
    budget = await env.client.create(PODDISRUPTIONBUDGETS, {
        "metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}, "default")
    await env.client.update_status(PODDISRUPTIONBUDGETS, {**budget, "status": {
        "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
        "expectedPods": 1, "observedGeneration": budget["metadata"]["generation"]}})
    await env.scheduler()
    await asyncio.sleep(0.2)
    await env.pod("vip", cpu="1", priorityClassName="high")
    assert await env.bound("vip", timeout=15) == fleet.names[1]
    await env.wait_event("free", "Preempted")
    names = {p["metadata"]["name"] for p in (await env.client.list(PODS, "default"))["items"]
             if not p["metadata"].get("deletionTimestamp")}
    assert names == {"guarded", "vip"}
