"""Pod status as Kubernetes reports it, computed from what the runtime says.

Pure functions: container statuses (state, lastState, restartCount, ready, started,
imageID, containerID), the pod phase and the pod conditions.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kubeling.runtime import ContainerState, ContainerStatus

__all__ = ["conditions", "container_status", "pod_phase", "rfc3339"]

Obj = dict[str, Any]


def rfc3339(ts: float | None = None) -> str:
    """Seconds since the epoch (now when None) as Kubernetes' second-precision time."""
    moment = datetime.datetime.fromtimestamp(ts if ts is not None else
                                             datetime.datetime.now(datetime.UTC).timestamp(),
                                             datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminated(c: ContainerStatus, runtime: str, message: str = "") -> Obj:
    state: Obj = {
        "exitCode": c.exit_code,
        "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
        "startedAt": rfc3339(c.started_at) if c.started_at else None,
        "finishedAt": rfc3339(c.finished_at or c.started_at or c.created_at),
        "containerID": f"{runtime}://{c.id}",
    }
    if message or c.message:
        state["message"] = message or c.message
    return {"terminated": state}


def container_status(spec: Obj, latest: ContainerStatus | None,
                     previous: ContainerStatus | None, *, runtime: str,
                     waiting: tuple[str, str] | None = None, ready: bool = False,
                     started: bool | None = None, restart_count: int | None = None,
                     termination_message: str = "") -> Obj:
    """One entry of ``containerStatuses``.

    :param latest: the newest container of this name (None when none was created yet).
    :param previous: the one before it, for ``lastState``.
    :param waiting: (reason, message) when the agent holds the container back
        (``ContainerCreating``, ``CrashLoopBackOff``, ``ErrImagePull``...).
    """
    status: Obj = {
        "name": spec["name"],
        "image": spec.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": restart_count if restart_count is not None else (
            latest.attempt if latest is not None else 0),
        "started": False,
        "state": {"waiting": {"reason": "ContainerCreating"}},
        "lastState": {},
    }
    if latest is not None:
        status["imageID"] = latest.image_ref
        status["containerID"] = f"{runtime}://{latest.id}"
    if waiting is not None:
        reason, message = waiting
        state: Obj = {"reason": reason}
        if message:
            state["message"] = message
        status["state"] = {"waiting": state}
        if latest is not None and latest.state == ContainerState.EXITED:
            status["lastState"] = _terminated(latest, runtime, termination_message)
        elif previous is not None and previous.state == ContainerState.EXITED:
            status["lastState"] = _terminated(previous, runtime)
        return status
    if latest is None:
        return status
    if latest.state == ContainerState.RUNNING:
        status["state"] = {"running": {"startedAt": rfc3339(latest.started_at)}}
        status["ready"] = ready
        status["started"] = True if started is None else started
    elif latest.state == ContainerState.EXITED:
        status["state"] = _terminated(latest, runtime, termination_message)
    elif latest.state == ContainerState.CREATED:
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
    else:
        status["state"] = {"waiting": {"reason": "ContainerStatusUnknown"}}
    if previous is not None and previous.state == ContainerState.EXITED:
        status["lastState"] = _terminated(previous, runtime)
    return status


def pod_phase(spec: Obj, init_statuses: Sequence[Obj], statuses: Sequence[Obj]) -> str:
    """Pending, Running, Succeeded or Failed, by Kubernetes' rules (``getPhase``)."""
    policy = spec.get("restartPolicy") or "Always"
    sidecars = _sidecars(spec)
    apps_started = any("waiting" not in s["state"] or "terminated" in s["lastState"]
                       for s in statuses)
    for s in init_statuses:
        if s["name"] in sidecars:
            if "running" in s["state"] or apps_started:
                continue  # a native sidecar: running (or restarting) beside the app
            return "Pending"
        term = s["state"].get("terminated")
        if term is not None and term.get("exitCode") == 0:
            continue
        if term is not None and policy == "Never":
            return "Failed"
        if "waiting" in s["state"] and "terminated" in s["lastState"] and policy == "Never":
            return "Failed"
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for s in statuses:
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in s["lastState"]:
                stopped += 1
            else:
                waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "OnFailure":
            return "Running"
        return "Failed"
    return "Pending"


