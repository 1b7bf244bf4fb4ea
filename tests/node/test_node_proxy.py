"""The API server's side of pods/log, exec, attach and portforward, and the graceful
deletion rule the node agent relies on (in-process API server; the real agent is exercised
end to end in test_pods.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubeling.api import node_proxy
from kubeling.api.errors import ApiError
from kubeling.client.resources import NODES, PODS
from kubeling.testing.cluster import api_server


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Any]:
    async with api_server(tmp_path) as handle:
        node_proxy.install(handle.server, "s3cret")
        yield handle


def pod(name: str, containers: tuple[str, ...] = ("app",), node: str | None = "n1") -> dict:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


async def status_of(api: Any, path: str, headers: dict[str, str] | None = None
                    ) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, \
            session.get(api.url + path, headers=headers or {}) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_secret_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "d" / node_proxy.SECRET_FILE
    first = node_proxy.load_secret(path)
    assert len(first) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert node_proxy.load_secret(path) == first
    with pytest.raises(FileNotFoundError):
        node_proxy.load_secret(tmp_path / "missing", create=False)


async def test_log_needs_a_container_name_when_there_are_several(api: Any) -> None:
    client = api.client()
    await client.create(PODS, pod("two", ("a", "b")), "default")
    code, body = await status_of(api, "/api/v1/namespaces/default/pods/two/log")
    assert code == 400
    assert body["message"] == ("a container name must be specified for pod two, choose one "
                               "of: [a b]")
    code, body = await status_of(api, "/api/v1/namespaces/default/pods/two/log?container=c")
    assert (code, body["message"]) == (400, "container c is not valid for pod two")


async def test_log_of_unscheduled_pod_and_unknown_node(api: Any) -> None:
    client = api.client()
    await client.create(PODS, pod("floating", node=None), "default")
    code, body = await status_of(api, "/api/v1/namespaces/default/pods/floating/log")
    assert (code, body["message"]) == (400, "pod floating does not have a host assigned")
    await client.create(PODS, pod("bound", node="ghost"), "default")
    code, body = await status_of(api, "/api/v1/namespaces/default/pods/bound/log")
    assert (code, body["message"]) == (400, 'node "ghost" of the pod is not registered')
    code, body = await status_of(api, "/api/v1/namespaces/default/pods/absent/log")
    assert code == 404 and body["reason"] == "NotFound"


async def test_unreachable_agent_is_503(api: Any) -> None:
    client = api.client()
    await client.create(NODES, {"metadata": {"name": "n1", "annotations": {
        node_proxy.AGENT_ENDPOINT_ANNOTATION: "http://127.0.0.1:1"}}})
    await client.create(PODS, pod("p"), "default")
    code, body = await status_of(api, "/api/v1/namespaces/default/pods/p/log")
    assert code == 503 and "cannot reach the node agent" in body["message"]


async def test_exec_without_websocket_upgrade_is_refused(api: Any) -> None:
    client = api.client()
    await client.create(NODES, {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
    await client.create(PODS, pod("p"), "default")
    async with aiohttp.ClientSession() as session, session.post(
            api.url + "/api/v1/namespaces/default/pods/p/exec?command=true") as resp:
        body = await resp.json(content_type=None)
    assert resp.status == 400 and "needs a WebSocket connection" in body["message"]
    async with aiohttp.ClientSession() as session, session.delete(
            api.url + "/api/v1/namespaces/default/pods/p/log") as resp:
        assert resp.status == 405


async def test_status_updates_do_not_end_a_graceful_deletion(api: Any) -> None:
    """A bound pod being deleted keeps getting status updates from its node until the agent
    deletes it with grace 0 (a regression: a status update used to delete it at once)."""
    client = api.client()
    await client.create(PODS, pod("graceful"), "default")
    await client.delete(PODS, "graceful", "default")
    live = await client.get(PODS, "graceful", "default")
    assert live["metadata"]["deletionGracePeriodSeconds"] == 30
    await client.patch(PODS, "graceful", {"status": {"phase": "Running"}}, "default",
                       subresource="status")
    assert (await client.get(PODS, "graceful", "default"))["status"]["phase"] == "Running"
    await client.delete(PODS, "graceful", "default", grace_period_seconds=0)
    with pytest.raises(ApiError) as info:
        await client.get(PODS, "graceful", "default")
    assert info.value.code == 404
