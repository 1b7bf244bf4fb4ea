"""Endpoints and EndpointSlices from Service selectors and pod readiness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubeling_controllers_default.testing import Outcome, controller_cluster, eventually

from kubeling.client import ApiError
from kubeling.client.resources import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES


def outcome(pod: dict[str, Any]) -> Outcome:
    return Outcome("Running", ready=pod["metadata"].get("labels", {}).get("ready") != "no")


def pod(name: str, port: int, *, ready: bool = True, hold: bool = False,
        app: str = "web") -> dict[str, Any]:
    labels = {"app": app} if ready else {"app": app, "ready": "no"}
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "i",
                                 "ports": [{"name": "http", "containerPort": port}]}]}}
    if hold:
        body["metadata"]["finalizers"] = ["test.io/hold"]
    return body


def service(name: str = "web", *, app: str = "web", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                               {"name": "admin", "port": 81, "targetPort": 9000}],
                     **spec}}


async def slices_of(client: Any, name: str) -> list[dict[str, Any]]:
    return (await client.list(ENDPOINTSLICES, "default",
                              label_selector=f"kubernetes.io/service-name={name}"))["items"]


async def running(client: Any, *names: str) -> bool:
    for name in names:
        got = await client.get(PODS, name, "default")
        if got["status"].get("phase") != "Running":
            return False
    return True


async def test_endpoints_and_slices_follow_pods_and_readiness(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        await client.create(PODS, pod("a", 8080), "default")
        await client.create(PODS, pod("b", 8081), "default")
        await client.create(PODS, pod("c", 8080, ready=False), "default")
        await client.create(PODS, pod("d", 8080, hold=True), "default")
        await client.create(PODS, pod("other", 8080, app="other"), "default")
        await eventually(lambda: running(client, "a", "b", "c", "d", "other"))
        svc = await client.create(SERVICES, service(), "default")
        ips = {p["metadata"]["name"]: p["status"]["podIP"]
               for p in (await client.list(PODS, "default"))["items"]}

        async def endpoints() -> Any:
            try:
                ep = await client.get(ENDPOINTS, "web", "default")
            except ApiError:
                return None
            return ep if len(ep.get("subsets") or []) == 2 else None

        ep = await eventually(endpoints)
        assert ep["metadata"]["labels"] == {"tier": "front"}
        by_port = {next(p["port"] for p in s["ports"] if p["name"] == "http"): s
                   for s in ep["subsets"]}
        assert {a["ip"] for a in by_port[8080]["addresses"]} == {ips["a"], ips["d"]}
        assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == [ips["c"]]
        assert [a["ip"] for a in by_port[8081]["addresses"]] == [ips["b"]]
        assert sorted(by_port[8081]["ports"], key=lambda p: p["name"]) == [
            {"name": "admin", "port": 9000, "protocol": "TCP"},
            {"name": "http", "port": 8081, "protocol": "TCP"}]
        address = next(a for a in by_port[8081]["addresses"])
        assert address["nodeName"] == "n1"
        assert address["targetRef"]["name"] == "b"
        [grouped_a, grouped_b] = sorted(await slices_of(client, "web"),
                                        key=lambda s: len(s["endpoints"]), reverse=True)
        for eps in (grouped_a, grouped_b):
            assert eps["addressType"] == "IPv4"
            assert eps["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
                "endpointslice-controller.k8s.io"
            assert eps["metadata"]["labels"]["tier"] == "front"
            assert eps["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
        conditions = {e["targetRef"]["name"]: e["conditions"] for e in grouped_a["endpoints"]}
        assert conditions == {
            "a": {"ready": True, "serving": True, "terminating": False},
            "c": {"ready": False, "serving": False, "terminating": False},
            "d": {"ready": True, "serving": True, "terminating": False}}
        # d starts terminating (held by a finalizer, still passing its readiness probe):
        # gone from Endpoints, in its slice as serving and terminating but not ready
        await client.delete(PODS, "d", "default")

        async def terminating_seen() -> bool:
            ep = await client.get(ENDPOINTS, "web", "default")
            addresses = {a["targetRef"]["name"] for s in ep["subsets"]
                         for a in s.get("addresses") or []}
            eps = [e for s in await slices_of(client, "web") for e in s["endpoints"]
                   if e["targetRef"]["name"] == "d"]
            return "d" not in addresses and len(eps) == 1 and eps[0]["conditions"] == {
                "ready": False, "serving": True, "terminating": True}

        await eventually(terminating_seen)
        # a pod leaving the selector leaves both
        await client.patch(PODS, "a", {"metadata": {"labels": {"app": "gone"}}}, "default")

        async def a_left() -> bool:
            ep = await client.get(ENDPOINTS, "web", "default")
            names = {a["targetRef"]["name"] for s in ep["subsets"]
                     for kind in ("addresses", "notReadyAddresses") for a in s.get(kind) or []}
            in_slices = {e["targetRef"]["name"] for s in await slices_of(client, "web")
                         for e in s["endpoints"]}
            return names == {"b", "c"} and in_slices == {"b", "c", "d"}

        await eventually(a_left)
        await client.patch(PODS, "d", {"metadata": {"finalizers": None}}, "default")
        # deleting the Service deletes its Endpoints and slices
        await client.delete(SERVICES, "web", "default")

        async def cleaned() -> bool:
            try:
                await client.get(ENDPOINTS, "web", "default")
                return False
            except ApiError as exc:
                return exc.code == 404 and not await slices_of(client, "web")

        await eventually(cleaned)


async def test_slices_are_split_and_merged_by_size(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path,
                                  settings={"endpoint_slice_max_endpoints": 3}) as cluster:
        client = cluster.client
        await cluster.nodes("n1")
        await client.create(SERVICES, service(), "default")

        async def placeholder() -> bool:
            slices = await slices_of(client, "web")
            return len(slices) == 1 and not slices[0].get("endpoints")

        await eventually(placeholder)
        for n in range(7):
            await client.create(PODS, pod(f"p{n}", 8080), "default")

        async def split() -> bool:
            slices = await slices_of(client, "web")
            sizes = sorted(len(s.get("endpoints") or []) for s in slices)
            ready = all(e["conditions"]["ready"] for s in slices
                        for e in s.get("endpoints") or [])
            return sizes == [1, 3, 3] and ready

        await eventually(split)
        for n in range(5):
            await client.delete(PODS, f"p{n}", "default", grace_period_seconds=0)

        async def shrunk() -> bool:
            slices = await slices_of(client, "web")
            names = sorted(e["targetRef"]["name"] for s in slices
                           for e in s.get("endpoints") or [])
            return names == ["p5", "p6"] and all(s.get("endpoints") for s in slices)

        await eventually(shrunk)


async def test_publish_not_ready_and_services_without_selector(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1", outcome=outcome)
    await client.create(PODS, pod("x", 8080, ready=False), "default")
    await client.create(SERVICES, service("pub", publishNotReadyAddresses=True), "default")
    manual = {"metadata": {"name": "manual"},
              "spec": {"ports": [{"port": 80}]}}
    await client.create(SERVICES, manual, "default")
    await client.create(ENDPOINTS, {"metadata": {"name": "manual"}, "subsets": [
        {"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 80}]}]}, "default")

    async def published() -> bool:
        try:
            ep = await client.get(ENDPOINTS, "pub", "default")
        except ApiError:
            return False
        ready = [a["targetRef"]["name"] for s in ep.get("subsets") or []
                 for a in s.get("addresses") or []]
        slices = await slices_of(client, "pub")
        return ready == ["x"] and bool(slices) and \
            slices[0]["endpoints"][0]["conditions"]["ready"] is True

    await eventually(published)
    ep = await client.get(ENDPOINTS, "manual", "default")
    assert ep["subsets"][0]["addresses"] == [{"ip": "10.9.9.9"}]
    assert not await slices_of(client, "manual")
