"""The Docker runtime: :class:`kubeling.runtime.Runtime` on the Docker Engine API.

A pod sandbox is an *infra container* (a static busybox ``sleep`` from an image built
locally) that holds the pod's network and IPC namespaces and so its IP; every app
container joins them (``--network container:<infra>``, ``--ipc container:<infra>``), so the
containers of a pod share ``localhost``, the pod IP, ``/etc/hosts`` and the hostname.
Everything carries labels (``io.kubeling.*`` plus the agent's own), which is how a
restarted agent finds what it was running.

We talk to dockerd with aiodocker: it is asyncio on aiohttp (the HTTP stack kubeling
already uses, so one event loop drives the API server, the agent and the runtime without
threads), and it implements the hijacked HTTP connections that exec and attach need.  The
docker SDK would need a thread per blocking call and per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime
import ipaddress
import json
import logging
import math
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import attrs
from aiodocker.exceptions import DockerError
from yarl import URL

from kubeling.runtime import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImageNotFoundError,
    ImagePullError,
    NotFoundError,
    PodSandboxConfig,
    PodSandboxStatus,
    RuntimeUnavailableError,
    RuntimeVersion,
    SandboxState,
)
from kubeling_runtime_docker.images import busybox_rootfs, import_image_args

log = logging.getLogger(__name__)

__all__ = ["DockerRuntime", "DockerSettings"]

LABEL_TYPE = "io.kubeling.type"
LABEL_SANDBOX = "io.kubeling.sandbox"
LABEL_NAME = "io.kubeling.container-name"
LABEL_ATTEMPT = "io.kubeling.attempt"
LABEL_HOST_NETWORK = "io.kubeling.host-network"
OFFLINE_ENV = "KUBELING_DOCKER_OFFLINE"
PAUSE_SECONDS = "2147483647"


@attrs.frozen(kw_only=True)
class DockerSettings:
    """The ``node.docker`` config section."""

    host: str = "unix:///var/run/docker.sock"
    """Where dockerd listens (``unix://`` path or ``tcp://host:port``)."""
    network: str = "bridge"
    """The Docker network pod sandboxes join; its addresses become pod IPs."""
    pause_image: str = "kubeling/pause:1"
    """The infra container's image; built locally from ``busybox`` when missing."""
    busybox: str = "/bin/busybox"
    """A statically linked busybox (Debian's busybox-static) to build the infra image from."""
    offline: bool = False
    """Never contact a registry except on a loopback address: a missing image then fails
    as ErrImagePull at once (air-gapped hosts, test runs).  The environment variable
    ``KUBELING_DOCKER_OFFLINE=1`` sets it too."""
    pull_timeout_seconds: float = 300.0
    """An image pull taking longer fails."""


def _parse_time(value: str | None) -> float:
    """Docker's RFC 3339 (nanosecond) times -> epoch seconds; the zero time -> 0."""
    if not value or value.startswith("0001-01-01"):
        return 0.0
    main, _, rest = value.partition(".")
    frac = ""
    tz = "Z"
    if rest:
        digits = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tz = rest[i:]
                break
            digits += ch
        frac = digits
    elif value.endswith("Z"):
        main = value[:-1]
    else:
        main, tz = value[:19], value[19:] or "Z"
    stamp = datetime.datetime.fromisoformat(main.rstrip("Z") + ("+00:00" if tz == "Z" else tz))
    return stamp.timestamp() + (float("0." + frac) if frac else 0.0)


def _offline(settings: DockerSettings) -> bool:
    return settings.offline or os.environ.get(OFFLINE_ENV, "") not in ("", "0", "false")


def _registry_of(image: str) -> str:
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _loopback_registry(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unavailable_message(host: str, detail: str) -> str:
    return (f"cannot reach dockerd at {host} ({detail}). Start it with "
            f"'sudo systemctl start docker' (or run 'sudo dockerd &'); install it with "
            f"'sudo apt-get install docker.io'; or point node.docker.host at the daemon")


class DockerRuntime:
    """:class:`kubeling.runtime.Runtime` on dockerd."""

    name = "docker"

    def __init__(self, settings: DockerSettings) -> None:
        self.settings = settings
        self._docker: aiodocker.Docker | None = None
        self._inspect_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._pause_ready = False
        self._pause_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------

    def check_available(self) -> None:
        host = self.settings.host
        try:
            if host.startswith("unix://"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(1.0)
                sock.connect(host[len("unix://"):])
            elif host.startswith(("tcp://", "http://")):
                url = URL(host.replace("tcp://", "http://"))
                sock = socket.create_connection((url.host or "127.0.0.1", url.port or 2375), 1.0)
            else:
                raise RuntimeUnavailableError(
                    f"node.docker.host: {host!r} is not a unix:// or tcp:// address")
            with sock:
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = sock.recv(64)
        except OSError as exc:
            raise RuntimeUnavailableError(_unavailable_message(
                host, exc.strerror or str(exc))) from None
        if not reply.startswith(b"HTTP/1.") or b" 200" not in reply[:16]:
            raise RuntimeUnavailableError(_unavailable_message(
                host, f"it answered {reply[:40]!r}, not OK"))

    async def start(self) -> None:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.settings.host)
        try:
            await self._docker.version()
        except (DockerError, aiohttp.ClientError, OSError) as exc:
            raise RuntimeUnavailableError(_unavailable_message(self.settings.host,
                                                               str(exc))) from None

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.settings.host)
        return self._docker

    async def version(self) -> RuntimeVersion:
        info = await self._call(self.docker.version())
        return RuntimeVersion(runtime_name="docker", runtime_version=info.get("Version", ""),
                              api_version=info.get("ApiVersion", ""))

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except DockerError as exc:
            if exc.status == 404:
                raise NotFoundError(exc.message) from None
            if exc.status == 900:
                raise RuntimeUnavailableError(_unavailable_message(self.settings.host,
                                                                   exc.message)) from None
            raise ContainerRuntimeError(exc.message) from None
        except aiohttp.ClientError as exc:
            raise RuntimeUnavailableError(_unavailable_message(self.settings.host,
                                                               str(exc))) from None

    async def _json(self, path: str | URL, method: str = "GET", **kw: Any) -> Any:
        return await self._call(self.docker._query_json(path, method, **kw))

    async def _inspect(self, container_id: str, state: str | None = None) -> dict[str, Any]:
        if state is not None:
            cached = self._inspect_cache.get((container_id, state))
            if cached is not None:
                return cached
        info = await self._json(f"containers/{container_id}/json")
        actual = info.get("State", {}).get("Status", "")
        if actual in ("running", "exited", "dead"):
            if len(self._inspect_cache) > 5000:
                self._inspect_cache.clear()
            self._inspect_cache[(container_id, actual)] = info
        return info

    # -- images -------------------------------------------------------------------------

    async def image_present(self, image: str) -> str | None:
        try:
            info = await self._json(f"images/{image}/json")
        except NotFoundError:
            return None
        return str(info.get("Id", ""))

    async def container_stats(self, container_id: str) -> ContainerStats:
        stats = await self._json(f"containers/{container_id}/stats",
                                 params={"stream": "false", "one-shot": "true"})
        cpu = int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {})
                  .get("total_usage") or 0)
        memory = stats.get("memory_stats") or {}
        detail = memory.get("stats") or {}
        inactive = int(detail.get("inactive_file", detail.get("total_inactive_file", 0)) or 0)
        usage = int(memory.get("usage") or 0)
        return ContainerStats(cpu_usage_ns=cpu,
                              memory_working_set_bytes=max(usage - inactive, 0))

    async def list_images(self) -> list[ImageInfo]:
        images = await self._json("images/json")
        out = []
        for image in images or []:
            names = [n for n in [*(image.get("RepoDigests") or []),
                                 *(image.get("RepoTags") or [])]
                     if n and "<none>" not in n]
            out.append(ImageInfo(id=str(image.get("Id", "")), names=tuple(names),
                                 size=int(image.get("Size") or 0)))
        return out

    async def pull_image(self, image: str) -> str:
        registry = _registry_of(image)
        if _offline(self.settings) and not _loopback_registry(registry):
            raise ImagePullError(
                f'failed to pull image "{image}": pulls from {registry} are disabled '
                f"(node.docker.offline); load the image into dockerd first")
        name, tag = image, "latest"
        last = image.rsplit("/", 1)[-1]
        if "@" in image:
            name, _, tag = image.partition("@")
        elif ":" in last:
            name, _, tag = image.rpartition(":")
        params = {"fromImage": name, "tag": tag}
        error = ""
        try:
            async with asyncio.timeout(self.settings.pull_timeout_seconds):
                async with self.docker._query("images/create", "POST", params=params,
                                              timeout=None) as resp:
                    async for line in resp.content:
                        with contextlib.suppress(ValueError):
                            item = json.loads(line)
                            if isinstance(item, dict) and item.get("error"):
                                error = str(item["error"])
        except TimeoutError:
            raise ImagePullError(f'failed to pull image "{image}": timed out after '
                                 f"{self.settings.pull_timeout_seconds:g}s") from None
        except DockerError as exc:
            raise ImagePullError(f'failed to pull image "{image}": {exc.message}') from None
        except aiohttp.ClientError as exc:
            raise RuntimeUnavailableError(_unavailable_message(self.settings.host,
                                                               str(exc))) from None
        if error:
            raise ImagePullError(f'failed to pull image "{image}": {error}')
        ref = await self.image_present(image)
        if ref is None:
            raise ImagePullError(f'failed to pull image "{image}": not present after the pull')
        return ref

    async def import_image(self, repo_tag: str, rootfs: bytes, *,
                           cmd: Sequence[str] | None = None,
                           labels: dict[str, str] | None = None) -> str:
        """``docker import`` a root filesystem tarball as ``repo_tag``; returns its id."""
        params = import_image_args(repo_tag, cmd=cmd, labels=labels)
        url = URL("images/create").with_query(
            [(k, v) for k, vs in params.items() for v in ([vs] if isinstance(vs, str) else vs)])
        async with self.docker._query(url, "POST", data=rootfs,
                                      headers={"Content-Type": "application/x-tar"},
                                      timeout=None) as resp:
            await resp.read()
        ref = await self.image_present(repo_tag)
        if ref is None:
            raise ContainerRuntimeError(f"importing {repo_tag} failed")
        return ref

    async def remove_image(self, image: str) -> None:
        """Remove a local image (tests); missing is fine."""
        with contextlib.suppress(NotFoundError):
            await self._json(f"images/{image}", "DELETE", params={"force": True})

    async def _ensure_pause_image(self) -> None:
        if self._pause_ready:
            return
        async with self._pause_lock:
            if self._pause_ready:
                return
            if await self.image_present(self.settings.pause_image) is None:
                try:
                    rootfs = busybox_rootfs(Path(self.settings.busybox), applets=("sleep", "sh"))
                except ValueError as exc:
                    raise ContainerRuntimeError(f"cannot build the infra image "
                                                f"{self.settings.pause_image}: {exc}") from None
                log.info("building the infra image %s from %s", self.settings.pause_image,
                         self.settings.busybox)
                await self.import_image(self.settings.pause_image, rootfs,
                                        cmd=["/bin/sleep", PAUSE_SECONDS],
                                        labels={"io.kubeling.image": "pause"})
            self._pause_ready = True

    # -- sandboxes ----------------------------------------------------------------------

    async def run_sandbox(self, config: PodSandboxConfig) -> str:
        await self._ensure_pause_image()
        labels = {**config.labels, LABEL_TYPE: "sandbox", LABEL_ATTEMPT: str(config.attempt),
                  LABEL_HOST_NETWORK: "true" if config.host_network else "false"}
        host_config: dict[str, Any] = {
            "NetworkMode": "host" if config.host_network else self.settings.network,
            "IpcMode": "shareable",
            "RestartPolicy": {"Name": "no"},
            "Init": False,
        }
        if config.dns_servers:
            host_config["Dns"] = list(config.dns_servers)
        if config.dns_searches:
            host_config["DnsSearch"] = list(config.dns_searches)
        if config.dns_options:
            host_config["DnsOptions"] = list(config.dns_options)
        if config.host_aliases:
            host_config["ExtraHosts"] = [f"{name}:{ip}" for ip, name in config.host_aliases]
        if config.sysctls and not config.host_network:
            host_config["Sysctls"] = dict(config.sysctls)
        body: dict[str, Any] = {
            "Image": self.settings.pause_image,
            "Cmd": ["/bin/sleep", PAUSE_SECONDS],
            "Labels": labels,
            "HostConfig": host_config,
        }
        published = [m for m in config.port_mappings if m.host_port]
        if published and not config.host_network:
            # hostPort: dockerd publishes the sandbox's port (its own DNAT rules and proxy),
            # as the CRI runtimes' hostport manager does
            bindings: dict[str, list[dict[str, str]]] = {}
            for m in published:
                key = f"{m.container_port}/{m.protocol.lower()}"
                bindings.setdefault(key, []).append({"HostIp": m.host_ip or "",
                                                     "HostPort": str(m.host_port)})
            body["ExposedPorts"] = {key: {} for key in bindings}
            host_config["PortBindings"] = bindings
        if config.hostname and not config.host_network:
            body["Hostname"] = config.hostname[:63]
        name = f"k8s_POD_{config.name}_{config.namespace}_{config.uid}_{config.attempt}"
        sandbox_id = await self._create(body, name)
        try:
            await self._json(f"containers/{sandbox_id}/start", "POST")
        except ContainerRuntimeError:
            await self.remove_container(sandbox_id)
            raise
        return sandbox_id

    async def _create(self, body: dict[str, Any], name: str) -> str:
        try:
            created = await self._json("containers/create", "POST", params={"name": name},
                                       data=body)
        except ContainerRuntimeError as exc:
            if "is already in use" not in str(exc):
                raise
            # a leftover of an earlier attempt under the same name: it is ours to replace
            # only when it is not running
            with contextlib.suppress(NotFoundError):
                old = await self._inspect(name)
                if old.get("State", {}).get("Running"):
                    raise
                await self.remove_container(old["Id"])
            created = await self._json("containers/create", "POST", params={"name": name},
                                       data=body)
        return str(created["Id"])

    async def stop_sandbox(self, sandbox_id: str) -> None:
        for c in await self.list_containers(sandbox_id=sandbox_id):
            if c.state == ContainerState.RUNNING:
                await self.stop_container(c.id, 0)
        await self.stop_container(sandbox_id, 0)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        for c in await self.list_containers(sandbox_id=sandbox_id):
            await self.remove_container(c.id)
        await self.remove_container(sandbox_id)

    async def sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        info = await self._inspect(sandbox_id)
        if (info.get("Config", {}).get("Labels") or {}).get(LABEL_TYPE) != "sandbox":
            raise NotFoundError(f"{sandbox_id} is not a pod sandbox")
        return self._sandbox_from(info)

    def _sandbox_from(self, info: dict[str, Any]) -> PodSandboxStatus:
        state = info.get("State", {})
        labels = dict(info.get("Config", {}).get("Labels") or {})
        host_network = labels.get(LABEL_HOST_NETWORK) == "true"
        ip = ""
        if state.get("Running") and not host_network:
            networks = info.get("NetworkSettings", {}).get("Networks") or {}
            net = networks.get(self.settings.network) or next(iter(networks.values()), {})
            ip = net.get("IPAddress", "") or info.get("NetworkSettings", {}).get("IPAddress", "")
        for key in (LABEL_TYPE, LABEL_ATTEMPT, LABEL_HOST_NETWORK):
            labels.pop(key, None)
        return PodSandboxStatus(
            id=info["Id"],
            state=SandboxState.READY if state.get("Running") else SandboxState.NOT_READY,
            created_at=_parse_time(info.get("Created")),
            ip=ip, ips=(ip,) if ip else (),
            labels=labels,
            host_network=host_network,
            pid=int(state.get("Pid") or 0),
        )

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None
                             ) -> list[PodSandboxStatus]:
        summaries = await self._list({**(labels or {}), LABEL_TYPE: "sandbox"})
        infos = await asyncio.gather(*(self._safe_inspect(s) for s in summaries))
        return [self._sandbox_from(i) for i in infos if i is not None]

    async def _list(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return list(await self._json("containers/json",
                                     params={"all": "1", "filters": json.dumps(filters)}))

    async def _safe_inspect(self, summary: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self._inspect(summary["Id"], summary.get("State"))
        except NotFoundError:
            return None

    # -- containers ---------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox: PodSandboxConfig) -> str:
        labels = {**config.labels, LABEL_TYPE: "container", LABEL_SANDBOX: sandbox_id,
                  LABEL_NAME: config.name, LABEL_ATTEMPT: str(config.attempt)}
        res = config.resources
        sec = config.security
        host_config: dict[str, Any] = {
            "NetworkMode": f"container:{sandbox_id}",
            "IpcMode": f"container:{sandbox_id}",
            "RestartPolicy": {"Name": "no"},
            "Privileged": sec.privileged,
            "ReadonlyRootfs": sec.read_only_root_filesystem,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}},
        }
        if config.pid_namespace_of:
            host_config["PidMode"] = f"container:{config.pid_namespace_of}"
        if res.cpu_shares:
            host_config["CpuShares"] = res.cpu_shares
        if res.cpu_quota:
            host_config["CpuQuota"] = res.cpu_quota
            host_config["CpuPeriod"] = res.cpu_period
        if res.memory_limit_bytes:
            host_config["Memory"] = res.memory_limit_bytes
        if sec.capabilities_add:
            host_config["CapAdd"] = list(sec.capabilities_add)
        if sec.capabilities_drop:
            host_config["CapDrop"] = list(sec.capabilities_drop)
        if sec.no_new_privileges:
            host_config["SecurityOpt"] = ["no-new-privileges"]
        if sec.supplemental_groups:
            host_config["GroupAdd"] = [str(g) for g in sec.supplemental_groups]
        if config.mounts:
            host_config["Mounts"] = [{
                "Type": "bind", "Source": m.host_path, "Target": m.container_path,
                "ReadOnly": m.read_only,
                "BindOptions": {"Propagation": m.propagation},
            } for m in config.mounts]
        body: dict[str, Any] = {
            "Image": config.image,
            "Env": [f"{k}={v}" for k, v in config.env],
            "Labels": labels,
            "HostConfig": host_config,
            "Tty": config.tty,
            "OpenStdin": config.stdin,
            "StdinOnce": config.stdin_once,
            "AttachStdin": config.stdin,
            "AttachStdout": True,
            "AttachStderr": True,
        }
        if config.command is not None:
            body["Entrypoint"] = list(config.command)
            body["Cmd"] = list(config.args or [])
        elif config.args is not None:
            body["Cmd"] = list(config.args)
        if config.working_dir:
            body["WorkingDir"] = config.working_dir
        if sec.run_as_user is not None:
            body["User"] = str(sec.run_as_user) + (
                f":{sec.run_as_group}" if sec.run_as_group is not None else "")
        elif sec.run_as_group is not None:
            body["User"] = f"0:{sec.run_as_group}"
        # config.ports are informational: a container joined to the sandbox's network
        # cannot expose ports of its own (dockerd refuses), and pod IPs are reachable as is
        name = (f"k8s_{config.name}_{sandbox.name}_{sandbox.namespace}_{sandbox.uid}_"
                f"{config.attempt}")
        try:
            return await self._create(body, name)
        except NotFoundError:
            raise ImageNotFoundError(f'image "{config.image}" is not present') from None

    async def start_container(self, container_id: str) -> None:
        await self._json(f"containers/{container_id}/start", "POST")

    async def stop_container(self, container_id: str, timeout: float) -> None:
        seconds = max(0, math.ceil(timeout))
        try:
            # dockerd sends the stop signal, waits t seconds, then SIGKILL; it answers 304
            # for a container that is not running.
            await self._call(self.docker._query_json(
                f"containers/{container_id}/stop", "POST", params={"t": seconds},
                timeout=aiohttp.ClientTimeout(total=seconds + 30)))
        except NotFoundError:
            return
        except ContainerRuntimeError as exc:
            if "is not running" in str(exc) or "304" in str(exc):
                return
            raise

    async def remove_container(self, container_id: str) -> None:
        with contextlib.suppress(NotFoundError):
            try:
                await self._json(f"containers/{container_id}", "DELETE",
                                 params={"force": "1", "v": "1"})
            except ContainerRuntimeError as exc:
                if "is already in progress" not in str(exc):
                    raise

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container_from(await self._inspect(container_id))

    def _container_from(self, info: dict[str, Any]) -> ContainerStatus:
        state = info.get("State", {})
        labels = dict(info.get("Config", {}).get("Labels") or {})
        status = state.get("Status", "")
        if state.get("Running"):
            cstate = ContainerState.RUNNING
        elif status == "created":
            cstate = ContainerState.CREATED
        elif status in ("exited", "dead"):
            cstate = ContainerState.EXITED
        else:
            cstate = ContainerState.UNKNOWN
        exit_code = int(state.get("ExitCode") or 0)
        reason = ""
        message = ""
        if cstate == ContainerState.EXITED:
            if state.get("OOMKilled"):
                reason = "OOMKilled"
            else:
                reason = "Completed" if exit_code == 0 else "Error"
            message = state.get("Error", "") or ""
        started_at = _parse_time(state.get("StartedAt"))
        finished_at = _parse_time(state.get("FinishedAt")) \
            if cstate == ContainerState.EXITED else 0.0
        if finished_at:
            # dockerd stamps StartedAt after the process began, sometimes after a quick
            # one already ended
            finished_at = max(finished_at, started_at)
        name = labels.pop(LABEL_NAME, "")
        attempt = int(labels.pop(LABEL_ATTEMPT, "0") or 0)
        sandbox_id = labels.pop(LABEL_SANDBOX, "")
        labels.pop(LABEL_TYPE, None)
        return ContainerStatus(
            id=info["Id"], name=name, sandbox_id=sandbox_id, state=cstate,
            created_at=_parse_time(info.get("Created")),
            started_at=started_at, finished_at=finished_at,
            exit_code=exit_code, reason=reason, message=message,
            image=info.get("Config", {}).get("Image", ""),
            image_ref=str(info.get("Image", "")),
            attempt=attempt, labels=labels,
        )

    async def list_containers(self, *, sandbox_id: str | None = None,
                              labels: Mapping[str, str] | None = None
                              ) -> list[ContainerStatus]:
        wanted = {**(labels or {}), LABEL_TYPE: "container"}
        if sandbox_id is not None:
            wanted[LABEL_SANDBOX] = sandbox_id
        summaries = await self._list(wanted)
        infos = await asyncio.gather(*(self._safe_inspect(s) for s in summaries))
        return [self._container_from(i) for i in infos if i is not None]

    # -- streaming ----------------------------------------------------------------------

    async def logs(self, container_id: str, *, follow: bool = False, tail: int | None = None,
                   timestamps: bool = False, since: float | None = None,
                   limit_bytes: int | None = None) -> AsyncIterator[bytes]:
        info = await self._inspect(container_id)
        tty = bool(info.get("Config", {}).get("Tty"))
        params: dict[str, Any] = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0",
                                  "timestamps": "1" if timestamps else "0",
                                  "tail": str(tail) if tail is not None and tail >= 0 else "all"}
        if since:
            params["since"] = f"{since:.9f}"
        sent = 0
        try:
            async with self.docker._query(f"containers/{container_id}/logs", "GET",
                                          params=params, timeout=None) as resp:
                async for chunk in _demux(resp.content, tty):
                    if limit_bytes is not None:
                        chunk = chunk[:max(0, limit_bytes - sent)]
                    if chunk:
                        sent += len(chunk)
                        yield chunk
                    if limit_bytes is not None and sent >= limit_bytes:
                        return
        except DockerError as exc:
            if exc.status == 404:
                raise NotFoundError(exc.message) from None
            raise ContainerRuntimeError(exc.message) from None

    async def exec_sync(self, container_id: str, command: Sequence[str],
                        timeout: float) -> ExecResult:
        session = await self.exec(container_id, command, stdin=False, tty=False)
        out: list[bytes] = []
        err: list[bytes] = []
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                while True:
                    item = await session.read()
                    if item is None:
                        break
                    (out if item[0] == 1 else err).append(item[1])
                code = await session.wait()
        except TimeoutError:
            await session.close()
            return ExecResult(exit_code=-1, stdout=b"".join(out), stderr=b"".join(err),
                              timed_out=True)
        await session.close()
        return ExecResult(exit_code=code, stdout=b"".join(out), stderr=b"".join(err))

    async def exec(self, container_id: str, command: Sequence[str], *, stdin: bool,
                   tty: bool) -> _DockerSession:
        if not command:
            raise ContainerRuntimeError("exec needs a command")
        container = self.docker.containers.container(container_id)
        try:
            execution = await container.exec(list(command), stdout=True, stderr=True,
                                             stdin=stdin, tty=tty)
        except DockerError as exc:
            if exc.status == 404:
                raise NotFoundError(exc.message) from None
            raise ContainerRuntimeError(exc.message) from None
        stream = execution.start(detach=False)
        session = _DockerSession(self, stream, tty=tty, exec_=execution)
        await session.open()
        return session

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> _DockerSession:
        container = self.docker.containers.container(container_id)
        stream = container.attach(stdout=True, stderr=True, stdin=stdin)
        session = _DockerSession(self, stream, tty=tty, container=container)
        await session.open()
        return session

    async def port_forward(self, sandbox_id: str, port: int
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        status = await self.sandbox_status(sandbox_id)
        if status.state != SandboxState.READY:
            raise ContainerRuntimeError(f"pod sandbox {sandbox_id[:12]} is not running")
        if status.host_network:
            return await asyncio.open_connection("127.0.0.1", port)
        sock: socket.socket | None = None
        if status.pid:
            try:
                sock = await asyncio.get_running_loop().run_in_executor(
                    None, _connect_in_netns, status.pid, port)
            except PermissionError:
                sock = None  # not root, or another PID namespace: use the pod IP
            except OSError as exc:
                raise ContainerRuntimeError(f"connecting to port {port} in the pod: "
                                            f"{exc.strerror or exc}") from None
        if sock is not None:
            return await asyncio.open_connection(sock=sock)
        if not status.ip:
            raise ContainerRuntimeError("the pod has no IP")
        try:
            return await asyncio.open_connection(status.ip, port)
        except OSError as exc:
            raise ContainerRuntimeError(f"connecting to {status.ip}:{port}: "
                                        f"{exc.strerror or exc}") from None


_CLONE_NEWNET = 0x40000000


def _connect_in_netns(pid: int, port: int) -> socket.socket:
    """Connect to 127.0.0.1:port inside the network namespace of ``pid``.

    Runs in a fresh thread: ``setns`` moves only the calling thread, and the socket keeps
    the namespace it was created in after the thread moves back.
    """
    result: list[Any] = []

    def work() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError as exc:
            result.append(PermissionError(str(exc)))
            return
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                result.append(PermissionError(os.strerror(ctypes.get_errno())))
                return
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setblocking(False)
                result.append(sock)
            except OSError as exc:
                result.append(exc)
            finally:
                if libc.setns(own, _CLONE_NEWNET) != 0:  # pragma: no cover - cannot happen
                    log.error("could not return a thread to the host network namespace")
        finally:
            os.close(own)
            os.close(target)

    thread = threading.Thread(target=work, name="netns-connect", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def _demux(content: aiohttp.StreamReader, tty: bool) -> AsyncIterator[bytes]:
    """Docker's multiplexed stream (8-byte frame headers) -> payloads; TTY streams as is."""
    if tty:
        async for chunk in content.iter_any():
            yield chunk
        return
    while True:
        try:
            header = await content.readexactly(8)
        except asyncio.IncompleteReadError:
            return
        _, size = struct.unpack(">BxxxL", header)
        if size:
            try:
                yield await content.readexactly(size)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    yield exc.partial
                return


class _DockerSession:
    """An exec or attach stream (:class:`kubeling.runtime.ExecSession`)."""

    def __init__(self, runtime: DockerRuntime, stream: Any, *, tty: bool,
                 exec_: Any = None, container: Any = None) -> None:
        self.runtime = runtime
        self.stream = stream
        self.tty = tty
        self.exec_ = exec_
        self.container = container
        self._closed = False

    async def open(self) -> None:
        try:
            await self.stream._init()
        except DockerError as exc:
            raise ContainerRuntimeError(exc.message) from None

    async def write_stdin(self, data: bytes) -> None:
        await self.stream.write_in(data)

    async def close_stdin(self) -> None:
        resp = self.stream._resp
        transport = resp.connection.transport if resp is not None and resp.connection else None
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    async def read(self) -> tuple[int, bytes] | None:
        try:
            message = await self.stream.read_out()
        except (aiohttp.ClientError, ConnectionError):
            return None
        if message is None:
            return None
        return (1 if self.tty else message.stream, message.data)

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(DockerError):
            if self.exec_ is not None:
                await self.exec_.resize(h=height, w=width)
            elif self.container is not None:
                await self.container.resize(h=height, w=width)

    async def wait(self) -> int:
        if self.exec_ is not None:
            for _ in range(200):
                info = await self.exec_.inspect()
                if not info.get("Running"):
                    return int(info.get("ExitCode") or 0)
                await asyncio.sleep(0.05)
            return -1
        assert self.container is not None
        result = await self.container.wait()
        return int(result.get("StatusCode", 0))

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self.stream.close()


