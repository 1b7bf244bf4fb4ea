"""The framework's parts: queue, cache with assumed pods, profiles, the algorithm, preemption."""

from __future__ import annotations

import pytest
from kubeling_scheduler_default.cache import Cache
from kubeling_scheduler_default.config import PluginRef, Plugins, PluginSet, Profile
from kubeling_scheduler_default.framework import (
    CycleState,
    FitError,
    num_feasible_nodes_to_find,
)
from kubeling_scheduler_default.plugins.defaultpreemption import (
    Victims,
    more_important,
    pick_one_node,
)
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.queue import SchedulingQueue
from kubeling_scheduler_default.status import Code, Status
from kubeling_scheduler_default.testing import framework_with, make_node, make_pod, pod_info


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- percentageOfNodesToScore ------------------------------------------------------------------


@pytest.mark.parametrize("percentage,nodes,expected", [
    (0, 50, 50), (0, 100, 100), (0, 1000, 420), (0, 5000, 500), (0, 6000, 300),
    (0, 10000, 500), (30, 1000, 300), (1, 1000, 100), (100, 5000, 5000)])
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_framework_stops_at_the_sample_and_rotates() -> None:
    nodes = [make_node(f"n{i:03d}") for i in range(200)]
    fw = framework_with(nodes, profile=Profile(percentage_of_nodes_to_score=50))
    state = CycleState()
    pod = pod_info("p", cpu="100m")
    fw.run_pre_filter(state, pod)
    from kubeling_scheduler_default.framework import Diagnosis

    first, evaluated = fw.find_feasible(state, pod, Diagnosis())
    assert len(first) == 100 and evaluated == 100
    second, _ = fw.find_feasible(state, pod, Diagnosis())
    assert set(first.tolist()).isdisjoint(second.tolist())


# -- queue -------------------------------------------------------------------------------------


def test_active_queue_orders_by_priority_then_age() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    for name, prio in (("low", 0), ("high", 100), ("low2", 0)):
        clock.now += 1
        q.add(pod_info(name, priority=prio))
    assert [q.pop_nowait().pod.name for _ in range(3)] == ["high", "low", "low2"]
    assert q.pop_nowait() is None


def test_backoff_grows_from_1s_to_10s() -> None:
    q = SchedulingQueue()
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pods_move_on_events_that_may_help() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod_info("p"))
    item = q.pop_nowait()
    q.add_unschedulable(item, q.scheduling_cycle, {"NodeResourcesFit"})
    assert q.pending()["unschedulable"] == ["default/p"]
    assert q.move_all("AssignedPodAdd") == 0  # adding pods frees no resources
    clock.now += 5  # past its 1 s backoff
    assert q.move_all("AssignedPodDelete") == 1
    assert q.pending()["active"] == ["default/p"]


def test_moved_pod_still_backing_off_waits_in_backoff() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod_info("p"))
    item = q.pop_nowait()
    q.add_unschedulable(item, q.scheduling_cycle, {"TaintToleration"})
    q.move_all("NodeUpdate")
    assert q.pending()["backoff"] == ["default/p"]
    assert q.flush_backoff() == pytest.approx(1.0)
    clock.now += 1.01
    q.flush_backoff()
    assert q.pop_nowait().pod.name == "p"


def test_event_during_the_cycle_sends_the_pod_to_backoff() -> None:
    q = SchedulingQueue(clock=Clock())
    q.add(pod_info("p"))
    item = q.pop_nowait()
    cycle = q.scheduling_cycle
    q.move_all("NodeAdd")  # arrives while "p" is being scheduled
    q.add_unschedulable(item, cycle, {"NodeResourcesFit"})
    assert q.pending()["backoff"] == ["default/p"]


def test_unschedulable_leftovers_retry_after_five_minutes() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.add(pod_info("p"))
    q.add_unschedulable(q.pop_nowait(), q.scheduling_cycle, {"NodeResourcesFit"})
    clock.now += 299
    q.flush_unschedulable_leftover()
    assert q.pending()["unschedulable"] == ["default/p"]
    clock.now += 2
    q.flush_unschedulable_leftover()
    assert q.pending()["active"] == ["default/p"]


