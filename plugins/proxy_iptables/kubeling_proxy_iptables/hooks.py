"""Hook implementations: the ``iptables`` proxier and ``kubeling proxy cleanup``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from kubeling import hookimpl
from kubeling_proxy_iptables.proxier import IptablesProxier, IptablesSettings

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import RegisterNamedFactory

__all__ = ["factory", "kubeling_register_commands", "kubeling_register_proxiers"]


def factory(settings: IptablesSettings | None, ctx: Context) -> IptablesProxier:
    """Build the proxier the config asks for."""
    return IptablesProxier(settings or IptablesSettings())


@hookimpl
def kubeling_register_proxiers(register: RegisterNamedFactory) -> None:
    """Register the ``iptables`` proxier with its ``proxy.iptables`` settings."""
    register("iptables", factory, settings=IptablesSettings)


@hookimpl
def kubeling_register_commands(cli: click.Group) -> None:
    """Add ``kubeling proxy cleanup``."""
    group = cli.commands.get("proxy")
    if not isinstance(group, click.Group):
        @cli.group("proxy")
        def proxy() -> None:
            """The node's service proxy."""

        group = proxy

    @group.command("cleanup")
    @click.option("--netns", default=None, metavar="NAME",
                  help="Clean up inside this named network namespace instead of the host.")
    @click.option("--mode", type=click.Choice(["auto", "nft", "legacy"]), default="auto",
                  show_default=True, help="Which iptables flavour to clean.")
    def cleanup(netns: str | None, mode: str) -> None:
        """Remove every iptables chain and rule the iptables proxier installed."""
        proxier = IptablesProxier(IptablesSettings(netns=netns, mode=mode))
        asyncio.run(proxier.cleanup())
        click.echo("removed the iptables proxier's chains and rules"
                   + (f" in network namespace {netns}" if netns else ""))
