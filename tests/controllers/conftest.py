"""Fixtures of the controller tests: an API server with the controller manager in this
event loop, and stand-in nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubeling_controllers_default.testing import controller_cluster

FAST = {
    "node_monitor_period_seconds": 0.2,
    "node_monitor_grace_period_seconds": 2.0,
    "node_startup_grace_period_seconds": 2.0,
    "node_eviction_rate": 100.0,
    "pod_gc_period_seconds": 0.5,
    "orphaned_pod_quarantine_seconds": 0.5,
    "job_backoff_base_seconds": 0.05,
    "job_backoff_max_seconds": 0.2,
    "namespace_retry_seconds": 0.2,
    "cronjob_check_seconds": 0.5,
}
"""Controller settings with test-sized periods."""


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Any]:
    """Every controller, on a fresh API server."""
    async with controller_cluster(tmp_path, settings=FAST) as handle:
        yield handle

