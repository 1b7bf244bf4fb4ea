"""``kubeling up``: storage, API server and components in one asyncio process.

:class:`Cluster` is what the CLI runs and what tests embed: it builds the plugin host,
starts what the config and role ask for, watches the config file for live changes and
stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kubeling.api import metrics, node_proxy
from kubeling.api.http import HttpFront
from kubeling.api.server import ApiServer, ServerSettings
from kubeling.config import Config, ConfigError, load_config_file
from kubeling.context import Context
from kubeling.plugins import PluginError, PluginHost
from kubeling.storage import Storage

log = logging.getLogger(__name__)

__all__ = ["Cluster", "write_kubeconfig"]


def write_kubeconfig(path: Path, server_url: str, *, name: str = "kubeling") -> None:
    """A kubeconfig that kubectl and the kubernetes client use as is."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server_url}}],
        "users": [{"name": f"{name}-admin", "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin",
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


class Cluster:
    """Everything one ``kubeling up`` process runs."""

    def __init__(self, config: Config, host: PluginHost, *, role: str = "all",
                 config_path: str | Path | None = None, overrides: Sequence[str] = ()) -> None:
        self.config = config
        self.host = host
        self.role = role
        self.config_path = Path(config_path) if config_path else None
        self.overrides = list(overrides)
        self.storage: Storage | None = None
        self.server: ApiServer | None = None
        self.http: HttpFront | None = None
        self.ctx: Context | None = None
        self.components: dict[str, Any] = {}
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.kubeconfig_path: Path | None = None
        self.notes: list[str] = []
        """What the operator should know (printed by the CLI): why a node did not start..."""

    @property
    def url(self) -> str | None:
        return self.http.url if self.http else self.config.api.server

    async def start(self) -> None:
        cfg = self.config
        data_dir = cfg.resolved_data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.ctx = Context(config=cfg, host=self.host, role=self.role)
        if self.role in ("all", "control-plane"):
            await self._start_control_plane(data_dir)
        else:
            self.ctx.api_url = cfg.api.server
        await self._start_components()
        if self.config_path is not None:
            self._watch_task = asyncio.create_task(self._watch_config(), name="config-watch")

    async def _start_control_plane(self, data_dir: Path) -> None:
        cfg = self.config
        assert self.ctx is not None
        self.storage = self.ctx.make_backend("storage", cfg.storage.backend,
                                             config_key="storage.backend")
        await self.storage.start()
        contributions = self.host.contributions
        admitters = [c.value for c in contributions.family("admitter").values()]
        authenticators = [contributions.require("authenticator", n,
                                                config_key="api.authenticators").value
                          for n in cfg.api.authenticators]
        authorizers = [contributions.require("authorizer", n, config_key="api.authorizers").value
                       for n in cfg.api.authorizers]
        settings = ServerSettings(
            max_request_bytes=cfg.api.max_request_bytes,
            watch_cache_events=cfg.api.watch_cache_events,
            compaction_interval_seconds=cfg.api.compaction_interval_seconds,
            compaction_retain_revisions=cfg.api.compaction_retain_revisions,
            service_cluster_ip_range=cfg.api.service_cluster_ip_range,
            service_node_port_range=cfg.api.service_node_port_range,
            advertise_address=cfg.api.advertise_address,
        )
        kinds = [c.value for c in contributions.family("kind").values()]
        self.server = ApiServer(storage=self.storage, kinds=kinds, settings=settings,
                                admitters=admitters, authenticators=authenticators,
                                authorizers=authorizers)
        secret = node_proxy.load_secret(data_dir / node_proxy.SECRET_FILE)
        node_proxy.install(self.server, secret)
        metrics.install(self.server, secret)  # metrics.k8s.io from the node agents
        await self.server.start()
        self.http = HttpFront(self.server, cfg.api.listen)
        await self.http.start()
        self.server.advertise(self.http.host, self.http.port)  # the kubernetes Service
        self.ctx.server = self.server
        self.ctx.api_url = self.http.url
        self.kubeconfig_path = Path(cfg.kubeconfig_out).expanduser() if cfg.kubeconfig_out \
            else data_dir / "kubeconfig"
        write_kubeconfig(self.kubeconfig_path, self.http.url)

    async def _start_components(self) -> None:
        assert self.ctx is not None
        disabled = set(self.config.components.disabled)
        elector = None
        for name, contribution in self.host.contributions.family("component").items():
            role = contribution.options.get("role", "control-plane")
            if name in disabled or (self.role != "all" and role != self.role):
                continue
            try:
                component = contribution.value(self.ctx)
            except PluginError as exc:
                self.notes.append(f"component {name} not started: {exc}")
                log.warning("component %s not started: %s", name, exc)
                continue
            if component is None:
                continue
            self.components[name] = component
            with contextlib.suppress(ValueError):
                self.host.pm.register(component, name=f"component:{name}")
            run = component.run
            if contribution.options.get("leader_elected"):
                if elector is None:
                    elector = self.host.pm.hook.kubeling_leader_elector(ctx=self.ctx)
                if elector is not None:
                    run = _elected(elector, name, component.run)
            self._tasks[name] = asyncio.create_task(self._supervise(name, run),
                                                    name=f"component {name}")

    async def _supervise(self, name: str, run: Any) -> None:
        try:
            await run()
            log.info("component %s finished", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("component %s failed", name)

    async def _watch_config(self) -> None:
        import watchfiles

        assert self.config_path is not None
        # a short rust_timeout lets cancellation (on stop) finish within half a second:
        # watchfiles waits for its watcher thread to return before it honours a cancel
        async for _ in watchfiles.awatch(self.config_path, debounce=200, step=50,
                                         rust_timeout=500):
            self.reload_config()

    def reload_config(self) -> bool:
        """Re-read the config file; apply and announce it when valid.  False if invalid."""
        assert self.config_path is not None
        try:
            new = load_config_file(self.config_path, self.host.config_class, self.overrides)
        except ConfigError as exc:
            log.error("config change ignored: %s", exc)
            return False
        if new == self.config:
            return True
        old, self.config = self.config, new
        if self.ctx is not None:
            self.ctx.config = new
        log.info("config %s changed; applying", self.config_path)
        self.host.call_config_changed(old, new)
        return True

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for name, component in self.components.items():
            close = getattr(component, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing component %s failed", name)
        if self.ctx is not None:
            await self.ctx.close()
        if self.http is not None:
            await self.http.stop()
        if self.server is not None:
            await self.server.stop()
        if self.storage is not None:
            await self.storage.close()


def _elected(elector: Any, name: str, run: Any) -> Any:
    async def guarded() -> None:
        await elector.run_while_leader(name, run)
    return guarded
