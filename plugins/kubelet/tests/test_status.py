"""Pod phase and conditions from container statuses, by Kubernetes' rules."""

from __future__ import annotations

from kubeling_kubelet.status import conditions, container_status, pod_phase

from kubeling.runtime import ContainerState, ContainerStatus


def running(name: str = "c", ready: bool = True) -> dict:
    return {"name": name, "ready": ready, "state": {"running": {}}, "lastState": {}}


def terminated(name: str = "c", code: int = 0) -> dict:
    return {"name": name, "ready": False, "state": {"terminated": {"exitCode": code}},
            "lastState": {}}


def waiting(name: str = "c", restarted: bool = False) -> dict:
    return {"name": name, "ready": False, "state": {"waiting": {"reason": "X"}},
            "lastState": {"terminated": {"exitCode": 1}} if restarted else {}}


def test_phase() -> None:
    always, never, on_failure = ({"restartPolicy": p} for p in ("Always", "Never",
                                                                 "OnFailure"))
    assert pod_phase(always, [], [waiting()]) == "Pending"
    assert pod_phase(always, [], [running(), waiting()]) == "Pending"
    assert pod_phase(always, [], [running(), terminated(code=1)]) == "Running"
    assert pod_phase(always, [], [terminated()]) == "Running"
    assert pod_phase(always, [], [waiting(restarted=True)]) == "Running"
    assert pod_phase(never, [], [terminated(), terminated("d")]) == "Succeeded"
    assert pod_phase(never, [], [terminated(), terminated("d", 2)]) == "Failed"
    assert pod_phase(on_failure, [], [terminated(code=2)]) == "Running"
    assert pod_phase(on_failure, [], [terminated()]) == "Succeeded"
    assert pod_phase(always, [running("init")], [waiting()]) == "Pending"
    assert pod_phase(never, [terminated("init", 1)], [waiting()]) == "Failed"
    assert pod_phase(always, [terminated("init")], [running()]) == "Running"


def test_conditions_keep_transition_times() -> None:
    first = conditions([], {}, "Running", [], [running(ready=False)], sandbox_ready=True)
    by_type = {c["type"]: c for c in first}
    assert by_type["Ready"]["status"] == "False"
    assert by_type["Ready"]["message"] == "containers with unready status: [c]"
    assert by_type["PodScheduled"]["status"] == "True"
    old = [{**c, "lastTransitionTime": "2020-01-01T00:00:00Z"} for c in first]
    again = {c["type"]: c for c in conditions(old, {}, "Running", [], [running(ready=False)],
                                             sandbox_ready=True)}
    assert again["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    flipped = {c["type"]: c for c in conditions(old, {}, "Running", [], [running()],
                                               sandbox_ready=True)}
    assert flipped["Ready"]["status"] == "True"
    assert flipped["Ready"]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    done = {c["type"]: c for c in conditions([], {}, "Succeeded", [], [terminated()],
                                            sandbox_ready=False)}
    assert done["Ready"]["reason"] == "PodCompleted"
    assert done["PodReadyToStartContainers"]["status"] == "False"


def test_container_status_states() -> None:
    spec = {"name": "c", "image": "img"}
    old = ContainerStatus(id="a", name="c", sandbox_id="s", state=ContainerState.EXITED,
                          created_at=1, started_at=2, finished_at=3, exit_code=137,
                          reason="Error", image_ref="sha256:x", attempt=0)
    new = ContainerStatus(id="b", name="c", sandbox_id="s", state=ContainerState.RUNNING,
                          created_at=4, started_at=5, image_ref="sha256:x", attempt=1)
    status = container_status(spec, new, old, runtime="docker", ready=True)
    assert status["restartCount"] == 1 and status["ready"] and status["started"]
    assert status["containerID"] == "docker://b" and status["imageID"] == "sha256:x"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["lastState"]["terminated"]["containerID"] == "docker://a"
    backoff = container_status(spec, old, None, runtime="docker",
                               waiting=("CrashLoopBackOff", "back-off 10s"))
    assert backoff["state"] == {"waiting": {"reason": "CrashLoopBackOff",
                                            "message": "back-off 10s"}}
    assert backoff["lastState"]["terminated"]["reason"] == "Error"
    fresh = container_status(spec, None, None, runtime="docker")
    assert fresh["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert fresh["restartCount"] == 0 and not fresh["ready"]
