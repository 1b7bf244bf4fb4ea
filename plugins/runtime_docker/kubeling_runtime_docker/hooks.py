"""The plugin's hook implementations: registers the ``docker`` runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubeling import hookimpl
from kubeling_runtime_docker.runtime import DockerRuntime, DockerSettings

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import RegisterNamedFactory

__all__ = ["factory", "kubeling_register_runtimes"]


def factory(settings: DockerSettings | None, ctx: Context) -> DockerRuntime:
    """Build the (not yet started) Docker runtime with the ``node.docker`` settings."""
    return DockerRuntime(settings or DockerSettings())


@hookimpl
def kubeling_register_runtimes(register: RegisterNamedFactory) -> None:
    """Register the ``docker`` runtime with its settings class (``node.docker``)."""
    register("docker", factory, settings=DockerSettings)
