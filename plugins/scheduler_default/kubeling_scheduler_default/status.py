"""The result type of every extension point: Kubernetes' framework ``Status``."""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["Code", "Status", "as_status"]


class Code(enum.IntEnum):
    """What an extension point says about a pod (and a node)."""

    SUCCESS = 0
    ERROR = 1
    """Something broke (not the pod's fault); the pod is retried with backoff."""
    UNSCHEDULABLE = 2
    """Does not fit now; preemption may help."""
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    """Does not fit, and removing pods would not change that: preemption skips the node."""
    WAIT = 4
    """Permit only: hold the pod until allowed or rejected."""
    SKIP = 5
    """PreFilter/PreScore: this plugin has nothing to do for this pod."""
    PENDING = 6
    """The pod waits for something outside the scheduler."""


class Status:
    """A code, the reasons (shown in FailedScheduling messages) and the plugin that spoke.

    ``None`` returned from a plugin method means success, as in Kubernetes.
    """

    __slots__ = ("code", "error", "plugin", "reasons")

    def __init__(self, code: Code = Code.SUCCESS, *reasons: str, plugin: str = "",
                 error: BaseException | None = None) -> None:
        self.code = code
        self.reasons: tuple[str, ...] = reasons
        self.plugin = plugin
        self.error = error

    # -- constructors --------------------------------------------------------------------

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE, *reasons, plugin=plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        """``UnschedulableAndUnresolvable``."""
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, *reasons, plugin=plugin)

    @classmethod
    def from_error(cls, error: BaseException, plugin: str = "") -> Status:
        return cls(Code.ERROR, f"{type(error).__name__}: {error}" if not str(error)
                   else str(error), plugin=plugin, error=error)

    @classmethod
    def skip(cls) -> Status:
        return cls(Code.SKIP)

    @classmethod
    def wait(cls, plugin: str = "") -> Status:
        return cls(Code.WAIT, plugin=plugin)

    # -- queries ----------------------------------------------------------------------------

    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code is Code.SKIP

    def is_rejected(self) -> bool:
        """Unschedulable (with or without resolution) or Pending."""
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                             Code.PENDING)

    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        if not self.plugin:
            self.plugin = plugin
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.code == other.code and self.reasons == other.reasons

    def __hash__(self) -> int:
        return hash((self.code, self.reasons))

    def __repr__(self) -> str:
        parts = [self.code.name]
        if self.reasons:
            parts.append(repr(self.message()))
        if self.plugin:
            parts.append(f"plugin={self.plugin}")
        return f"Status({', '.join(parts)})"


SUCCESS = Status()


def as_status(value: Status | None, plugin: str = "") -> Status:
    """A plugin's return value as a Status (``None`` is success)."""
    if value is None:
        return SUCCESS
    if not isinstance(value, Status):
        return Status(Code.ERROR, f"plugin {plugin} returned {type(value).__name__}, not a "
                                  f"Status", plugin=plugin)
    return value.with_plugin(plugin) if plugin and value is not SUCCESS else value


def merge_reasons(statuses: Iterable[Status]) -> list[str]:
    out: list[str] = []
    for status in statuses:
        out.extend(status.reasons)
    return out
