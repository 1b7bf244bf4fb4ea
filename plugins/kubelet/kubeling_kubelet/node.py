"""What the node reports about itself: capacity, addresses, nodeInfo, labels, conditions."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import socket
import struct
from pathlib import Path
from typing import Any

from kubeling_kubelet.status import rfc3339

__all__ = ["arch", "capacity", "conditions", "host_ip", "node_info"]

Obj = dict[str, Any]


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0])  # kB
    return out


def capacity(root: Path, max_pods: int) -> dict[str, str]:
    """cpu, memory, pods and ephemeral-storage of this machine."""
    mem_kib = _meminfo().get("MemTotal", 0)
    disk = shutil.disk_usage(root)
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{mem_kib}Ki",
        "pods": str(max_pods),
        "ephemeral-storage": f"{disk.total // 1024}Ki",
    }


def host_ip() -> str:
    """The IPv4 address of the interface holding the default route (else loopback)."""
    iface = None
    for line in _read("/proc/net/route").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            iface = fields[0]
            break
    if iface:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                     struct.pack("256s", iface[:15].encode()))
                return socket.inet_ntoa(packed[20:24])
        except OSError:
            pass
    return "127.0.0.1"


def node_info(runtime_version: str, kubelet_version: str) -> Obj:
    os_release = {}
    for line in _read("/etc/os-release").splitlines():
        key, _, val = line.partition("=")
        os_release[key] = val.strip('"')
    return {
        "machineID": _read("/etc/machine-id"),
        "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": os_release.get("PRETTY_NAME", platform.system()),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": kubelet_version,
        "kubeProxyVersion": "",
        "operatingSystem": platform.system().lower(),
        "architecture": arch(),
    }


def _condition(kind: str, ok_is_false: bool, reason: str, message: str,
               old: dict[str, Obj], now: str) -> Obj:
    status = "False" if ok_is_false else "True"
    before = old.get(kind)
    transition = before.get("lastTransitionTime") if before and before.get(
        "status") == status else now
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": transition}


def conditions(root: Path, old_conditions: list[Obj], *, runtime_ok: bool,
               runtime_message: str = "") -> list[Obj]:
    """Ready, MemoryPressure, DiskPressure and PIDPressure, from the machine's state."""
    old = {c.get("type", ""): c for c in old_conditions}
    now = rfc3339()
    mem = _meminfo()
    available = mem.get("MemAvailable", mem.get("MemFree", 0))
    memory_pressure = available < 100 * 1024
    disk = shutil.disk_usage(root)
    disk_pressure = disk.free < disk.total * 0.10
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max", "32768"))
        pids = sum(1 for p in os.listdir("/proc") if p.isdigit())
    except (OSError, ValueError):
        pid_max, pids = 1, 0
    pid_pressure = pids > pid_max * 0.9
    out = [
        _condition("MemoryPressure", not memory_pressure,
                   "KubeletHasInsufficientMemory" if memory_pressure
                   else "KubeletHasSufficientMemory",
                   "kubelet has insufficient memory available" if memory_pressure
                   else "kubelet has sufficient memory available", old, now),
        _condition("DiskPressure", not disk_pressure,
                   "KubeletHasDiskPressure" if disk_pressure else "KubeletHasNoDiskPressure",
                   "kubelet has disk pressure" if disk_pressure
                   else "kubelet has no disk pressure", old, now),
        _condition("PIDPressure", not pid_pressure,
                   "KubeletHasInsufficientPID" if pid_pressure else "KubeletHasSufficientPID",
                   "kubelet has insufficient PID available" if pid_pressure
                   else "kubelet has sufficient PID available", old, now),
    ]
    ready = runtime_ok
    out.insert(0, {
        "type": "Ready", "status": "True" if ready else "False",
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready
        else f"container runtime is down: {runtime_message}",
        "lastHeartbeatTime": now,
        "lastTransitionTime": old["Ready"].get("lastTransitionTime", now)
        if "Ready" in old and old["Ready"].get("status") == ("True" if ready else "False")
        else now,
    })
    return out
