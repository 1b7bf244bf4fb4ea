"""kubeling's Docker runtime: a pod is an infra container plus app containers joined to it."""

from kubeling_runtime_docker.runtime import DockerRuntime, DockerSettings

__all__ = ["DockerRuntime", "DockerSettings"]
