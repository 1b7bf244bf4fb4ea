"""kubeling: a Kubernetes-compatible container orchestrator built as a plugin platform.

Plugins implement the hooks of :mod:`kubeling.hookspecs`, decorated with :data:`hookimpl`.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "kubeling"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a function of :mod:`kubeling.hookspecs` as a hook specification."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's function as the implementation of a kubeling hook."""

__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
