"""Fixtures shared by kubeling's own tests."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeling.testing.cluster import KubelingProcess, api_server

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Any]:
    """An API server on SQLite in this test's event loop, listening on a free port."""
    async with api_server(tmp_path) as handle:
        yield handle


@pytest.fixture(scope="session")
def kubeling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubelingProcess]:
    """One ``kubeling up`` process for the session (tests use their own namespaces)."""
    proc = KubelingProcess(tmp_path_factory.mktemp("kubeling-up"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def kube_client(kubeling: KubelingProcess) -> Any:
    """The official ``kubernetes`` client configured from the kubeconfig kubeling wrote."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(kubeling.kubeconfig))
    yield api_client
    api_client.close()
    del client


@pytest.fixture
def namespace(kube_client: Any) -> Iterator[str]:
    """A fresh namespace for one test."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(kube_client).create_namespace({"metadata": {"name": name}})
    yield name


@pytest.fixture
def kubectl_available() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
