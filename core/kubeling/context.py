"""The running context handed to factories and components."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kubeling.client import Client, HttpTransport, InformerFactory, InProcessTransport
from kubeling.config import Config
from kubeling.plugins import MissingPluginError, PluginHost

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = ["Context"]


@attrs.define(kw_only=True)
class Context:
    """What every component factory receives: config, plugins, and the way to the API."""

    config: Config
    host: PluginHost
    role: str = "all"
    """``all``, ``control-plane`` or ``node``."""
    server: ApiServer | None = None
    """The in-process API server, when this process runs one."""
    api_url: str | None = None
    """Where the API server listens (this process's, or ``api.server`` for a node)."""
    _clients: list[Client] = attrs.field(factory=list)
    _informers: InformerFactory | None = None

    @property
    def data_dir(self) -> Path:
        return self.config.resolved_data_dir()

    def client(self, user_agent: str = "kubeling") -> Client:
        """A client for the API: in process when this process serves it, else HTTP."""
        if self.server is not None:
            client = Client(InProcessTransport(self.server), user_agent=user_agent)
        else:
            url = self.api_url or self.config.api.server
            if not url:
                raise MissingPluginError(
                    "api.server: this process runs no API server and none is configured; "
                    "set api.server to the control plane's URL")
            client = Client(HttpTransport(url), user_agent=user_agent)
        self._clients.append(client)
        return client

    @property
    def informers(self) -> InformerFactory:
        """The shared informer factory of this process."""
        if self._informers is None:
            self._informers = InformerFactory(self.client("kubeling-informers"))
        return self._informers

    def section(self, path: str) -> Any:
        return self.config.section(path)

    def make_backend(self, family: str, name: str, *, config_key: str) -> Any:
        """Build the storage/runtime/proxier the config names, with its settings section."""
        contribution = self.host.contributions.require(family, name, config_key=config_key)
        parent = {"storage": "storage", "runtime": "node", "proxier": "proxy"}[family]
        settings = self.config.section(f"{parent}.{name}") if contribution.settings else None
        return contribution.value(settings, self)

    async def close(self) -> None:
        if self._informers is not None:
            await self._informers.stop()
        for client in self._clients:
            await client.close()
        self._clients.clear()
