"""Writes racing with other writers, as kubectl meets them against a busy cluster (a
controller updating the object between kubectl's read and its write)."""

from __future__ import annotations

from typing import Any

from kubeling.client import ApiError
from kubeling.client.resources import DEPLOYMENTS

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


async def test_scale_patch_retries_a_lost_race(api: Any) -> None:
    """A scale patch names no resourceVersion: a write landing between the server's read of
    the object and its update must not turn into a 409."""
    client = api.client()
    await client.create(DEPLOYMENTS, DEPLOYMENT, "default")
    handlers = api.server.handlers
    read = handlers._read
    raced = []

    async def read_then_race(target: Any) -> Any:
        kv = await read(target)
        if not raced:  # someone else (a controller) writes in between
            raced.append(True)
            await client.patch(DEPLOYMENTS, "web", {"metadata": {"labels": {"x": "y"}}},
                               "default")
        return kv

    handlers._read = read_then_race
    try:
        scale = await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}}, "default",
                                   subresource="scale")
    finally:
        handlers._read = read
    assert raced and scale["spec"]["replicas"] == 3
    live = await client.get(DEPLOYMENTS, "web", "default")
    assert live["spec"]["replicas"] == 3 and live["metadata"]["labels"] == {"x": "y"}

    # a resourceVersion the client does name is still a precondition
    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 4}}
    try:
        await client.patch(DEPLOYMENTS, "web", stale, "default", subresource="scale")
    except ApiError as exc:
        assert exc.code == 409
    else:
        raise AssertionError("a stale resourceVersion was accepted")


async def test_a_json_patch_setting_resource_version_is_a_precondition(api: Any) -> None:
    """kubectl's move of client-side-apply ownership to server-side apply replaces
    managedFields with a JSON patch that also sets the resourceVersion it read: a write in
    between must make it fail rather than be overwritten."""
    client = api.client()
    created = await client.create(DEPLOYMENTS, DEPLOYMENT, "default")
    read_rv = created["metadata"]["resourceVersion"]
    await client.patch(DEPLOYMENTS, "web", {"metadata": {"labels": {"x": "y"}}}, "default")
    ops = [{"op": "replace", "path": "/metadata/managedFields", "value": []},
           {"op": "replace", "path": "/metadata/resourceVersion", "value": read_rv}]
    try:
        await client.patch(DEPLOYMENTS, "web", ops, "default", type="json")
    except ApiError as exc:
        assert exc.code == 409 and "the object has been modified" in exc.message
    else:
        raise AssertionError("the stale resourceVersion in the patch was ignored")
    live = await client.get(DEPLOYMENTS, "web", "default")
    ops[1]["value"] = live["metadata"]["resourceVersion"]
    patched = await client.patch(DEPLOYMENTS, "web", ops, "default", type="json")
    assert patched["metadata"]["labels"] == {"x": "y"}