def test_gated_pods_wait_until_the_gates_go() -> None:
    def gate(pod: PodInfo) -> Status:
        return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE) if pod.scheduling_gates else Status()

    q = SchedulingQueue(pre_enqueue=gate)
    q.add(pod_info("p", spec={"schedulingGates": [{"name": "wait"}]}))
    assert q.pop_nowait() is None and q.pending()["gated"] == ["default/p"]
    q.update(pod_info("p"))
    assert q.pop_nowait().pod.name == "p"


def test_deleted_pods_leave_the_queue() -> None:
    q = SchedulingQueue()
    q.add(pod_info("p"))
    q.delete("default/p")
    assert q.pop_nowait() is None and len(q) == 0


# -- cache -------------------------------------------------------------------------------------


def test_assumed_pod_is_confirmed_by_the_bound_pod_not_counted_twice() -> None:
    # regression: the bound pod (nodeName set) once counted a second time next to the
    # assumption, so a node took more pods than it had room for
    cache = Cache()
    cache.add_node(make_node("a", cpu="1"))
    pending = PodInfo(make_pod("p", cpu="600m"))
    cache.assume_pod(pending, "a")
    assert cache.table.req[0, 0] == 600
    cache.add_pod(pending)  # the informer's bound pod, fast path
    bound = PodInfo(make_pod("p", cpu="600m", node="a", uid=pending.uid))
    cache.update_pod(bound)
    assert cache.table.req[0, 0] == 600 and len(cache.nodes["a"].pods) == 1
    assert not cache.is_assumed("default/p")


def test_forgetting_an_assumed_pod_frees_its_room() -> None:
    cache = Cache()
    cache.add_node(make_node("a", cpu="1"))
    pod = PodInfo(make_pod("p", cpu="600m", host_port=80))
    cache.assume_pod(pod, "a")
    cache.forget_pod(pod)
    assert cache.table.req[0, 0] == 0 and not cache.table.has_ports[0]
    assert pod.node_name == "" and cache.pod("default/p") is None


def test_deleted_node_stays_a_ghost_until_its_pods_go() -> None:
    cache = Cache()
    cache.add_node(make_node("a"))
    cache.add_pod(PodInfo(make_pod("p", node="a")))
    cache.remove_node("a")
    assert cache.node_count == 0 and "a" in cache.nodes
    cache.remove_pod("default/p")
    assert "a" not in cache.nodes
    cache.add_node(make_node("b"))
    assert cache.table.names[0] == "b"  # the slot is reused


# -- profiles ----------------------------------------------------------------------------------


def test_profile_merges_like_kubernetes() -> None:
    profile = Profile(plugins=Plugins(score=PluginSet(
        enabled=[PluginRef(name="NodeResourcesBalancedAllocation", weight=7)],
        disabled=[PluginRef(name="ImageLocality")])))
    fw = framework_with([make_node("a")], profile=profile)
    assert "ImageLocality" not in fw.plugin_names("score")
    assert fw.weights["NodeResourcesBalancedAllocation"] == 7
    assert fw.weights["TaintToleration"] == 3 and fw.weights["InterPodAffinity"] == 2
    none = Profile(plugins=Plugins(filter=PluginSet(disabled=[PluginRef(name="*")])))
    assert framework_with([make_node("a")], profile=none).plugin_names("filter") == []


def test_unknown_plugins_and_bad_args_are_refused() -> None:
    with pytest.raises(ValueError, match="no scheduler plugin named 'Nope'"):
        framework_with([], profile=Profile(plugins=Plugins(
            filter=PluginSet(enabled=[PluginRef(name="Nope")]))))
    from kubeling_scheduler_default.config import PluginConfig

    with pytest.raises(ValueError, match="unknown InterPodAffinity args: typo"):
        framework_with([], profile=Profile(plugin_config=[
            PluginConfig(name="InterPodAffinity", args={"typo": 1})]))


