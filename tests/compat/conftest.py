"""Fixtures of the kubectl / client compatibility suite.

Everything runs against one real ``kubeling up`` (the session's ``kubeling`` fixture), each
test in its own namespace, with the real kubectl at /usr/bin/kubectl.  kubectl gets a cache
directory of its own so discovery and OpenAPI documents cached by earlier runs (of another
server on the same port) can never leak in.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeling.testing.cluster import KubelingProcess

KUBECTL = shutil.which("kubectl")


class KubectlResult:
    """What one kubectl run printed and returned."""

    def __init__(self, args: tuple[str, ...], proc: subprocess.CompletedProcess[str]) -> None:
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self) -> str:
        return (f"kubectl {' '.join(self.args)} -> rc={self.rc}\n--- stdout\n{self.out}"
                f"--- stderr\n{self.err}")

    def json(self) -> Any:
        return json.loads(self.out)


class Lines:
    """Lines of a stream, read by a thread so that a test can wait with a timeout."""

    def __init__(self, stream: Any) -> None:
        self._queue: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in stream:
                self._queue.put(line)
            self._queue.put("")

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float = 20.0) -> str:
        """The next line ("" at the end of the stream)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s") from None


class Kubectl:
    """The real kubectl pointed at a kubeling cluster."""

    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def command(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir",
                str(self.cache_dir), *args]

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> KubectlResult:
        import os

        proc = subprocess.run(self.command(*args), input=input, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
        return KubectlResult(args, proc)

    def ok(self, *args: str, **kwargs: Any) -> KubectlResult:
        """Run and require exit code 0."""
        result = self(*args, **kwargs)
        assert result.rc == 0, result
        return result

    def fails(self, *args: str, **kwargs: Any) -> KubectlResult:
        """Run and require a non-zero exit code."""
        result = self(*args, **kwargs)
        assert result.rc != 0, result
        return result

    def get_json(self, *args: str) -> Any:
        return self.ok("get", *args, "-o", "json").json()

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @staticmethod
    def lines(proc: subprocess.Popen[str]) -> Lines:
        """Read a running kubectl's output line by line, with timeouts."""
        assert proc.stdout is not None
        return Lines(proc.stdout)

    @staticmethod
    def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
        """Poll ``predicate`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            time.sleep(interval)

    @staticmethod
    def manifest(*docs: dict[str, Any]) -> str:
        """A multi-document YAML manifest."""
        return "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in docs)


@pytest.fixture(scope="session")
def kubectl_for(tmp_path_factory: pytest.TempPathFactory
                ) -> Callable[[KubelingProcess], Kubectl]:
    """Make a :class:`Kubectl` for another ``kubeling up`` than the session's."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")

    def make(proc: KubelingProcess) -> Kubectl:
        return Kubectl(proc.kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))

    return make


@pytest.fixture(scope="session")
def kubectl(kubeling: KubelingProcess, kubectl_for: Callable[[KubelingProcess], Kubectl]
            ) -> Kubectl:
    """The real kubectl against the session's ``kubeling up``."""
    return kubectl_for(kubeling)


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, created with kubectl and deleted afterwards."""
    name = f"c-{uuid.uuid4().hex[:10]}"
    kubectl.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    yield name
    kubectl("delete", "namespace", name, "--wait=false")
