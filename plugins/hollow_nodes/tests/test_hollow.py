"""Hollow nodes against a real API server: registration, heartbeats, pods, the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from kubeling_hollow_nodes import HollowNodes
from kubeling_hollow_nodes.hollow import LEASE_NAMESPACE
from kubeling_hollow_nodes.hooks import server_from_kubeconfig

from kubeling.client.resources import LEASES, NODES, PODS
from kubeling.testing.cluster import api_server


async def test_nodes_register_ready_with_leases_that_renew(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        client = api.client()
        fleet = HollowNodes(client, count=3, cpu="2", memory="4Gi", pods=20, zones=2,
                            labels={"pool": "sim"}, renew_interval_seconds=0.3)
        await fleet.start()
        try:
            nodes = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
            assert sorted(nodes) == ["hollow-node-0", "hollow-node-1", "hollow-node-2"]
            node = nodes["hollow-node-1"]
            assert node["status"]["allocatable"] == {"cpu": "2", "memory": "4Gi", "pods": "20",
                                                     "ephemeral-storage": "100Gi"}
            ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
            assert ready[0]["status"] == "True"
            assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-1"
            assert node["metadata"]["labels"]["pool"] == "sim"
            lease = await client.get(LEASES, "hollow-node-1", LEASE_NAMESPACE)
            assert lease["spec"]["holderIdentity"] == "hollow-node-1"
            first = lease["spec"]["renewTime"]
            await asyncio.sleep(0.8)
            lease = await client.get(LEASES, "hollow-node-1", LEASE_NAMESPACE)
            assert lease["spec"]["renewTime"] > first
            assert lease["metadata"]["ownerReferences"][0]["name"] == "hollow-node-1"
        finally:
            await fleet.stop(delete=True)
        assert (await client.list(NODES))["items"] == []


async def test_bound_pods_run_and_deletions_finish(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        client = api.client()
        fleet = HollowNodes(client, count=2)
        await fleet.start()
        try:
            for name, node in (("a", "hollow-node-0"), ("b", "hollow-node-1"),
                               ("elsewhere", "real-node")):
                await client.create(PODS, {"metadata": {"name": name}, "spec": {
                    "nodeName": node, "containers": [{"name": "c", "image": "pause"}]}},
                    "default")
            await fleet.wait_running(2, timeout=10)
            pod = await client.get(PODS, "b", "default")
            assert pod["status"]["phase"] == "Running"
            assert pod["status"]["podIP"].startswith("10.0.1.")
            assert pod["status"]["containerStatuses"][0]["state"]["running"]
            assert {c["type"] for c in pod["status"]["conditions"]} >= {"Ready",
                                                                       "ContainersReady"}
            other = await client.get(PODS, "elsewhere", "default")
            assert other["status"].get("phase") == "Pending"
            await client.delete(PODS, "a", "default")  # graceful: 30 s for a real kubelet

            async def gone() -> None:
                while True:
                    names = [p["metadata"]["name"]
                             for p in (await client.list(PODS, "default"))["items"]]
                    if "a" not in names:
                        return
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(gone(), 10)
            assert fleet.finished_deletions == 1
        finally:
            await fleet.stop()


async def test_restarted_fleet_takes_over_its_nodes(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        client = api.client()
        first = HollowNodes(client, count=2)
        await first.start()
        await first.stop()
        again = HollowNodes(client, count=2)
        await again.start()
        await again.stop()
        assert len((await client.list(NODES))["items"]) == 2


async def test_simulate_command_registers_nodes_until_stopped(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        kubeconfig = tmp_path / "kubeconfig"
        from kubeling.app import write_kubeconfig

        write_kubeconfig(kubeconfig, api.url)
        assert server_from_kubeconfig(kubeconfig) == api.url
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubeling.cli", "simulate", "nodes", "3", "--kubeconfig",
             str(kubeconfig), "--prefix", "sim-", "--zones", "3", "--label", "team=a",
             "--delete-on-exit"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        client = api.client()
        try:
            async with asyncio.timeout(60):
                while len((await client.list(NODES))["items"]) < 3:
                    await asyncio.sleep(0.1)
            nodes = (await client.list(NODES))["items"]
            assert sorted(n["metadata"]["name"] for n in nodes) == ["sim-0", "sim-1", "sim-2"]
            assert all(n["metadata"]["labels"]["team"] == "a" for n in nodes)
            await asyncio.sleep(0.3)  # let it print its banner
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        assert proc.returncode == 0, out
        assert "3 hollow nodes registered" in out and "nodes deleted" in out
        assert (await client.list(NODES))["items"] == []
