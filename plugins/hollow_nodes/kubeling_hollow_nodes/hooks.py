"""Hook implementations: the ``hollow_nodes`` section, its component, ``kubeling simulate``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from kubeling import hookimpl
from kubeling_hollow_nodes.hollow import HollowNodes, HollowNodeSettings

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import RegisterComponent, RegisterConfigSection

__all__ = ["kubeling_register_commands", "kubeling_register_components",
           "kubeling_register_config_sections", "make_hollow_nodes", "server_from_kubeconfig"]

log = logging.getLogger(__name__)


@hookimpl
def kubeling_register_config_sections(register: RegisterConfigSection) -> None:
    """The ``hollow_nodes`` section (``count: 0`` by default: no simulated nodes)."""
    register("hollow_nodes", HollowNodeSettings)


def make_hollow_nodes(ctx: Context) -> HollowNodes | None:
    """The component, or None when ``hollow_nodes.count`` is 0."""
    settings = ctx.section("hollow_nodes") or HollowNodeSettings()
    if settings.count <= 0:
        return None
    return HollowNodes(ctx.client("kubeling-hollow-nodes"), settings)


@hookimpl
def kubeling_register_components(register: RegisterComponent) -> None:
    """``hollow-nodes``: a node-role component running ``hollow_nodes.count`` nodes."""
    register("hollow-nodes", make_hollow_nodes, role="node")


def server_from_kubeconfig(path: str | Path) -> str:
    """The server URL of the current context of a kubeconfig file."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    current = doc.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or ()}
    cluster_name = (contexts.get(current) or {}).get("cluster")
    for cluster in doc.get("clusters") or ():
        if cluster.get("name") == cluster_name or cluster_name is None:
            return str((cluster.get("cluster") or {}).get("server"))
    raise click.ClickException(f"{path}: no cluster for the current context {current!r}")


def _default_kubeconfig() -> Path | None:
    for candidate in (os.environ.get("KUBECONFIG"), str(Path.home() / ".kube" / "config")):
        if candidate and Path(candidate.split(os.pathsep)[0]).exists():
            return Path(candidate.split(os.pathsep)[0])
    from kubeling.config import default_data_dir

    fallback = default_data_dir() / "kubeconfig"
    return fallback if fallback.exists() else None


async def _simulate(server: str, settings: HollowNodeSettings, delete: bool) -> None:
    from kubeling.client import Client, HttpTransport

    client = Client(HttpTransport(server), user_agent="kubeling-simulate")
    fleet = HollowNodes(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await fleet.start()
        click.echo(f"{settings.count} hollow nodes registered at {server} "
                   f"({fleet.names[0]} .. {fleet.names[-1]}); Ctrl-C stops them")
        await stop.wait()
    finally:
        await fleet.stop(delete=delete)
        await client.close()
        click.echo(f"hollow nodes stopped ({fleet.started_pods} pods started)"
                   + ("; nodes deleted" if delete else ""))


@hookimpl
def kubeling_register_commands(cli: click.Group) -> None:
    """``kubeling simulate nodes N``."""

    @cli.group()
    def simulate() -> None:
        """Simulate parts of a cluster (for scheduling tests and benchmarks)."""

    @simulate.command("nodes")
    @click.argument("count", type=click.IntRange(min=1))
    @click.option("--server", help="API server URL (default: from the kubeconfig).")
    @click.option("--kubeconfig", type=click.Path(dir_okay=False, exists=True),
                  help="Kubeconfig to read the server from.")
    @click.option("--prefix", default="hollow-node-", show_default=True,
                  help="Node name prefix.")
    @click.option("--cpu", default="4", show_default=True)
    @click.option("--memory", default="16Gi", show_default=True)
    @click.option("--pods", default=110, show_default=True, type=int)
    @click.option("--zones", default=0, show_default=True, type=int,
                  help="Spread nodes over this many topology.kubernetes.io/zone values.")
    @click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                  help="Extra node label; repeatable.")
    @click.option("--renew-interval", default=10.0, show_default=True, type=float,
                  help="Seconds between Lease renewals of each node.")
    @click.option("--run-pods/--no-run-pods", default=True, show_default=True,
                  help="Turn pods bound to the nodes Running.")
    @click.option("--delete-on-exit", is_flag=True, help="Delete the nodes when stopped.")
    def nodes(count: int, server: str | None, kubeconfig: str | None, prefix: str, cpu: str,
              memory: str, pods: int, zones: int, labels: tuple[str, ...],
              renew_interval: float, run_pods: bool, delete_on_exit: bool) -> None:
        """Register COUNT hollow nodes that heartbeat and run pods without containers."""
        if server is None:
            path = Path(kubeconfig) if kubeconfig else _default_kubeconfig()
            if path is None:
                raise click.UsageError("no --server given and no kubeconfig found")
            server = server_from_kubeconfig(path)
        extra: dict[str, Any] = {}
        for item in labels:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--label")
            extra[key] = value
        settings = HollowNodeSettings(count=count, name_prefix=prefix, cpu=cpu, memory=memory,
                                      pods=pods, zones=zones, labels=extra,
                                      renew_interval_seconds=renew_interval,
                                      run_pods=run_pods)
        logging.basicConfig(level=logging.WARNING)
        from kubeling.cli import tune_gc

        tune_gc()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_simulate(server, settings, delete_on_exit))
