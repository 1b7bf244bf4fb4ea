"""The container runtime interface: what a node agent needs from a runtime, CRI-shaped.

A :class:`Runtime` runs *pod sandboxes* (the pod's network namespace and IP, held by an
infra container or its equivalent) and *containers* joined to a sandbox, pulls images,
streams logs and runs commands.  The shapes follow the Kubernetes Container Runtime
Interface (``RunPodSandbox``, ``CreateContainer``, ``ContainerStatus``, ``ExecSync``...)
so other runtimes plug in the same way; every runtime plugin's tests subclass
:class:`kubeling.testing.runtime_contract.RuntimeContract`.

Everything the agent must recover after a restart is stored by the runtime with the
objects it creates: the ``labels`` of :class:`PodSandboxConfig` and
:class:`ContainerConfig` come back unchanged from the ``list_*`` and ``*_status`` calls,
which is how the agent re-adopts running pods (which pod, which container, which attempt).

The runtime never talks to the API; the agent translates pods to these calls.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "ContainerConfig",
    "ContainerRuntimeError",
    "ContainerState",
    "ContainerStats",
    "ContainerStatus",
    "ExecResult",
    "ExecSession",
    "ImageInfo",
    "ImageNotFoundError",
    "ImagePullError",
    "Mount",
    "NotFoundError",
    "PodSandboxConfig",
    "PodSandboxStatus",
    "PortMapping",
    "Resources",
    "Runtime",
    "RuntimeUnavailableError",
    "RuntimeVersion",
    "SandboxState",
    "SecurityOptions",
]


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


class ContainerRuntimeError(Exception):
    """A runtime call failed; ``str()`` is a message fit for a pod's status."""


class RuntimeUnavailableError(ContainerRuntimeError):
    """The runtime's daemon cannot be reached (the message says where and how to start it)."""


class NotFoundError(ContainerRuntimeError):
    """The sandbox, container or image does not exist (any more)."""


class ImagePullError(ContainerRuntimeError):
    """An image could not be pulled (kubelet reports ``ErrImagePull``)."""


class ImageNotFoundError(ContainerRuntimeError):
    """The image is not present and the pull policy forbids pulling (``ErrImageNeverPull``)."""


# ---------------------------------------------------------------------------------------
# sandboxes
# ---------------------------------------------------------------------------------------


class SandboxState(enum.Enum):
    READY = "ready"
    NOT_READY = "notready"


@attrs.frozen(kw_only=True)
class PortMapping:
    """A container port; ``host_port`` only for host-published ports."""

    container_port: int
    protocol: str = "TCP"
    host_port: int | None = None
    host_ip: str | None = None


@attrs.frozen(kw_only=True)
class PodSandboxConfig:
    """What to run a pod's sandbox with (CRI ``PodSandboxConfig``)."""

    name: str
    namespace: str
    uid: str
    attempt: int = 0
    """Increases each time the sandbox of the same pod is re-created."""
    hostname: str = ""
    host_network: bool = False
    labels: Mapping[str, str] = attrs.field(factory=dict)
    """Kept by the runtime and returned by :meth:`Runtime.list_sandboxes`."""
    dns_servers: Sequence[str] = ()
    dns_searches: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    host_aliases: Sequence[tuple[str, str]] = ()
    """(ip, hostname) pairs added to the pod's ``/etc/hosts``."""
    port_mappings: Sequence[PortMapping] = ()
    sysctls: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PodSandboxStatus:
    """A sandbox as the runtime sees it (CRI ``PodSandboxStatus``)."""

    id: str
    state: SandboxState
    created_at: float
    """Seconds since the epoch."""
    ip: str = ""
    ips: Sequence[str] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict)
    host_network: bool = False
    pid: int = 0
    """The sandbox's init process on the host (0 when unknown); used for port-forward."""


# ---------------------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------------------


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class Mount:
    """A host path bind-mounted into a container."""

    host_path: str
    container_path: str
    read_only: bool = False
    propagation: str = "private"
    """``private``, ``rslave`` (HostToContainer) or ``rshared`` (Bidirectional)."""


