"""DefaultTolerationSeconds: the admission plugin Kubernetes enables by default.

A new pod that does not already tolerate the ``node.kubernetes.io/not-ready`` and
``node.kubernetes.io/unreachable`` NoExecute taints gets tolerations for them limited to
300 seconds, so the taint-based eviction of the node lifecycle controller replaces pods of
a dead node after five minutes rather than at once.
"""

from __future__ import annotations

import copy
import logging

from kubeling.api.admission import AdmissionRequest

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TOLERATION_SECONDS", "NOT_READY_TAINT", "UNREACHABLE_TAINT",
           "DefaultTolerationSeconds"]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300


class DefaultTolerationSeconds:
    """Mutating admitter adding the default not-ready/unreachable tolerations to pods."""

    name = "DefaultTolerationSeconds"
    mutating = True
    order = 100

    def __init__(self, not_ready_seconds: int = DEFAULT_TOLERATION_SECONDS,
                 unreachable_seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
        self.seconds = {NOT_READY_TAINT: not_ready_seconds,
                        UNREACHABLE_TAINT: unreachable_seconds}

    def admit(self, request: AdmissionRequest) -> None:
        """Add the missing tolerations to a pod being created."""
        if request.operation != "CREATE" or request.subresource is not None:
            return
        kind = request.kind
        if kind.group != "" or kind.plural != "pods" or not isinstance(request.object, dict):
            return
        spec = request.object.get("spec")
        if not isinstance(spec, dict):
            return
        tolerations = spec.get("tolerations")
        if not isinstance(tolerations, list):
            tolerations = []
        covered = {key: False for key in self.seconds}
        for toleration in tolerations:
            if not isinstance(toleration, dict):
                continue
            key = toleration.get("key") or ""
            effect = toleration.get("effect") or ""
            if effect not in ("", "NoExecute"):
                continue
            for taint in covered:
                if key in ("", taint):
                    covered[taint] = True
        missing = [taint for taint, done in covered.items() if not done]
        if not missing:
            return
        added = copy.copy(tolerations)
        for taint in missing:
            added.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": self.seconds[taint]})
        spec["tolerations"] = added
