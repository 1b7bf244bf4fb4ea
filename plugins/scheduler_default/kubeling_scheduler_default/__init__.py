"""kubeling's default scheduler: the Kubernetes scheduling framework in Python.

The framework (queue, NodeInfo cache with assumed pods, extension points with a
:class:`~kubeling_scheduler_default.status.Status` result) lives in this package; the
default plugins in :mod:`kubeling_scheduler_default.plugins`.  Third-party plugins are
registered through ``kubeling_register_scheduler_plugins`` and enabled by name in a
profile of the ``scheduler`` config section.
"""

from kubeling_scheduler_default.status import Code, Status

__all__ = ["Code", "Status"]