def _sidecars(spec: Obj) -> set[str]:
    """Names of the restartable init containers (native sidecars)."""
    return {c.get("name", "") for c in spec.get("initContainers") or []
            if c.get("restartPolicy") == "Always"}


KUBELET_CONDITIONS = frozenset({"PodReadyToStartContainers", "Initialized", "Ready",
                                "ContainersReady", "PodScheduled"})
"""The pod conditions the node agent writes; others belong to whoever set them."""


def _gates_message(spec: Obj, current: Sequence[Obj]) -> str:
    """Why the pod's readiness gates hold it back ("" when they do not)."""
    found = {c.get("type"): c for c in current}
    problems = []
    for gate in spec.get("readinessGates") or []:
        kind = gate.get("conditionType")
        cond = found.get(kind)
        if cond is None:
            problems.append(f'corresponding condition of pod readiness gate "{kind}" does '
                            f"not exist.")
        elif cond.get("status") != "True":
            problems.append(f'the status of pod readiness gate "{kind}" is not "True", but '
                            f"{cond.get('status')}")
    return ", ".join(problems)


def conditions(old: Sequence[Obj], spec: Obj, phase: str, init_statuses: Sequence[Obj],
               statuses: Sequence[Obj], *, sandbox_ready: bool,
               current: Sequence[Obj] = ()) -> list[Obj]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady and PodScheduled,
    keeping ``lastTransitionTime`` when a condition's status did not change.  ``current``
    are the pod's conditions as stored (others set them too): Ready also needs every
    ``spec.readinessGates`` condition there to be True."""
    previous = {c.get("type"): c for c in old}
    out: list[Obj] = []

    def add(kind: str, ok: bool, reason: str = "", message: str = "") -> None:
        status = "True" if ok else "False"
        before = previous.get(kind)
        stamp = before.get("lastTransitionTime") if before and \
            before.get("status") == status else rfc3339()
        cond: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                     "lastTransitionTime": stamp}
        if not ok and reason:
            cond["reason"] = reason
            if message:
                cond["message"] = message
        out.append(cond)

    add("PodReadyToStartContainers", sandbox_ready)
    sidecars = _sidecars(spec)
    not_done = [s["name"] for s in init_statuses
                if (s["state"].get("terminated") or {}).get("exitCode") != 0
                and not (s["name"] in sidecars and s.get("started"))]
    initialized = not not_done
    add("Initialized", initialized, "ContainersNotInitialized",
        f"containers with incomplete status: [{' '.join(not_done)}]")
    if phase == "Succeeded" or (phase == "Failed" and not any(
            "running" in s["state"] for s in statuses)):
        add("Ready", False, "PodCompleted")
        add("ContainersReady", False, "PodCompleted")
    else:
        unready = [s["name"] for s in [*statuses, *(i for i in init_statuses
                                                    if i["name"] in sidecars)]
                   if not s.get("ready")]
        message = f"containers with unready status: [{' '.join(unready)}]"
        gates = "" if unready else _gates_message(spec, current)
        if gates:
            add("Ready", False, "ReadinessGatesNotReady", gates)
        else:
            add("Ready", not unready, "ContainersNotReady", message)
        add("ContainersReady", not unready, "ContainersNotReady", message)
    scheduled = previous.get("PodScheduled")
    out.append(scheduled if scheduled is not None else {
        "type": "PodScheduled", "status": "True", "lastProbeTime": None,
        "lastTransitionTime": rfc3339()})
    # conditions others own (readiness gates, DisruptionTarget) are kept as they are
    out.extend(c for c in current if c.get("type") not in KUBELET_CONDITIONS)
    return out
