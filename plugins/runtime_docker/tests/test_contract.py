"""kubeling-runtime-docker against the shared runtime conformance suite, on a real dockerd."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from kubeling_runtime_docker import DockerRuntime, DockerSettings

from kubeling.testing.runtime_contract import RuntimeContract


class TestDockerContract(RuntimeContract):
    """Every clause of the Runtime interface, on dockerd."""

    @pytest_asyncio.fixture
    async def runtime(self, docker_settings: DockerSettings) -> AsyncIterator[DockerRuntime]:
        rt = DockerRuntime(docker_settings)
        await rt.start()
        yield rt
        await rt.close()

    @pytest.fixture
    def image(self, busybox_image: str) -> str:
        return busybox_image
