"""DefaultBinder: writes the pod's ``binding`` subresource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeling.api.errors import ApiError
from kubeling.client.resources import PODS
from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Code, Status

__all__ = ["DefaultBinder"]


class DefaultBinder:
    """Bind plugin: ``POST .../pods/<name>/binding`` with the pod's uid as precondition."""

    name = "DefaultBinder"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args
        self.handle = handle

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        client = self.handle.client
        if client is None:  # algorithm-only runs
            return None
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            await client.create(PODS, binding, pod.namespace, name=pod.name,
                                subresource="binding")
        except ApiError as exc:
            return Status(Code.ERROR, exc.message or exc.reason, plugin=self.name, error=exc)
        return None