@attrs.frozen(kw_only=True)
class Resources:
    """Linux resources, already converted from the pod's requests and limits."""

    cpu_shares: int = 0
    """cgroup cpu.shares (requests.cpu in millicores * 1024 / 1000, at least 2)."""
    cpu_quota: int = 0
    """CFS quota in microseconds per ``cpu_period`` (limits.cpu); 0 means unlimited."""
    cpu_period: int = 100_000
    memory_limit_bytes: int = 0
    """0 means unlimited."""


@attrs.frozen(kw_only=True)
class SecurityOptions:
    """The parts of a container's securityContext a runtime enforces."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: Sequence[int] = ()
    privileged: bool = False
    read_only_root_filesystem: bool = False
    capabilities_add: Sequence[str] = ()
    capabilities_drop: Sequence[str] = ()
    no_new_privileges: bool = False


@attrs.frozen(kw_only=True)
class ContainerConfig:
    """What to create a container with (CRI ``ContainerConfig``)."""

    name: str
    image: str
    attempt: int = 0
    command: Sequence[str] | None = None
    """Replaces the image's entrypoint (Kubernetes ``command``); None keeps it."""
    args: Sequence[str] | None = None
    """Replaces the image's cmd (Kubernetes ``args``); None keeps it unless ``command``
    is given, in which case the image's cmd is ignored, as in Kubernetes."""
    working_dir: str = ""
    env: Sequence[tuple[str, str]] = ()
    mounts: Sequence[Mount] = ()
    ports: Sequence[PortMapping] = ()
    resources: Resources = attrs.field(factory=Resources)
    security: SecurityOptions = attrs.field(factory=SecurityOptions)
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    labels: Mapping[str, str] = attrs.field(factory=dict)
    """Kept by the runtime and returned by :meth:`Runtime.list_containers`."""
    pid_namespace_of: str | None = None
    """Join the process namespace of this container (an ephemeral container's
    ``targetContainerName``); None: a namespace of its own."""


@attrs.frozen(kw_only=True)
class ContainerStatus:
    """A container as the runtime sees it (CRI ``ContainerStatus``)."""

    id: str
    name: str
    sandbox_id: str
    state: ContainerState
    created_at: float
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    """``OOMKilled``, ``Error``, ``Completed`` for exited containers; empty otherwise."""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    """The image's digest or id (Kubernetes ``imageID``)."""
    attempt: int = 0
    labels: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ExecResult:
    """What :meth:`Runtime.exec_sync` returns."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False


@runtime_checkable
class ExecSession(Protocol):
    """An interactive exec or attach: stdin in, (stream, bytes) out, then an exit code.

    ``read()`` returns ``(1, data)`` for stdout, ``(2, data)`` for stderr (with a TTY
    everything is stdout) and ``None`` at the end.
    """

    async def write_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def read(self) -> tuple[int, bytes] | None: ...
    async def resize(self, width: int, height: int) -> None: ...
    async def wait(self) -> int:
        """The command's exit code, once it has exited (attach: the container's)."""
        ...
    async def close(self) -> None: ...


@attrs.frozen(kw_only=True)
class ContainerStats:
    """A container's resource usage, as sampled now (``kubectl top`` derives rates)."""

    cpu_usage_ns: int
    """CPU time used since the container started, in nanoseconds (cumulative)."""
    memory_working_set_bytes: int
    """Memory in use minus inactive file cache (what the OOM killer counts)."""


@attrs.frozen(kw_only=True)
class ImageInfo:
    """An image present on the node (what the Node's ``status.images`` lists)."""

    id: str
    names: Sequence[str] = ()
    """Its references: ``repo@sha256:...`` digests, then ``repo:tag`` names."""
    size: int = 0
    """Bytes."""


