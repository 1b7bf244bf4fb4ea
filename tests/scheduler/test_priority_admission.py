"""Priority admission: pods get their PriorityClass's value when created."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeling.api.errors import ApiError
from kubeling.api.registry import Resource
from kubeling.client.resources import PODS
from kubeling.testing.cluster import api_server

PRIORITY_CLASSES = Resource(group="scheduling.k8s.io", version="v1", plural="priorityclasses",
                            kind="PriorityClass", namespaced=False)


def pod(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def test_pods_get_the_priority_of_their_class(tmp_path: Path) -> None:
    async with api_server(tmp_path, listen=False) as api:
        client = api.client()
        plain = await client.create(PODS, pod("plain"), "default")
        assert plain["spec"]["priority"] == 0
        await client.create(PRIORITY_CLASSES, {"metadata": {"name": "high"}, "value": 1000,
                                               "preemptionPolicy": "Never"})
        await caught_up(api)  # admission reads classes from the watch cache, as Kubernetes
        high = await client.create(PODS, pod("high", priorityClassName="high"), "default")
        assert high["spec"]["priority"] == 1000
        assert high["spec"]["preemptionPolicy"] == "Never"
        critical = await client.create(PODS, pod("c", priorityClassName="system-node-critical"),
                                       "default")
        assert critical["spec"]["priority"] == 2_000_001_000
        with pytest.raises(ApiError) as info:
            await client.create(PODS, pod("nope", priorityClassName="missing"), "default")
        assert info.value.code == 403
        assert info.value.message == ('pods "nope" is forbidden: no PriorityClass with name '
                                      "missing was found")
        await client.create(PRIORITY_CLASSES, {"metadata": {"name": "normal"}, "value": 10,
                                               "globalDefault": True})
        await caught_up(api)
        defaulted = await client.create(PODS, pod("defaulted"), "default")
        assert defaulted["spec"]["priorityClassName"] == "normal"
        assert defaulted["spec"]["priority"] == 10


async def caught_up(api: object) -> None:
    server = api.server  # type: ignore[attr-defined]
    cache = server.cache_for(server.registry.get("scheduling.k8s.io", "v1", "priorityclasses"))
    assert await cache.wait_for(await server.storage.current_revision(), 5)