def test_no_nodes_is_a_fit_error() -> None:
    fw = framework_with([])
    with pytest.raises(FitError, match="0/0 nodes are available"):
        fw.schedule(CycleState(), pod_info("p"))


# -- preemption --------------------------------------------------------------------------------


def test_victims_are_the_fewest_lowest_priority_pods() -> None:
    pods = [make_pod("low-a", cpu="1", priority=1, node="a"),
            make_pod("low-b", cpu="1", priority=2, node="a"),
            make_pod("mid", cpu="1", priority=50, node="a"),
            make_pod("high", cpu="1", priority=1000, node="a")]
    fw = framework_with([make_node("a", cpu="4")], pods)
    preempt = fw.plugin("DefaultPreemption")
    pod = pod_info("vip", cpu="2", priority=100)
    state = CycleState()
    fw.run_pre_filter(state, pod)
    victims, status = preempt.select_victims(state, pod, fw.handle.cache.nodes["a"].clone())
    assert status.is_success()
    assert [v.name for v in victims] == ["low-b", "low-a"]  # mid is reprieved first
    assert len(fw.handle.cache.nodes["a"].pods) == 4  # the real NodeInfo is untouched


def test_preemption_picks_the_node_with_cheapest_victims() -> None:
    def victims(node: str, *prios: int) -> Victims:
        return Victims(node, [pod_info(f"{node}{i}", priority=p) for i, p in enumerate(prios)])

    best = pick_one_node([victims("a", 10, 1), victims("b", 5, 5, 5), victims("c", 5, 4)])
    assert best is not None and best.node == "c"
    assert more_important(pod_info("x", priority=2), pod_info("y", priority=1))


def test_preemption_not_eligible_with_policy_never() -> None:
    fw = framework_with([make_node("a", cpu="1")], [make_pod("low", cpu="1", node="a")])
    pod = pod_info("p", cpu="1", priority=10, spec={"preemptionPolicy": "Never"})
    state = CycleState()
    with pytest.raises(FitError) as err:
        fw.schedule(state, pod)
    nominated, status = fw.run_post_filter(state, pod, err.value.diagnosis.node_statuses)
    assert nominated is None
    assert status.message() == "preemption: not eligible due to preemptionPolicy=Never."


def test_preemption_message_when_nothing_helps() -> None:
    nodes = [make_node("a", cpu="1"), make_node("b", cpu="1",
                                                 taints=[{"key": "k", "effect": "NoSchedule"}])]
    fw = framework_with(nodes, [make_pod("same", cpu="1", node="a", priority=5)])
    pod = pod_info("p", cpu="1", priority=5)
    state = CycleState()
    with pytest.raises(FitError) as err:
        fw.schedule(state, pod)
    _, status = fw.run_post_filter(state, pod, err.value.diagnosis.node_statuses)
    err.value.diagnosis.post_filter_msg = status.message()
    assert str(err.value) == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: }. "
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming "
        "pod, 1 Preemption is not helpful for scheduling.")


def test_reserve_failure_unreserves_the_plugins_that_reserved() -> None:
    log: list[str] = []

    class Ledger:
        def __init__(self, name: str, fail: bool) -> None:
            self.name = name
            self.fail = fail

        def reserve(self, state, pod, node):
            log.append(f"reserve {self.name}")
            return Status.unschedulable("no room in the ledger") if self.fail else None

        def unreserve(self, state, pod, node):
            log.append(f"unreserve {self.name}")

    registry = {"First": lambda args, handle: Ledger("First", False),
                "Second": lambda args, handle: Ledger("Second", True)}
    profile = Profile(plugins=Plugins(reserve=PluginSet(enabled=[
        PluginRef(name="First"), PluginRef(name="Second")])))
    fw = framework_with([make_node("a")], profile=profile, registry=registry)
    status = fw.run_reserve(CycleState(), pod_info("p"), "a")
    assert status.code is Code.UNSCHEDULABLE and status.plugin == "Second"
    # as Kubernetes: all reserve plugins are unreserved, in reverse order
    assert log == ["reserve First", "reserve Second", "unreserve Second", "unreserve First"]
