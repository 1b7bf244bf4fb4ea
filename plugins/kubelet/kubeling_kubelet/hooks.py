"""The plugin's hook implementations: the ``kubelet`` component (role ``node``) and its
``kubelet`` config section."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from kubeling import hookimpl
from kubeling.plugins import PluginError
from kubeling.runtime import RuntimeUnavailableError
from kubeling_kubelet.agent import Kubelet, KubeletSettings

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import RegisterComponent, RegisterConfigSection

__all__ = ["kubeling_register_components", "kubeling_register_config_sections", "make_kubelet"]

DEFAULT_RUNTIME = "docker"


def make_kubelet(ctx: Context) -> Kubelet:
    """Build the node agent with the runtime ``node.runtime`` names.

    With no runtime named, Docker is used when dockerd answers; otherwise no node is
    registered and the reason (with what to install) becomes a note of ``kubeling up``.

    :raises PluginError: the runtime is missing or its daemon does not answer.
    """
    settings = ctx.section("kubelet") or KubeletSettings()
    name = ctx.config.node.runtime
    node_name = (ctx.config.node.name or socket.gethostname()).lower()
    if name is None:
        if ctx.host.contributions.get("runtime", DEFAULT_RUNTIME) is None:
            raise PluginError(
                "no node registered: node.runtime is not set and no container runtime "
                "plugin is installed; install Docker (sudo apt-get install docker.io) and "
                "the Docker runtime plugin (pip install kubeling-runtime-docker), or name "
                "another runtime with node.runtime")
        runtime = ctx.make_backend("runtime", DEFAULT_RUNTIME, config_key="node.runtime")
        try:
            runtime.check_available()
        except RuntimeUnavailableError as exc:
            raise PluginError(f"no node registered: node.runtime is not set and Docker is "
                              f"not usable: {exc}") from None
    else:
        runtime = ctx.make_backend("runtime", name, config_key="node.runtime")
        check = getattr(runtime, "check_available", None)
        if check is not None:
            try:
                check()
            except RuntimeUnavailableError as exc:
                raise PluginError(f"node.runtime: {name}: {exc}") from None
    return Kubelet(ctx, runtime, settings, node_name)


@hookimpl
def kubeling_register_components(register: RegisterComponent) -> None:
    """Register the node agent as the ``kubelet`` component of role ``node``."""
    register("kubelet", make_kubelet, role="node")


@hookimpl
def kubeling_register_config_sections(register: RegisterConfigSection) -> None:
    """Register the ``kubelet`` config section (:class:`KubeletSettings`)."""
    register("kubelet", KubeletSettings)