@attrs.frozen(kw_only=True)
class RuntimeVersion:
    runtime_name: str
    runtime_version: str
    api_version: str = "v1"

    @property
    def uri(self) -> str:
        """``docker://28.2.2``: how Kubernetes shows ``containerRuntimeVersion``."""
        return f"{self.runtime_name}://{self.runtime_version}"


# ---------------------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------------------


@runtime_checkable
class Runtime(Protocol):
    """A container runtime.  Methods are coroutines unless noted; errors are
    :class:`ContainerRuntimeError`.

    Identifiers are the runtime's own strings.  ``labels`` filters match exactly (every
    given key with the given value).
    """

    name: str
    """Short name used in container ids reported to the API (``docker://<id>``)."""

    def check_available(self) -> None:
        """Quickly (synchronously, in well under a second) check the daemon answers.

        Used at start-up to decide whether this machine can be a node.

        :raises RuntimeUnavailableError: it does not; the message says which address was
            tried and how to start the daemon.
        """

    async def start(self) -> None:
        """Connect and prepare (build the infra image...).

        :raises RuntimeUnavailableError: the daemon is unreachable; the message says which
            address was tried and how to start it.
        """

    async def close(self) -> None:
        """Release connections; running containers keep running."""

    async def version(self) -> RuntimeVersion: ...

    # -- sandboxes
    async def run_sandbox(self, config: PodSandboxConfig) -> str:
        """Create and start a sandbox; returns its id once it has its IP."""

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """Stop the sandbox and force-stop every container in it.  Idempotent."""

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and its containers.  Idempotent."""

    async def sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        """:raises NotFoundError: no such sandbox."""

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None
                             ) -> list[PodSandboxStatus]: ...

    # -- containers
    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox: PodSandboxConfig) -> str:
        """Create (not start) a container in the sandbox; returns its id.

        :raises ImageNotFoundError: the image is not present (pull it first).
        """

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """SIGTERM (or the image's stop signal), then SIGKILL after ``timeout`` seconds.

        Idempotent: stopping an exited container does nothing.
        """

    async def remove_container(self, container_id: str) -> None:
        """Remove a container (force).  Idempotent."""

    async def container_status(self, container_id: str) -> ContainerStatus:
        """:raises NotFoundError: no such container."""

    async def list_containers(self, *, sandbox_id: str | None = None,
                              labels: Mapping[str, str] | None = None
                              ) -> list[ContainerStatus]: ...

    async def container_stats(self, container_id: str) -> ContainerStats:
        """The container's CPU time and working set now (for the metrics API).

        :raises NotFoundError: no such container.
        """

    # -- images
    async def image_present(self, image: str) -> str | None:
        """The image's id when present locally, else None."""

    async def pull_image(self, image: str) -> str:
        """Pull an image; returns its id.

        :raises ImagePullError: with a message fit for ``ErrImagePull``.
        """

    async def list_images(self) -> list[ImageInfo]:
        """The images present on the node (the kubelet reports the largest 50 in the
        Node's status, which the scheduler's ImageLocality scores by)."""

    # -- streaming
    def logs(self, container_id: str, *, follow: bool = False, tail: int | None = None,
             timestamps: bool = False, since: float | None = None,
             limit_bytes: int | None = None) -> AsyncIterator[bytes]:
        """The container's output, stdout and stderr interleaved as written.

        ``timestamps`` prefixes each line with an RFC 3339 time; ``since`` is seconds since
        the epoch; ``follow`` keeps streaming until the container exits.
        """

    async def exec_sync(self, container_id: str, command: Sequence[str],
                        timeout: float) -> ExecResult:
        """Run a command to completion (probes, hooks); ``timed_out`` after ``timeout``."""

    async def exec(self, container_id: str, command: Sequence[str], *, stdin: bool,
                   tty: bool) -> ExecSession:
        """Start an interactive command in a running container."""

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecSession:
        """Attach to a running container's main process."""

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[object, object]:
        """Open a TCP connection to ``port`` inside the sandbox's network namespace.

        :returns: an asyncio ``(StreamReader, StreamWriter)`` pair.
        """
