"""The controller manager: the component that runs every registered controller.

It is registered with ``leader_elected=True``: with several control planes only the
leader's manager runs.  Each leadership term (each call of :meth:`ControllerManager.run`)
builds fresh informers, indexes and controllers, so nothing from a lost term lingers.
Controllers come from ``kubeling_register_controllers``; ``controllers.disabled`` names the
ones not to run, and a live config change starts and stops controllers accordingly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from kubeling import hookimpl
from kubeling.client import InformerFactory
from kubeling_controllers_default.base import Clock, ControllerContext
from kubeling_controllers_default.config import ControllersConfig
from kubeling_controllers_default.events import EventSink

if TYPE_CHECKING:
    from kubeling.config import Config
    from kubeling.context import Context

log = logging.getLogger(__name__)

__all__ = ["ControllerManager", "controllers_settings"]


def controllers_settings(config: Config) -> ControllersConfig:
    """The ``controllers`` section of ``config`` (defaults when it has none)."""
    section = config.section("controllers")
    return section if isinstance(section, ControllersConfig) else ControllersConfig()


class ControllerManager:
    """Runs the registered controllers while this process leads."""

    def __init__(self, ctx: Context, *, clock: Clock | None = None) -> None:
        self.ctx = ctx
        self.clock = clock or Clock()
        self.controllers: dict[str, Any] = {}
        """The running controllers of the current term, by name."""
        self.cctx: ControllerContext | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = asyncio.Event()

    def factories(self) -> dict[str, Any]:
        """Every registered controller factory, by name."""
        return {name: c.value
                for name, c in self.ctx.host.contributions.family("controller").items()}

    def enabled(self, config: Config) -> list[str]:
        """Names of the controllers ``config`` lets run, in registration order."""
        disabled = set(controllers_settings(config).disabled)
        return [name for name in self.factories() if name not in disabled]

    async def wait_started(self, timeout: float | None = None) -> None:
        """Wait until the controllers of this term are running (tests)."""
        await asyncio.wait_for(self._started.wait(), timeout)

    async def run(self) -> None:
        """Run every enabled controller until cancelled (one leadership term)."""
        config = self.ctx.config
        settings = controllers_settings(config)
        informer_client = self.ctx.client("kubeling-controller-manager/informers")
        factory = InformerFactory(informer_client)
        sink = EventSink(self.ctx.client("kubeling-controller-manager/events"),
                         qps=settings.events_qps, burst=settings.events_burst,
                         clock=self.clock.now, monotonic=self.clock.monotonic)
        self.cctx = ControllerContext(config=config, settings=settings, informers=factory,
                                      client_factory=self.ctx.client, events=sink,
                                      clock=self.clock)
        sink.start()
        try:
            for name in self.enabled(config):
                self._start(name)
            log.info("controller manager running: %s", ", ".join(self.controllers) or "none")
            self._started.set()
            while True:
                await asyncio.sleep(3600)
        finally:
            self._started.clear()
            for name in list(self._tasks):
                await self._stop(name)
            await sink.close()
            await factory.stop()
            await self.cctx.close()
            with contextlib.suppress(Exception):
                await informer_client.close()
            self.cctx = None

    def _start(self, name: str) -> None:
        assert self.cctx is not None
        build = self.factories().get(name)
        if build is None or name in self._tasks:
            return
        try:
            controller = build(self.cctx)
        except Exception:
            log.exception("controller %s could not be built", name)
            return
        self.controllers[name] = controller
        self._tasks[name] = asyncio.create_task(self._supervise(name, controller),
                                                name=f"controller {name}")

    async def _supervise(self, name: str, controller: Any) -> None:
        """Run one controller; restart it (after a pause) if it fails."""
        delay = 1.0
        while True:
            try:
                await controller.run()
                log.info("controller %s stopped", name)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s failed; restarting in %.0fs", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        controller = self.controllers.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        close = getattr(controller, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    @hookimpl
    def kubeling_config_changed(self, old: Config, new: Config) -> None:
        """Start controllers no longer disabled and stop newly disabled ones."""
        if self.cctx is None:
            return
        wanted = set(self.enabled(new))
        for name in list(self._tasks):
            if name not in wanted:
                log.info("controller %s disabled by config change", name)
                asyncio.get_running_loop().create_task(self._stop(name))
        for name in self.enabled(new):
            if name not in self._tasks:
                log.info("controller %s enabled by config change", name)
                self._start(name)
