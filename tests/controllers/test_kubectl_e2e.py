"""Controllers end to end: a real ``kubeling up`` process driven by the real kubectl.

Stand-in nodes (register Nodes, renew Leases, bind pods, mark them Running, finish
deletions) play the node agents and the scheduler, which are tested on their own; they
are switched off here so the outcome depends on the controllers alone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubeling_controllers_default.testing import StandInNodes, eventually

from kubeling.client import Client, HttpTransport
from kubeling.client.resources import DEPLOYMENTS, NODES, PODS, REPLICASETS
from kubeling.testing.cluster import KubelingProcess

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None,
                                reason="kubectl is not installed")

SETTINGS = {"node_monitor_period_seconds": 0.2, "node_monitor_grace_period_seconds": 2.0,
            "node_eviction_rate": 100.0, "namespace_retry_seconds": 0.2}


@pytest.fixture(scope="module")
def proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubelingProcess]:
    config = {"controllers": SETTINGS,
              "components": {"disabled": ["scheduler", "kubelet", "hollow-nodes"]}}
    with KubelingProcess(tmp_path_factory.mktemp("controllers-e2e"), config=config) as p:
        yield p


@pytest.fixture
async def client(proc: KubelingProcess) -> AsyncIterator[Client]:
    c = Client(HttpTransport(proc.url))
    yield c
    await c.close()


@pytest.fixture
async def nodes(client: Client) -> AsyncIterator[StandInNodes]:
    standin = StandInNodes(client)
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture
def ns(proc: KubelingProcess) -> str:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    result = proc.kubectl("create", "namespace", name)
    assert result.returncode == 0, result.stderr
    return name


async def kubectl(proc: KubelingProcess, *args: str, input: str | None = None,
                  ok: bool = True) -> Any:
    result = await asyncio.to_thread(proc.kubectl, *args, input=input, timeout=90)
    if ok:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result


async def image_of(client: Client, name: str, ns: str) -> str:
    d = await client.get(DEPLOYMENTS, name, ns)
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_kubectl_rollout_status_undo_pause_restart(proc: KubelingProcess, client: Client,
                                                         nodes: StandInNodes, ns: str) -> None:
    for n in range(3):
        await nodes.add(f"{ns}-n{n}")
    await kubectl(proc, "-n", ns, "create", "deployment", "web", "--image=web:1",
                  "--replicas=4")
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    await kubectl(proc, "-n", ns, "set", "image", "deployment/web", "web=web:2")
    status = await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web",
                           "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in status.stdout
    history = await kubectl(proc, "-n", ns, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] \
        == ["1", "2"]
    # undo: back to the previous template, as revision 3
    undo = await kubectl(proc, "-n", ns, "rollout", "undo", "deployment/web")
    assert "rolled back" in undo.stdout
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert await image_of(client, "web", ns) == "web:1"
    pods = (await client.list(PODS, ns, label_selector="app=web"))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["image"] for p in live} == {"web:1"}
    await kubectl(proc, "-n", ns, "rollout", "undo", "deployment/web", "--to-revision=2")
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert await image_of(client, "web", ns) == "web:2"
    history = await kubectl(proc, "-n", ns, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] \
        == ["3", "4"]
    # pause: template changes wait; resume rolls them out
    await kubectl(proc, "-n", ns, "rollout", "pause", "deployment/web")
    await kubectl(proc, "-n", ns, "set", "image", "deployment/web", "web=web:3")
    await asyncio.sleep(0.5)
    rss = (await client.list(REPLICASETS, ns))["items"]
    assert len(rss) == 2
    await kubectl(proc, "-n", ns, "rollout", "resume", "deployment/web")
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert len((await client.list(REPLICASETS, ns))["items"]) == 3
    # restart: a new ReplicaSet with the restartedAt annotation
    await kubectl(proc, "-n", ns, "rollout", "restart", "deployment/web")
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    rss = (await client.list(REPLICASETS, ns))["items"]
    newest = max(rss, key=lambda rs: int(rs["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"]))
    assert "kubectl.kubernetes.io/restartedAt" in \
        newest["spec"]["template"]["metadata"]["annotations"]
    assert newest["spec"]["replicas"] == 4
    # scale through the scale subresource
    await kubectl(proc, "-n", ns, "scale", "deployment/web", "--replicas=2")
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    got = await client.get(DEPLOYMENTS, "web", ns)
    assert got["status"]["availableReplicas"] == 2
    described = await kubectl(proc, "-n", ns, "describe", "deployment", "web")
    assert "ScalingReplicaSet" in described.stdout
    assert "NewReplicaSetAvailable" in described.stdout


async def test_kubectl_delete_cascade_modes(proc: KubelingProcess, client: Client,
                                            nodes: StandInNodes, ns: str) -> None:
    await nodes.add(f"{ns}-n0")
    for name in ("bg", "fg", "orphan"):
        manifest = {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name}},
                                          "spec": {"containers": [{"name": "c",
                                                                   "image": "i"}]}}}}
        await kubectl(proc, "apply", "-f", "-", input=json.dumps(manifest))
    for name in ("bg", "fg", "orphan"):
        await kubectl(proc, "-n", ns, "rollout", "status", f"deployment/{name}",
                      "--timeout=60s")

    async def counts(app: str) -> tuple[int, int]:
        rss = (await client.list(REPLICASETS, ns, label_selector=f"app={app}"))["items"]
        pods = (await client.list(PODS, ns, label_selector=f"app={app}"))["items"]
        return len(rss), len(pods)

    await kubectl(proc, "-n", ns, "delete", "deployment", "bg", "--cascade=background")
    await kubectl(proc, "-n", ns, "delete", "deployment", "fg", "--cascade=foreground")
    await kubectl(proc, "-n", ns, "delete", "deployment", "orphan", "--cascade=orphan")

    async def settled() -> bool:
        return await counts("bg") == (0, 0) and await counts("fg") == (0, 0)

    await eventually(settled, timeout=20)
    assert await counts("orphan") == (1, 2)
    [rs] = (await client.list(REPLICASETS, ns, label_selector="app=orphan"))["items"]
    assert not rs["metadata"].get("ownerReferences")
    deployments = (await client.list(DEPLOYMENTS, ns))["items"]
    assert deployments == []
    # deleting the namespace removes what is left (the orphans), then the namespace
    await kubectl(proc, "delete", "namespace", ns, "--timeout=60s")
    gone = await kubectl(proc, "get", "namespace", ns, ok=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


async def test_kubectl_cordon_drain_uncordon(proc: KubelingProcess, client: Client,
                                             nodes: StandInNodes, ns: str) -> None:
    a, b = f"{ns}-a", f"{ns}-b"
    await nodes.add(a)
    await nodes.add(b)
    labels = {"app": "web"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": ns},
                  "spec": {"replicas": 4, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels},
                                        "spec": {"containers": [{"name": "c",
                                                                 "image": "i"}]}}}}
    agent = {"apiVersion": "apps/v1", "kind": "DaemonSet",
             "metadata": {"name": "agent", "namespace": ns},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": {"metadata": {"labels": {"app": "agent"}},
                                   "spec": {"nodeSelector": {"kubernetes.io/hostname": a},
                                            "containers": [{"name": "c", "image": "i"}]}}}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "web", "namespace": ns},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}
    for manifest in (deployment, agent, pdb):
        await kubectl(proc, "apply", "-f", "-", input=json.dumps(manifest))
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    await kubectl(proc, "-n", ns, "rollout", "status", "daemonset/agent", "--timeout=60s")

    async def on(node: str, app: str) -> list[Any]:
        pods = (await client.list(PODS, ns, label_selector=f"app={app}"))["items"]
        return [p for p in pods if p["spec"].get("nodeName") == node
                and not p["metadata"].get("deletionTimestamp")]

    assert await on(a, "web") and await on(b, "web")
    drained = await kubectl(proc, "drain", a, "--ignore-daemonsets", "--timeout=60s")
    assert "evicting pod" in drained.stderr + drained.stdout
    assert f"node/{a} drained" in drained.stdout
    node = await kubectl(proc, "get", "node", a, "-o", "json")
    assert json.loads(node.stdout)["spec"]["unschedulable"] is True
    assert not await on(a, "web")
    assert len(await on(a, "agent")) == 1  # daemon pods stay
    await kubectl(proc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert len(await on(b, "web")) == 4
    await kubectl(proc, "uncordon", a)
    node = await kubectl(proc, "get", "node", a, "-o", "json")
    assert not json.loads(node.stdout)["spec"].get("unschedulable")


async def test_kubectl_daemonset_rollout_status_and_undo(proc: KubelingProcess,
                                                         client: Client, nodes: StandInNodes,
                                                         ns: str) -> None:
    for n in range(2):
        await nodes.add(f"{ns}-n{n}")
    selector = {"kubernetes.io/hostname-group": ns}
    for n in range(2):
        await client.patch(NODES, f"{ns}-n{n}", {"metadata": {"labels": selector}})
    agent = {"apiVersion": "apps/v1", "kind": "DaemonSet",
             "metadata": {"name": "agent", "namespace": ns},
             "spec": {"selector": {"matchLabels": {"app": "agent"}},
                      "template": {"metadata": {"labels": {"app": "agent"}},
                                   "spec": {"nodeSelector": selector,
                                            "containers": [{"name": "c",
                                                            "image": "agent:1"}]}}}}
    await kubectl(proc, "apply", "-f", "-", input=json.dumps(agent))
    await kubectl(proc, "-n", ns, "rollout", "status", "daemonset/agent", "--timeout=60s")
    await kubectl(proc, "-n", ns, "set", "image", "daemonset/agent", "c=agent:2")
    status = await kubectl(proc, "-n", ns, "rollout", "status", "daemonset/agent",
                           "--timeout=60s")
    assert 'daemon set "agent" successfully rolled out' in status.stdout
    history = await kubectl(proc, "-n", ns, "rollout", "history", "daemonset/agent")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] \
        == ["1", "2"]
    await kubectl(proc, "-n", ns, "rollout", "undo", "daemonset/agent")
    await kubectl(proc, "-n", ns, "rollout", "status", "daemonset/agent", "--timeout=60s")

    async def back() -> bool:
        pods = (await client.list(PODS, ns, label_selector="app=agent"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and {p["spec"]["containers"][0]["image"] for p in live} == \
            {"agent:1"}

    await eventually(back)


async def test_kubectl_statefulset_rollout_scale_and_undo(proc: KubelingProcess,
                                                          client: Client, nodes: StandInNodes,
                                                          ns: str) -> None:
    await nodes.add(f"{ns}-n0")
    db = {"apiVersion": "apps/v1", "kind": "StatefulSet",
          "metadata": {"name": "db", "namespace": ns},
          "spec": {"replicas": 2, "serviceName": "db",
                   "selector": {"matchLabels": {"app": "db"}},
                   "template": {"metadata": {"labels": {"app": "db"}},
                                "spec": {"containers": [{"name": "c", "image": "db:1"}]}}}}
    await kubectl(proc, "apply", "-f", "-", input=json.dumps(db))
    status = await kubectl(proc, "-n", ns, "rollout", "status", "statefulset/db",
                           "--timeout=60s")
    # partition defaults to 0, and kubectl reports any set partition this way (after
    # "Waiting for ..." lines while the rollout is still going)
    assert status.stdout.splitlines()[-1] == \
        "partitioned roll out complete: 2 new pods have been updated..."
    got = await kubectl(proc, "-n", ns, "get", "statefulset", "db")
    assert got.stdout.split("\n")[1].split()[:2] == ["db", "2/2"]
    await kubectl(proc, "-n", ns, "set", "image", "statefulset/db", "c=db:2")
    status = await kubectl(proc, "-n", ns, "rollout", "status", "statefulset/db",
                           "--timeout=60s")
    assert status.stdout.splitlines()[-1] == \
        "partitioned roll out complete: 2 new pods have been updated..."
    history = await kubectl(proc, "-n", ns, "rollout", "history", "statefulset/db")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] \
        == ["1", "2"]
    await kubectl(proc, "-n", ns, "rollout", "undo", "statefulset/db")
    await kubectl(proc, "-n", ns, "rollout", "status", "statefulset/db", "--timeout=60s")
    await kubectl(proc, "-n", ns, "scale", "statefulset/db", "--replicas=3")
    await kubectl(proc, "-n", ns, "rollout", "status", "statefulset/db", "--timeout=60s")

    async def pods() -> dict[str, str]:
        items = (await client.list(PODS, ns, label_selector="app=db"))["items"]
        return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in items
                if not p["metadata"].get("deletionTimestamp")}

    assert await eventually(lambda: _equals(pods, {"db-0": "db:1", "db-1": "db:1",
                                                   "db-2": "db:1"}))
    await kubectl(proc, "-n", ns, "delete", "statefulset", "db", "--wait=true")
    await eventually(lambda: _equals(pods, {}))


async def _equals(get: Any, expected: Any) -> bool:
    return await get() == expected
