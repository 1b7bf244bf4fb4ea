"""Leader election: the contract a leader-election plugin fulfils.

Components registered with ``leader_elected=True`` run only while this process leads;
``kubeling_leader_elector`` provides the elector (the ``leader_lease`` plugin uses a
coordination.k8s.io Lease, as Kubernetes' components do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["LeaderElector"]


class LeaderElector(Protocol):
    async def run_while_leader(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` whenever this process holds leadership of ``name``; cancel it when
        leadership is lost and wait to win again.  Returns only when cancelled."""
