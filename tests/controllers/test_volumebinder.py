"""The PersistentVolume binder: claims bound to fitting volumes, pre-bound volumes and
claims, phases after the claim goes, no volume given twice."""

from __future__ import annotations

from typing import Any

from kubeling_controllers_default.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kubeling_controllers_default.testing import eventually

from kubeling.client.resources import EVENTS


def volume(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",),
           policy: str = "Retain", labels: dict[str, str] | None = None,
           claim: dict[str, Any] | None = None, klass: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes),
                            "persistentVolumeReclaimPolicy": policy,
                            "hostPath": {"path": f"/tmp/kl-pv/{name}"}}
    if claim is not None:
        spec["claimRef"] = claim
    if klass:
        spec["storageClassName"] = klass
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def claim(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",),
          **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                     **spec}}


async def phase(client: Any, resource: Any, name: str, namespace: str | None = None) -> str:
    obj = await client.get(resource, name, namespace)
    return str((obj.get("status") or {}).get("phase") or "")


async def test_claims_get_the_smallest_fitting_volume(cluster: Any) -> None:
    client = cluster.client
    for pv in (volume("big", "10Gi"), volume("small", "1Gi"), volume("fits", "2Gi"),
               volume("rox", "5Gi", modes=("ReadOnlyMany",)),
               volume("fast", "2Gi", klass="fast"), volume("labelled", "3Gi",
                                                           labels={"disk": "ssd"})):
        await client.create(PERSISTENTVOLUMES, pv)
    await client.create(PERSISTENTVOLUMECLAIMS, claim("data", "1500Mi"), "default")

    async def bound(name: str) -> dict[str, Any] | None:
        pvc = await client.get(PERSISTENTVOLUMECLAIMS, name, "default")
        return pvc if (pvc.get("status") or {}).get("phase") == "Bound" else None

    pvc = await eventually(lambda: bound("data"))
    assert pvc["spec"]["volumeName"] == "fits"
    assert pvc["status"]["capacity"] == {"storage": "2Gi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    pv = await client.get(PERSISTENTVOLUMES, "fits")
    assert pv["status"]["phase"] == "Bound"
    assert pv["spec"]["claimRef"]["name"] == "data"
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    # class, selector and access modes decide too
    await client.create(PERSISTENTVOLUMECLAIMS, claim("quick", "1Gi", storageClassName="fast"),
                        "default")
    await client.create(PERSISTENTVOLUMECLAIMS, claim(
        "ssd", "1Gi", selector={"matchLabels": {"disk": "ssd"}}), "default")
    await client.create(PERSISTENTVOLUMECLAIMS, claim("shared", "1Gi",
                                                      modes=("ReadOnlyMany",)), "default")
    assert (await eventually(lambda: bound("quick")))["spec"]["volumeName"] == "fast"
    assert (await eventually(lambda: bound("ssd")))["spec"]["volumeName"] == "labelled"
    assert (await eventually(lambda: bound("shared")))["spec"]["volumeName"] == "rox"
    # nothing left that fits: Pending, with an event
    await client.create(PERSISTENTVOLUMECLAIMS, claim("huge", "100Gi"), "default")

    async def failed() -> bool:
        events = (await client.list(EVENTS, "default",
                                    field_selector="involvedObject.name=huge"))["items"]
        return any(e["reason"] == "FailedBinding" and e["message"] ==
                   "no persistent volumes available for this claim and no storage class "
                   "is set" for e in events)

    await eventually(failed)
    assert await phase(client, PERSISTENTVOLUMECLAIMS, "huge", "default") == "Pending"
    # a new volume that fits is taken
    await client.create(PERSISTENTVOLUMES, volume("bigger", "200Gi"))
    assert (await eventually(lambda: bound("huge")))["spec"]["volumeName"] == "bigger"


async def test_prebound_volumes_and_claims(cluster: Any) -> None:
    client = cluster.client
    await client.create(PERSISTENTVOLUMES, volume("reserved", "1Gi", claim={
        "namespace": "default", "name": "mine"}))
    await client.create(PERSISTENTVOLUMES, volume("other", "1Gi"))
    await client.create(PERSISTENTVOLUMES, volume("named", "5Gi"))
    await eventually(lambda: _phase_is(client, "reserved", "Available"))
    # a claim that is not the reserved one does not get it
    await client.create(PERSISTENTVOLUMECLAIMS, claim("stranger", "1Gi"), "default")
    await client.create(PERSISTENTVOLUMECLAIMS, claim("mine", "1Gi"), "default")
    await client.create(PERSISTENTVOLUMECLAIMS, claim("asks", "1Gi", volumeName="named"),
                        "default")

    async def volume_of(name: str) -> str | None:
        pvc = await client.get(PERSISTENTVOLUMECLAIMS, name, "default")
        if (pvc.get("status") or {}).get("phase") != "Bound":
            return None
        return str(pvc["spec"]["volumeName"])

    assert await eventually(lambda: volume_of("mine")) == "reserved"
    assert await eventually(lambda: volume_of("stranger")) == "other"
    assert await eventually(lambda: volume_of("asks")) == "named"
    pv = await client.get(PERSISTENTVOLUMES, "named")
    assert pv["spec"]["claimRef"]["name"] == "asks"


async def test_volumes_after_their_claim_is_deleted(cluster: Any) -> None:
    client = cluster.client
    await client.create(PERSISTENTVOLUMES, volume("kept", "1Gi"))
    await client.create(PERSISTENTVOLUMES, volume("dropped", "2Gi", policy="Delete"))
    await client.create(PERSISTENTVOLUMECLAIMS, claim("a", "1Gi"), "default")
    await client.create(PERSISTENTVOLUMECLAIMS, claim("b", "2Gi"), "default")
    await eventually(lambda: _phase_is(client, "kept", "Bound"))
    await eventually(lambda: _phase_is(client, "dropped", "Bound"))
    await client.delete(PERSISTENTVOLUMECLAIMS, "a", "default")
    await client.delete(PERSISTENTVOLUMECLAIMS, "b", "default")
    await eventually(lambda: _phase_is(client, "kept", "Released"))

    async def gone() -> bool:
        names = {v["metadata"]["name"] for v in
                 (await client.list(PERSISTENTVOLUMES))["items"]}
        return "dropped" not in names

    await eventually(gone)
    # a Released volume is not given to a new claim (its data belongs to the old one)
    await client.create(PERSISTENTVOLUMECLAIMS, claim("c", "1Gi"), "default")
    await eventually(lambda: _claim_pending(client, "c"))
    assert await phase(client, PERSISTENTVOLUMES, "kept") == "Released"


async def _phase_is(client: Any, name: str, wanted: str) -> bool:
    return await phase(client, PERSISTENTVOLUMES, name) == wanted


async def _claim_pending(client: Any, name: str) -> bool:
    return await phase(client, PERSISTENTVOLUMECLAIMS, name, "default") == "Pending"
