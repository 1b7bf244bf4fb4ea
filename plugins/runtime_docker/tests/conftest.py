"""Fixtures for the Docker runtime's tests: a reachable dockerd and a local busybox image."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

if "kubeling.testing.runtime_contract" not in sys.modules:
    pytest.register_assert_rewrite("kubeling.testing.runtime_contract")

from kubeling_runtime_docker import DockerRuntime, DockerSettings
from kubeling_runtime_docker.images import busybox_rootfs

from kubeling.runtime import RuntimeUnavailableError


@pytest.fixture(scope="session")
def docker_settings() -> DockerSettings:
    """Settings with a pause image of this test session only (removed at the end)."""
    try:
        DockerRuntime(DockerSettings()).check_available()
    except RuntimeUnavailableError as exc:
        pytest.skip(f"dockerd is not available: {exc}")
    if not Path("/bin/busybox").exists() or shutil.which("busybox") is None:
        pytest.skip("busybox-static is not installed")
    return DockerSettings(pause_image=f"kubeling-test/pause:{uuid.uuid4().hex[:10]}",
                          offline=True)


@pytest.fixture(scope="session")
def busybox_image(docker_settings: DockerSettings) -> Iterator[str]:
    """A busybox image built locally for this session (removed at the end)."""
    tag = f"kubeling-test/busybox:{uuid.uuid4().hex[:10]}"

    async def build() -> None:
        rt = DockerRuntime(docker_settings)
        await rt.import_image(tag, busybox_rootfs(Path("/bin/busybox")), cmd=["/bin/sh"])
        await rt.close()

    async def remove() -> None:
        rt = DockerRuntime(docker_settings)
        await rt.remove_image(tag)
        await rt.remove_image(docker_settings.pause_image)
        await rt.close()

    asyncio.run(build())
    yield tag
    asyncio.run(remove())
