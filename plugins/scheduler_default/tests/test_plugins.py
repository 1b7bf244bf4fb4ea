"""Each default plugin against its pure helpers, and its vectorized path against them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from kubeling_scheduler_default.framework import CycleState, FitError
from kubeling_scheduler_default.plugins import (
    imagelocality,
    nodeaffinity,
    nodename,
    nodeports,
    nodeunschedulable,
    tainttoleration,
)
from kubeling_scheduler_default.plugins import noderesources as nr
from kubeling_scheduler_default.plugins.helpers import default_normalize
from kubeling_scheduler_default.plugins.interpodaffinity import (
    ERR_AFFINITY,
    ERR_ANTI_AFFINITY,
    ERR_EXISTING_ANTI_AFFINITY,
    affinity_state_from_nodes,
)
from kubeling_scheduler_default.plugins.podtopologyspread import skew_ok
from kubeling_scheduler_default.podinfo import PodInfo, Taint, Toleration
from kubeling_scheduler_default.status import Code
from kubeling_scheduler_default.testing import (
    framework_with,
    make_node,
    make_pod,
    node_info,
    pod_info,
)

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def anti(labels: dict[str, str], key: str = HOST) -> dict:
    return {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}}


def affinity(labels: dict[str, str], key: str = HOST) -> dict:
    return {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}}


def run_filter(fw, pod: PodInfo, name: str):
    """(batch verdict per node name, per-node status per node name) of one plugin."""
    state = CycleState()
    fw.run_pre_filter(state, pod)
    plugin = fw.plugin(name)
    table = fw.handle.cache.table
    per_node = {info.name: plugin.filter(state, pod, info) for info in table.live_infos()}
    batch = plugin.filter_nodes(state, pod, table) if name not in state.skip_filter else None
    verdict = {info.name: (True if batch is None else bool(batch[info.slot]))
               for info in table.live_infos()}
    return verdict, per_node


def assert_agree(fw, pod: PodInfo, name: str) -> dict:
    verdict, per_node = run_filter(fw, pod, name)
    for node, status in per_node.items():
        ok = status is None or status.is_success()
        assert verdict[node] == ok, (node, status)
    return per_node


# -- NodeName, NodeUnschedulable, NodePorts -----------------------------------------------------


def test_nodename_fits_only_the_named_node() -> None:
    info = node_info(make_node("a"))
    assert nodename.fits(pod_info("p"), info)
    assert nodename.fits(pod_info("p", node="a"), info)
    assert not nodename.fits(pod_info("p", node="b"), info)
    fw = framework_with([make_node("a"), make_node("b")])
    statuses = assert_agree(fw, pod_info("p", node="b"), "NodeName")
    assert statuses["a"].reasons == (nodename.ERR_REASON,)
    assert statuses["a"].code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_unschedulable_node_unless_tolerated() -> None:
    cordoned = node_info(make_node("a", unschedulable=True))
    assert not nodeunschedulable.fits(pod_info("p"), cordoned)
    tolerant = pod_info("p", spec={"tolerations": [
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
         "effect": "NoSchedule"}]})
    assert nodeunschedulable.fits(tolerant, cordoned)
    fw = framework_with([make_node("a", unschedulable=True), make_node("b")])
    statuses = assert_agree(fw, pod_info("p"), "NodeUnschedulable")
    assert statuses["a"].reasons == ("node(s) were unschedulable",)


def test_host_ports_conflict_by_ip_and_protocol() -> None:
    used = {("TCP", 80): {"0.0.0.0": 1}}
    assert nodeports.ports_conflict([("10.0.0.1", "TCP", 80)], used)
    assert not nodeports.ports_conflict([("0.0.0.0", "UDP", 80)], used)
    used = {("TCP", 80): {"10.0.0.1": 1}}
    assert not nodeports.ports_conflict([("10.0.0.2", "TCP", 80)], used)
    assert nodeports.ports_conflict([("0.0.0.0", "TCP", 80)], used)
    node = make_node("a")
    busy = node_info(node, [make_pod("x", host_port=8080, node="a")])
    assert not nodeports.fits(pod_info("p", host_port=8080), busy)
    assert nodeports.fits(pod_info("p", host_port=8081), busy)
    fw = framework_with([make_node("a"), make_node("b")],
                        [make_pod("x", host_port=8080, node="a")])
    statuses = assert_agree(fw, pod_info("p", host_port=8080), "NodePorts")
    assert statuses["a"].reasons == (nodeports.ERR_REASON,)
    assert statuses["a"].code is Code.UNSCHEDULABLE


# -- NodeResourcesFit ------------------------------------------------------------------------------


def test_insufficient_resources_lists_every_reason_in_order() -> None:
    node = make_node("a", cpu="1", memory="1Gi", pods=1, extended={"example.com/gpu": "1"})
    info = node_info(node, [make_pod("x", cpu="500m", memory="512Mi", node="a")])
    pod = pod_info("p", cpu="600m", memory="600Mi", requests={"example.com/gpu": "2"})
    assert nr.insufficient_resources(pod, info) == [
        "Too many pods", "Insufficient cpu", "Insufficient memory",
        "Insufficient example.com/gpu"]
    assert nr.insufficient_resources(pod, info, ignored=frozenset({"example.com/gpu"}))[-1] \
        == "Insufficient memory"
    assert nr.insufficient_resources(pod_info("q", cpu="500m"),
                                     node_info(make_node("b", cpu="1"))) == []


def test_pod_requests_count_init_and_sidecar_containers() -> None:
    spec = {"initContainers": [
        {"name": "init", "resources": {"requests": {"cpu": "2"}}},
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}],
        "overhead": {"cpu": "50m"}}
    pod = pod_info("p", cpu="500m", spec=spec)
    # max(2 cores for the init container, 500m + 100m sidecar) + 50m overhead
    assert pod.requests["cpu"] == 2050
    assert pod_info("q").non_zero_cpu == 100
    assert pod_info("q").non_zero_memory == 200 * 1024 * 1024


@pytest.mark.parametrize("strategy,expected", [
    ("LeastAllocated", [(4000 - 1100) * 100 // 4000, (4000 - 3100) * 100 // 4000]),
    ("MostAllocated", [1100 * 100 // 4000, 3100 * 100 // 4000]),
])
def test_resource_scores(strategy: str, expected: list[int]) -> None:
    nodes = [make_node("a", cpu="4", memory="16Gi"), make_node("b", cpu="4", memory="16Gi")]
    pods = [make_pod("x", cpu="100m", memory="0", node="a"),
            make_pod("y", cpu="2100m", memory="0", node="b")]
    args = {"scoringStrategy": {"type": strategy, "resources": [{"name": "cpu", "weight": 1}]}}
    from kubeling_scheduler_default.config import PluginConfig, Profile

    fw = framework_with(nodes, pods, profile=Profile(plugin_config=[
        PluginConfig(name="NodeResourcesFit", args=args)]))
    plugin = fw.plugin("NodeResourcesFit")
    pod = pod_info("p", cpu="1", memory="0")
    infos = [fw.handle.cache.nodes[n] for n in ("a", "b")]
    assert [plugin.score(CycleState(), pod, i) for i in infos] == expected
    slots = np.array([i.slot for i in infos])
    assert plugin.score_nodes(CycleState(), pod, fw.handle.table, slots).tolist() == expected


def test_requested_to_capacity_ratio_shape() -> None:
    shape = [(0, 0), (100, 100)]
    assert nr.requested_to_capacity_ratio_score([2000], [4000], [1], shape) == 50
    decreasing = [(0, 100), (50, 0)]
    assert nr.requested_to_capacity_ratio_score([1000], [4000], [1], decreasing) == 50
    assert nr.requested_to_capacity_ratio_score([3000], [4000], [1], decreasing) == 0
    # (17 + 0) / 2 = 8.5: halves round up, as Go's math.Round does (round() gives 8)
    assert nr.requested_to_capacity_ratio_score([680, 0], [4000, 100], [1, 1],
                                                [(0, 0), (100, 100)]) == 9
    with pytest.raises(ValueError, match="increase"):
        nr.Fit({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                                    "requestedToCapacityRatio": {"shape": [
                                        {"utilization": 50, "score": 1},
                                        {"utilization": 10, "score": 2}]}}})
    with pytest.raises(ValueError, match="not one of"):
        nr.Fit({"scoringStrategy": {"type": "Random"}})


def test_balanced_allocation() -> None:
    assert nr.balanced_score([2000, 8 * 2**30], [4000, 16 * 2**30]) == 100
    assert nr.balanced_score([4000, 0], [4000, 16 * 2**30]) == 50
    assert nr.balanced_score([1000, 1000, 4000], [4000, 4000, 4000]) == int(
        (1 - np.std([0.25, 0.25, 1.0])) * 100)


# -- TaintToleration, NodeAffinity ---------------------------------------------------------


def test_taints_and_tolerations() -> None:
    gpu = Taint("dedicated", "gpu", "NoSchedule")
    prefer = Taint("spot", "", "PreferNoSchedule")
    assert tainttoleration.untolerated_taint([gpu], []) == gpu
    assert tainttoleration.untolerated_taint([gpu], [Toleration("dedicated", "Equal", "gpu",
                                                                "")]) is None
    assert tainttoleration.untolerated_taint([gpu], [Toleration("", "Exists", "", "")]) is None
    assert tainttoleration.untolerated_taint([prefer], []) is None
    assert tainttoleration.count_intolerable_prefer_no_schedule([prefer, gpu], []) == 1
    fw = framework_with([make_node("a", taints=[{"key": "dedicated", "value": "gpu",
                                                 "effect": "NoSchedule"}]),
                         make_node("b", taints=[{"key": "spot", "effect": "PreferNoSchedule"}]),
                         make_node("c")])
    statuses = assert_agree(fw, pod_info("p"), "TaintToleration")
    assert statuses["a"].reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    plugin = fw.plugin("TaintToleration")
    table = fw.handle.table
    slots = np.array([fw.handle.cache.nodes[n].slot for n in "bc"])
    raw = plugin.score_nodes(CycleState(), pod_info("p"), table, slots)
    plugin.normalize_score(CycleState(), pod_info("p"), raw)
    assert raw.tolist() == [0, 100]


def test_node_affinity_selector_terms_and_preferences() -> None:
    nodes = [make_node("a", labels={"disk": "ssd", "gen": "3"}),
             make_node("b", labels={"disk": "hdd", "gen": "5"}), make_node("c")]
    spec = {"nodeSelector": {"disk": "ssd"}}
    fw = framework_with(nodes)
    statuses = assert_agree(fw, pod_info("p", spec=spec), "NodeAffinity")
    assert statuses["a"] is None
    assert statuses["b"].reasons == ("node(s) didn't match Pod's node affinity/selector",)
    expressions = {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [
                {"key": "disk", "operator": "NotIn", "values": ["hdd"]}]}}]}}}
    pod = pod_info("q", spec=expressions)
    statuses = assert_agree(fw, pod, "NodeAffinity")
    assert [n for n, s in statuses.items() if s is None] == ["b", "c"]
    infos = {n: fw.handle.cache.nodes[n] for n in "abc"}
    assert nodeaffinity.preferred_score(pod.preferred_node_terms, infos["a"]) == 5
    assert nodeaffinity.preferred_score(pod.preferred_node_terms, infos["b"]) == 0
    assert nodeaffinity.preferred_score(pod.preferred_node_terms, infos["c"]) == 5  # no label


def test_default_normalize() -> None:
    scores = np.array([0, 5, 10])
    default_normalize(scores)
    assert scores.tolist() == [0, 50, 100]
    scores = np.array([0, 5, 10])
    default_normalize(scores, reverse=True)
    assert scores.tolist() == [100, 50, 0]
    zeros = np.array([0, 0])
    default_normalize(zeros, reverse=True)
    assert zeros.tolist() == [100, 100]


# -- ImageLocality ------------------------------------------------------------------------------


def test_image_locality_prefers_nodes_with_big_images() -> None:
    big = 500 * 1024 * 1024
    nodes = [make_node("a", images=[(["registry/app:1"], big)]), make_node("b")]
    fw = framework_with(nodes)
    pod = pod_info("p", image="registry/app:1")
    infos = [fw.handle.cache.nodes[n] for n in "ab"]
    # spread: 1 of 2 nodes has it -> 250 MB counts; (250-23)/(1000-23) of 100
    expected = 100 * (big // 2 - 23 * 2**20) // (1000 * 2**20 - 23 * 2**20)
    assert imagelocality.image_score(pod, infos[0], 2, {"registry/app:1": 1}) == expected
    plugin = fw.plugin("ImageLocality")
    slots = np.array([i.slot for i in infos])
    assert plugin.score_nodes(CycleState(), pod, fw.handle.table, slots).tolist() == \
        [expected, 0]
    assert [plugin.score(CycleState(), pod, i) for i in infos] == [expected, 0]


# -- InterPodAffinity ------------------------------------------------------------------------------


def zoned_nodes(n: int = 4) -> list[dict]:
    return [make_node(f"n{i}", labels={ZONE: f"z{i % 2}"}) for i in range(n)]


def test_anti_affinity_keeps_pods_apart() -> None:
    fw = framework_with(zoned_nodes(), [make_pod("web-0", labels={"app": "web"}, node="n0")])
    pod = pod_info("web-1", labels={"app": "web"}, spec=anti({"app": "web"}))
    statuses = assert_agree(fw, pod, "InterPodAffinity")
    assert statuses["n0"].reasons == (ERR_ANTI_AFFINITY,)
    assert statuses["n0"].code is Code.UNSCHEDULABLE
    assert all(statuses[n] is None for n in ("n1", "n2", "n3"))
    by_zone = pod_info("web-2", labels={"app": "web"}, spec=anti({"app": "web"}, ZONE))
    statuses = assert_agree(fw, by_zone, "InterPodAffinity")
    assert [n for n, s in statuses.items() if s is not None] == ["n0", "n2"]


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    existing = make_pod("db-0", labels={"app": "db"}, node="n1", spec=anti({"app": "web"}))
    fw = framework_with(zoned_nodes(), [existing])
    statuses = assert_agree(fw, pod_info("web", labels={"app": "web"}), "InterPodAffinity")
    assert statuses["n1"].reasons == (ERR_EXISTING_ANTI_AFFINITY,)
    assert [n for n, s in statuses.items() if s is not None] == ["n1"]


def test_affinity_needs_a_matching_pod_unless_first_of_its_kind() -> None:
    fw = framework_with(zoned_nodes(), [make_pod("cache", labels={"app": "cache"}, node="n2")])
    pod = pod_info("web", labels={"app": "web"}, spec=affinity({"app": "cache"}, ZONE))
    statuses = assert_agree(fw, pod, "InterPodAffinity")
    assert [n for n, s in statuses.items() if s is None] == ["n0", "n2"]
    assert statuses["n1"].reasons == (ERR_AFFINITY,)
    assert statuses["n1"].code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    first = pod_info("self", labels={"app": "solo"}, spec=affinity({"app": "solo"}))
    statuses = assert_agree(fw, first, "InterPodAffinity")
    assert all(s is None for s in statuses.values())


def test_affinity_counts_match_the_plain_computation() -> None:
    rng = random.Random(7)
    nodes = zoned_nodes(6)
    pods = []
    for i in range(40):
        app = rng.choice(["a", "b", "c"])
        spec = anti({"app": rng.choice("abc")}, rng.choice([HOST, ZONE])) \
            if rng.random() < 0.3 else None
        pods.append(make_pod(f"p{i}", labels={"app": app}, node=f"n{rng.randrange(6)}",
                             spec=spec))
    fw = framework_with(nodes, pods)
    cache = fw.handle.cache
    for app in "abc":
        pod = pod_info(f"new-{app}", labels={"app": app},
                       spec={"affinity": {**anti({"app": "b"}, ZONE)["affinity"],
                                          **affinity({"app": "a"})["affinity"]}})
        state = CycleState()
        fw.run_pre_filter(state, pod)
        fast = state.read("InterPodAffinity/prefilter")
        plain = affinity_state_from_nodes(pod, cache.nodes.values(), cache.table,
                                          cache.namespace_labels)
        for info in cache.live_nodes():
            assert fast.check(info.labels) == plain.check(info.labels), info.name
        assert_agree(fw, pod, "InterPodAffinity")


def test_preferred_affinity_scores_toward_matching_pods() -> None:
    fw = framework_with(zoned_nodes(), [make_pod("cache", labels={"app": "cache"}, node="n1")])
    spec = {"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "cache"}},
                                           "topologyKey": ZONE}}]}}}
    pod = pod_info("web", spec=spec)
    state = CycleState()
    slots = np.array([fw.handle.cache.nodes[f"n{i}"].slot for i in range(4)])
    plugin = fw.plugin("InterPodAffinity")
    assert plugin.pre_score(state, pod, slots) is None
    raw = plugin.score_nodes(state, pod, fw.handle.table, slots)
    assert raw.tolist() == [0, 10, 0, 10]
    assert [plugin.score(state, pod, fw.handle.cache.nodes[f"n{i}"]) for i in range(4)] == \
        raw.tolist()
    plugin.normalize_score(state, pod, raw)
    assert raw.tolist() == [0, 100, 0, 100]


# -- PodTopologySpread -----------------------------------------------------------------------------


def spread(labels: dict[str, str], key: str = ZONE, skew: int = 1, hard: bool = True,
           min_domains: int | None = None) -> dict:
    c = {"maxSkew": skew, "topologyKey": key, "labelSelector": {"matchLabels": labels},
         "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway"}
    if min_domains:
        c["minDomains"] = min_domains
    return {"topologySpreadConstraints": [c]}


def test_skew_rule() -> None:
    assert skew_ok(1, True, 1, 1)
    assert not skew_ok(2, True, 0, 1)
    assert skew_ok(0, False, 0, 1)


def test_topology_spread_filters_the_crowded_zone() -> None:
    pods = [make_pod("w0", labels={"app": "w"}, node="n0"),
            make_pod("w1", labels={"app": "w"}, node="n2")]  # zone z0 has 2, z1 has 0
    fw = framework_with(zoned_nodes(), pods)
    statuses = assert_agree(fw, pod_info("w2", labels={"app": "w"}, spec=spread({"app": "w"})),
                            "PodTopologySpread")
    assert [n for n, s in statuses.items() if s is None] == ["n1", "n3"]
    assert statuses["n0"].reasons == ("node(s) didn't match pod topology spread constraints",)
    unlabeled = framework_with([*zoned_nodes(), make_node("bare")], pods)
    statuses = assert_agree(unlabeled, pod_info("w2", labels={"app": "w"},
                                                spec=spread({"app": "w"})), "PodTopologySpread")
    assert statuses["bare"].reasons == (
        "node(s) didn't match pod topology spread constraints (missing required label)",)


def test_min_domains_treats_missing_domains_as_empty() -> None:
    pods = [make_pod("w0", labels={"app": "w"}, node="n0"),
            make_pod("w1", labels={"app": "w"}, node="n1")]
    fw = framework_with(zoned_nodes(), pods)  # two zones, one pod each
    ok = pod_info("w2", labels={"app": "w"}, spec=spread({"app": "w"}))
    assert all(s is None for s in assert_agree(fw, ok, "PodTopologySpread").values())
    strict = pod_info("w3", labels={"app": "w"}, spec=spread({"app": "w"}, min_domains=3))
    assert all(s is not None for s in assert_agree(fw, strict, "PodTopologySpread").values())


def test_soft_spread_prefers_the_emptier_domain() -> None:
    pods = [make_pod("w0", labels={"app": "w"}, node="n0")]
    fw = framework_with(zoned_nodes(), pods)
    pod = pod_info("w1", labels={"app": "w"}, spec=spread({"app": "w"}, hard=False))
    plugin = fw.plugin("PodTopologySpread")
    slots = np.array([fw.handle.cache.nodes[f"n{i}"].slot for i in range(4)])
    state = CycleState()
    assert plugin.pre_score(state, pod, slots) is None
    raw = plugin.score_nodes(state, pod, fw.handle.table, slots)
    assert [plugin.score(state, pod, fw.handle.cache.nodes[f"n{i}"]) for i in range(4)] == \
        raw.tolist()
    plugin.normalize_score(state, pod, raw)
    assert raw[1] > raw[0] and raw[3] > raw[2]


# -- whole profile: agreement of the fast and the plain paths --------------------------------------


def test_batch_and_per_node_filters_agree_on_random_clusters() -> None:
    rng = random.Random(3)
    for round_ in range(5):
        nodes = []
        for i in range(30):
            taints = [{"key": "k", "value": "v", "effect": "NoSchedule"}] \
                if rng.random() < 0.2 else []
            nodes.append(make_node(f"n{i}", cpu=str(rng.choice([1, 2, 4])),
                                   labels={ZONE: f"z{i % 3}", "disk": rng.choice(["a", "b"])},
                                   taints=taints, unschedulable=rng.random() < 0.1))
        pods = [make_pod(f"p{j}", cpu=f"{rng.choice([100, 500])}m",
                         labels={"app": rng.choice("xyz")}, node=f"n{rng.randrange(30)}",
                         host_port=rng.choice([None, None, 80]))
                for j in range(60)]
        fw = framework_with(nodes, pods, seed=round_)
        for k in range(10):
            spec = {}
            if rng.random() < 0.5:
                spec.update(spread({"app": "x"}))
            if rng.random() < 0.5:
                spec.update(anti({"app": rng.choice("xyz")}))
            if rng.random() < 0.3:
                spec["nodeSelector"] = {"disk": "a"}
            pod = pod_info(f"new{k}", cpu=f"{rng.choice([100, 900])}m", labels={"app": "x"},
                           host_port=rng.choice([None, 80]), spec=spec)
            state = CycleState()
            assert fw.run_pre_filter(state, pod).is_success()
            table = fw.handle.table
            for plugin in fw.points["filter"]:
                if plugin.name in state.skip_filter:
                    continue
                batch = plugin.filter_nodes(state, pod, table)
                for info in table.live_infos():
                    status = plugin.filter(state, pod, info)
                    ok = status is None or status.is_success()
                    assert (True if batch is None else bool(batch[info.slot])) == ok, \
                        (plugin.name, info.name)


def test_fit_error_message_has_kubernetes_form() -> None:
    nodes = [make_node("a", cpu="1"), make_node("b", cpu="1"), make_node("c", cpu="8"),
             make_node("d", taints=[{"key": "dedicated", "value": "gpu",
                                     "effect": "NoSchedule"}]),
             make_node("e", taints=[{"key": "dedicated", "value": "gpu",
                                     "effect": "NoSchedule"}])]
    fw = framework_with(nodes, [make_pod("hog", cpu="8", node="c")])
    with pytest.raises(FitError) as info:
        fw.schedule(CycleState(), pod_info("p", cpu="2"))
    assert str(info.value) == ("0/5 nodes are available: 2 node(s) had untolerated taint "
                               "{dedicated: gpu}, 3 Insufficient cpu.")


def test_batch_and_per_node_scores_agree_on_random_clusters() -> None:
    rng = random.Random(11)
    for strategy in ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"):
        from kubeling_scheduler_default.config import PluginConfig, Profile

        profile = Profile(plugin_config=[PluginConfig(
            name="NodeResourcesFit", args={"scoringStrategy": {"type": strategy}})])
        nodes = [make_node(f"n{i}", cpu=str(rng.choice([2, 4, 8])),
                           memory=rng.choice(["4Gi", "16Gi"]), labels={ZONE: f"z{i % 3}"},
                           taints=[{"key": "spot", "effect": "PreferNoSchedule"}]
                           if rng.random() < 0.3 else [],
                           images=[(["app:1"], 300 * 2**20)] if rng.random() < 0.4 else [])
                 for i in range(20)]
        pods = [make_pod(f"p{j}", cpu=f"{rng.choice([100, 700])}m",
                         memory=rng.choice(["64Mi", "1Gi", None]),
                         labels={"app": rng.choice("xy")}, node=f"n{rng.randrange(20)}",
                         spec=anti({"app": "x"}, ZONE) if rng.random() < 0.2 else None)
                 for j in range(40)]
        fw = framework_with(nodes, pods, profile=profile)
        table = fw.handle.table
        for k in range(6):
            spec = {"affinity": {"podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 3,
                    "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "y"}},
                                        "topologyKey": ZONE}}]}}}
            spec.update(spread({"app": "x"}, hard=False))
            pod = pod_info(f"new{k}", cpu=rng.choice(["200m", None]), image="app:1",
                           labels={"app": "x"}, spec=spec)
            slots = np.array([i.slot for i in table.live_infos()])
            state = CycleState()
            fw.run_pre_filter(state, pod)
            fw.run_pre_score(state, pod, slots)
            for plugin in fw.points["score"]:
                if plugin.name in state.skip_score:
                    continue
                batch = plugin.score_nodes(state, pod, table, slots)
                plain = np.array([plugin.score(state, pod, table.infos[s]) for s in slots],
                                 dtype=np.int64)
                normalize = getattr(plugin, "normalize_score", None)
                if normalize is not None:
                    normalize(state, pod, plain)
                if batch is None:
                    assert len(set(plain.tolist())) == 1, plugin.name
                    continue
                if normalize is not None:
                    normalize(state, pod, batch)
                assert batch.tolist() == plain.tolist(), (strategy, plugin.name)


def test_default_selector_from_services_and_the_controller() -> None:
    from kubeling_scheduler_default.workloads import WorkloadSelectors

    w = WorkloadSelectors()
    w.update("Service", {"metadata": {"namespace": "default", "name": "front"},
                         "spec": {"selector": {"app": "w"}}})
    w.update("Service", {"metadata": {"namespace": "default", "name": "other"},
                         "spec": {"selector": {"app": "x"}}})
    w.update("Service", {"metadata": {"namespace": "default", "name": "external"},
                         "spec": {}})
    w.update("ReplicaSet", {"metadata": {"namespace": "default", "name": "w-1", "uid": "rs"},
                            "spec": {"selector": {"matchLabels": {"app": "w"},
                                                  "matchExpressions": [{
                                                      "key": "tier", "operator": "In",
                                                      "values": ["a", "b"]}]}}})
    owned = make_pod("p", labels={"app": "w", "tier": "a"})
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "w-1", "uid": "rs", "controller": True}]
    selector = w.default_selector(owned)
    assert selector is not None
    assert str(selector) == "app=w,tier in (a,b)"
    assert selector.matches({"app": "w", "tier": "b"})
    assert not selector.matches({"app": "w", "tier": "c"})
    # only Services: their selectors; neither: none
    bare = make_pod("q", labels={"app": "w"})
    assert str(w.default_selector(bare)) == "app=w"
    assert w.default_selector(make_pod("r", labels={"app": "z"})) is None
    # a ReplicationController's map selector joins the set; a stale owner uid is ignored
    w.update("ReplicationController", {"metadata": {"namespace": "default", "name": "rc",
                                                    "uid": "rc"},
                                       "spec": {"selector": {"legacy": "yes"}}})
    old = make_pod("s", labels={"legacy": "yes"})
    old["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ReplicationController",
                                           "name": "rc", "uid": "rc", "controller": True}]
    assert str(w.default_selector(old)) == "legacy=yes"
    old["metadata"]["ownerReferences"][0]["uid"] = "gone"
    assert w.default_selector(old) is None
    w.delete("Service", {"metadata": {"namespace": "default", "name": "front"}})
    assert w.default_selector(bare) is None


def test_system_default_spreading_follows_the_default_selector() -> None:
    from kubeling_scheduler_default.workloads import WorkloadSelectors

    pods = [make_pod(f"w{i}", labels={"app": "w"}, node="n0") for i in range(4)]
    fw = framework_with(zoned_nodes(), pods)
    plugin = fw.plugin("PodTopologySpread")
    slots = np.array([fw.handle.cache.nodes[f"n{i}"].slot for i in range(4)])
    pod = pod_info("new", labels={"app": "w"})
    # without an API (no workload selectors) System defaults are off
    assert plugin.pre_score(CycleState(), pod, slots) is not None
    fw.handle.workloads = WorkloadSelectors()
    assert plugin.pre_score(CycleState(), pod, slots) is not None  # nothing selects the pod
    fw.handle.workloads.update("Service", {"metadata": {"namespace": "default",
                                                        "name": "w"},
                                           "spec": {"selector": {"app": "w"}}})
    state = CycleState()
    assert plugin.pre_score(state, pod, slots) is None
    raw = plugin.score_nodes(state, pod, fw.handle.table, slots)
    plugin.normalize_score(state, pod, raw)
    assert raw[0] < min(raw[1:])  # the node holding the four matching pods scores lowest


def test_budgets_split_victims_and_decide_the_node() -> None:
    from kubeling_scheduler_default.plugins.defaultpreemption import (
        Victims,
        pick_one_node,
        split_by_budgets,
    )

    pods = [pod_info(f"db-{i}", labels={"app": "db"}) for i in range(3)]
    pods.append(pod_info("web", labels={"app": "web"}))
    pods.append(pod_info("bare"))
    budget = {"metadata": {"namespace": "default", "name": "db"},
              "spec": {"selector": {"matchLabels": {"app": "db"}}},
              "status": {"disruptionsAllowed": 1, "disruptedPods": {"db-2": "x"}}}
    violating, others = split_by_budgets(pods, [budget])
    # one disruption allowed: db-0 uses it, db-1 would violate, db-2 is already disrupted
    assert [p.name for p in violating] == ["db-1"]
    assert [p.name for p in others] == ["db-0", "db-2", "web", "bare"]
    other_ns = {**budget, "metadata": {"namespace": "elsewhere", "name": "db"}}
    assert split_by_budgets(pods, [other_ns])[0] == []
    empty = {**budget, "spec": {"selector": {}}}
    assert split_by_budgets(pods, [empty])[0] == []
    # fewer violations beat a lower victim priority
    low = pod_info("low", priority=1)
    high = pod_info("high", priority=100)
    assert pick_one_node([Victims("a", [low], violations=1),
                          Victims("b", [high], violations=0)]).node == "b"
    assert pick_one_node([Victims("a", [low]), Victims("b", [high])]).node == "a"
