"""Namespace deletion and default ServiceAccounts."""

from __future__ import annotations

from typing import Any

from kubeling_controllers_default.testing import eventually

from kubeling.client import ApiError
from kubeling.client.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    SERVICEACCOUNTS,
    SERVICES,
)


async def gone(client: Any, resource: Any, name: str, namespace: str | None = None) -> bool:
    try:
        await client.get(resource, name, namespace)
        return False
    except ApiError as exc:
        return exc.code == 404


async def test_every_namespace_gets_a_default_service_account(cluster: Any) -> None:
    client = cluster.client
    await client.create(NAMESPACES, {"metadata": {"name": "team"}})

    async def has_default() -> bool:
        return not await gone(client, SERVICEACCOUNTS, "default", "team")

    await eventually(has_default)
    await eventually(lambda: _not_gone(client, SERVICEACCOUNTS, "default", "kube-system"))
    await client.delete(SERVICEACCOUNTS, "default", "team")
    await eventually(has_default)


async def _not_gone(client: Any, resource: Any, name: str, namespace: str) -> bool:
    return not await gone(client, resource, name, namespace)


async def test_deleting_a_namespace_deletes_its_content_then_itself(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(NAMESPACES, {"metadata": {"name": "doomed"}})
    await client.create(CONFIGMAPS, {"metadata": {"name": "cfg"}}, "doomed")
    await client.create(CONFIGMAPS, {"metadata": {"name": "held",
                                                  "finalizers": ["test.io/hold"]}}, "doomed")
    await client.create(SERVICES, {"metadata": {"name": "svc"}, "spec": {
        "selector": {"app": "x"}, "ports": [{"port": 80}]}}, "doomed")
    labels = {"app": "x"}
    await client.create(DEPLOYMENTS, {"metadata": {"name": "d"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}}, "doomed")

    async def pods_running() -> bool:
        pods = (await client.list(PODS, "doomed"))["items"]
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    await eventually(pods_running)
    await client.delete(NAMESPACES, "doomed")

    async def waiting_for_finalizer() -> Any:
        ns = await client.get(NAMESPACES, "doomed")
        conditions = {c["type"]: c for c in ns["status"].get("conditions") or []}
        remaining = conditions.get("NamespaceFinalizersRemaining", {})
        return ns if remaining.get("status") == "True" and \
            "test.io/hold in 1 resource instances" in remaining.get("message", "") else None

    ns = await eventually(waiting_for_finalizer)
    assert ns["status"]["phase"] == "Terminating"
    content = ns["status"]["conditions"]
    assert any(c["type"] == "NamespaceContentRemaining" and "configmaps has 1" in c["message"]
               for c in content)
    assert (await client.list(PODS, "doomed"))["items"] == []
    assert (await client.list(DEPLOYMENTS, "doomed"))["items"] == []
    with_error = None
    try:
        await client.create(CONFIGMAPS, {"metadata": {"name": "late"}}, "doomed")
    except ApiError as exc:
        with_error = exc
    assert with_error is not None and with_error.code == 403
    await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, "doomed")
    await eventually(lambda: gone(client, NAMESPACES, "doomed"))
