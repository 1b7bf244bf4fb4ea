"""The core's own hook implementations: the built-in API kinds.

The core registers its kinds through the same hook a plugin uses, so there is one way
for a kind to be served.
"""

from __future__ import annotations

from kubeling import hookimpl
from kubeling.plugins import RegisterComponent, RegisterKind


@hookimpl
def kubeling_register_kinds(register: RegisterKind) -> None:
    """The kinds of core/v1, apps/v1, coordination.k8s.io/v1 and discovery.k8s.io/v1."""
    from kubeling.api.kinds import builtin_kinds

    for kind in builtin_kinds():
        register(kind)


@hookimpl
def kubeling_register_components(register: RegisterComponent) -> None:
    """The service proxy (role node); it drives whichever proxier ``proxy.backend`` names."""
    from kubeling.proxy import proxy_component

    register("proxy", proxy_component, role="node")
