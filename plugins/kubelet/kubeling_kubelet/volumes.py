"""Pod volumes on the node: emptyDir, hostPath, configMap, secret, downwardAPI, projected.

Each pod has a directory ``<root>/pods/<uid>/volumes/<name>``.  ConfigMap, Secret,
downwardAPI and projected volumes are written the way the kubelet's atomic writer does:
the files live in a timestamped directory, ``..data`` is a symlink to it and each visible
name is a symlink through ``..data``, so an update swaps one symlink and a reader never
sees half of a change.  :meth:`VolumeManager.setup` is idempotent and cheap when nothing
changed, so the pod worker calls it on every sync; that is how live updates happen.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubeling.runtime import Mount
from kubeling_kubelet.envs import EnvError, field_value, resource_value

log = logging.getLogger(__name__)

__all__ = ["VolumeError", "VolumeManager", "mounts_under"]

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]


class VolumeError(Exception):
    """A volume cannot be set up (the message says which and why)."""


def _mode(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


_PV_COMMON = frozenset({"capacity", "accessModes", "claimRef", "persistentVolumeReclaimPolicy",
                        "storageClassName", "mountOptions", "volumeMode", "nodeAffinity",
                        "volumeAttributesClassName"})
"""PersistentVolume spec fields that are not its source."""


class VolumeManager:
    """Sets up and tears down the volumes of the pods on this node."""

    def __init__(self, root: Path, *, configmap: Lookup, secret: Lookup,
                 allocatable: Mapping[str, str] | None = None,
                 claim: Lookup | None = None,
                 persistent_volume: Callable[[str], Obj | None] | None = None) -> None:
        self.root = root
        self.configmap = configmap
        self.secret = secret
        self.claim = claim
        """(namespace, name) -> PersistentVolumeClaim."""
        self.persistent_volume = persistent_volume
        """name -> PersistentVolume."""
        self.allocatable = dict(allocatable or {})
        self._tmpfs: set[Path] = set()

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    # -- set-up -------------------------------------------------------------------------

    def setup(self, pod: Obj, *, pod_ip: str = "", host_ip: str = "") -> dict[str, Path]:
        """Create or refresh every volume of ``pod``; returns volume name -> host path.

        :raises VolumeError: naming the volume that cannot be set up.
        """
        uid = pod["metadata"]["uid"]
        namespace = pod["metadata"].get("namespace") or "default"
        base = self.pod_dir(uid) / "volumes"
        base.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            try:
                paths[name] = self._setup_one(pod, namespace, volume, base / name,
                                              pod_ip=pod_ip, host_ip=host_ip)
            except (EnvError, OSError, ValueError) as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}": {exc}') \
                    from None
        return paths

    def _setup_one(self, pod: Obj, namespace: str, volume: Obj, path: Path, *,
                   pod_ip: str, host_ip: str) -> Path:
        if volume.get("hostPath") is not None:
            return self._host_path(volume["hostPath"])
        if volume.get("persistentVolumeClaim") is not None:
            return self._claimed(namespace, volume["persistentVolumeClaim"])
        if volume.get("emptyDir") is not None:
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)
            if (volume["emptyDir"] or {}).get("medium") == "Memory" and path not in self._tmpfs:
                if os.path.ismount(path):  # mounted by an earlier agent: adopt it
                    self._tmpfs.add(path)
                else:
                    self._mount_tmpfs(path, (volume["emptyDir"] or {}).get("sizeLimit"))
            return path
        if volume.get("configMap") is not None:
            src = volume["configMap"]
            files = self._object_files(namespace, src, secret=False)
            if files is not None:
                self._write_atomic(path, files, _mode(src.get("defaultMode"), 0o644))
            else:
                path.mkdir(parents=True, exist_ok=True)
            return path
        if volume.get("secret") is not None:
            src = volume["secret"]
            files = self._object_files(namespace, {**src, "name": src.get("secretName")},
                                       secret=True)
            if files is not None:
                self._write_atomic(path, files, _mode(src.get("defaultMode"), 0o644))
            else:
                path.mkdir(parents=True, exist_ok=True)
            return path
        if volume.get("downwardAPI") is not None:
            src = volume["downwardAPI"]
            files = self._downward_files(pod, src.get("items") or [], _mode(
                src.get("defaultMode"), 0o644), pod_ip=pod_ip, host_ip=host_ip)
            self._write_atomic(path, files, _mode(src.get("defaultMode"), 0o644))
            return path
        if volume.get("projected") is not None:
            src = volume["projected"]
            default_mode = _mode(src.get("defaultMode"), 0o644)
            files: dict[str, tuple[bytes, int]] = {}
            for source in src.get("sources") or []:
                if source.get("configMap") is not None:
                    files.update(self._object_files(namespace, source["configMap"],
                                                    secret=False, default_mode=default_mode)
                                 or {})
                elif source.get("secret") is not None:
                    files.update(self._object_files(namespace, source["secret"], secret=True,
                                                    default_mode=default_mode) or {})
                elif source.get("downwardAPI") is not None:
                    files.update(self._downward_files(
                        pod, source["downwardAPI"].get("items") or [], default_mode,
                        pod_ip=pod_ip, host_ip=host_ip))
                elif source.get("serviceAccountToken") is not None:
                    log.debug("serviceAccountToken projections are not served yet")
            self._write_atomic(path, files, default_mode)
            return path
        kind = next((k for k in volume if k != "name"), "?")
        raise ValueError(f"volume type {kind} is not supported by this node")

    def _claimed(self, namespace: str, src: Obj) -> Path:
        """The host directory of a claim's volume: a bound claim's PersistentVolume of
        type ``hostPath`` or ``local`` (what a single machine can serve)."""
        name = str(src.get("claimName") or "")
        claim = self.claim(namespace, name) if self.claim is not None else None
        if claim is None:
            raise ValueError(f'persistentvolumeclaim "{name}" not found')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if not volume_name or (claim.get("status") or {}).get("phase") != "Bound":
            raise ValueError(f'persistentvolumeclaim "{name}" is not bound')
        pv = self.persistent_volume(str(volume_name)) if self.persistent_volume else None
        if pv is None:
            raise ValueError(f'persistentvolume "{volume_name}" not found')
        spec = pv.get("spec") or {}
        if spec.get("hostPath") is not None:
            return self._host_path(spec["hostPath"])
        if spec.get("local") is not None:
            return self._host_path({"path": spec["local"].get("path"), "type": "Directory"})
        kind = next((k for k in spec if k not in _PV_COMMON), "?")
        raise ValueError(f'persistentvolume "{volume_name}": volume type {kind} is not '
                         "supported by this node (hostPath and local are)")

    def _host_path(self, src: Obj) -> Path:
        path = Path(src.get("path") or "")
        kind = src.get("type") or ""
        if not path.is_absolute():
            raise ValueError(f"hostPath {path} must be absolute")
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True, mode=0o755)
        elif kind == "FileOrCreate":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644, exist_ok=True)
        elif kind:
            checks = {
                "Directory": stat.S_ISDIR, "File": stat.S_ISREG, "Socket": stat.S_ISSOCK,
                "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK,
            }
            check = checks.get(kind)
            if check is None:
                raise ValueError(f"hostPath type {kind} is not known")
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                raise ValueError(f"hostPath type check failed: {path} does not exist") \
                    from None
            if not check(mode):
                raise ValueError(f"hostPath type check failed: {path} is not a {kind}")
        return path

    def _mount_tmpfs(self, path: Path, size: Any) -> None:
        options = ["-o", f"size={size}"] if size else []
        try:
            subprocess.run(["mount", "-t", "tmpfs", *options, "tmpfs", str(path)],
                           check=True, capture_output=True, timeout=10)
            self._tmpfs.add(path)
        except (OSError, subprocess.SubprocessError) as exc:
            # Not root, or no mount(8): the volume still works, on disk.
            log.warning("emptyDir %s: cannot mount tmpfs (%s); using a plain directory",
                        path, exc)
            self._tmpfs.add(path)

    def _object_files(self, namespace: str, src: Obj, *, secret: bool,
                      default_mode: int | None = None) -> dict[str, tuple[bytes, int]] | None:
        name = src.get("name") or ""
        obj = (self.secret if secret else self.configmap)(namespace, name)
        what = "secret" if secret else "configmap"
        mode = default_mode if default_mode is not None else _mode(src.get("defaultMode"),
                                                                   0o644)
        if obj is None:
            if src.get("optional"):
                return None
            raise ValueError(f'{what} "{name}" not found')
        data: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            data[key] = base64.b64decode(value) if secret else str(value).encode()
        if not secret:
            for key, value in (obj.get("binaryData") or {}).items():
                data[key] = base64.b64decode(value)
        items = src.get("items")
        if not items:
            return {k: (v, mode) for k, v in data.items()}
        files: dict[str, tuple[bytes, int]] = {}
        for item in items:
            key = item.get("key", "")
            if key not in data:
                if src.get("optional"):
                    continue
                raise ValueError(f'configuration key "{key}" not found in {what} "{name}"')
            files[item.get("path") or key] = (data[key], _mode(item.get("mode"), mode))
        return files

    def _downward_files(self, pod: Obj, items: list[Obj], mode: int, *, pod_ip: str,
                        host_ip: str) -> dict[str, tuple[bytes, int]]:
        files: dict[str, tuple[bytes, int]] = {}
        for item in items:
            if item.get("fieldRef"):
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""),
                                    pod_ip=pod_ip, host_ip=host_ip)
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                value = resource_value(pod, ref.get("containerName", ""),
                                       ref.get("resource", ""), ref.get("divisor"),
                                       self.allocatable)
            else:
                continue
            files[item.get("path", "")] = (value.encode(), _mode(item.get("mode"), mode))
        return files

    def _write_atomic(self, path: Path, files: Mapping[str, tuple[bytes, int]],
                      dir_mode: int) -> None:
        """Publish ``files`` under ``path`` by swapping the ``..data`` symlink."""
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o755)
        data_link = path / "..data"
        current = data_link.resolve() if data_link.is_symlink() else None
        if current is not None and _same_content(current, files):
            return
        for rel in files:
            if rel.startswith("/") or ".." in Path(rel).parts:
                raise ValueError(f"path {rel!r} must be relative and may not contain '..'")
        stamp = path / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
        stamp.mkdir()
        for rel, (content, mode) in files.items():
            target = stamp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.chmod(target, mode)
        tmp_link = path / "..data_tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp_link.unlink()
        tmp_link.symlink_to(stamp.name)
        os.replace(tmp_link, data_link)
        wanted_top = {Path(rel).parts[0] for rel in files}
        for top in wanted_top:
            link = path / top
            if not link.is_symlink():
                if link.exists():
                    shutil.rmtree(link) if link.is_dir() else link.unlink()
                link.symlink_to(Path("..data") / top)
        for entry in path.iterdir():
            if entry.name.startswith(".."):
                if entry.name not in ("..data", stamp.name) and entry.is_dir() \
                        and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_symlink() and entry.name not in wanted_top:
                entry.unlink()

    # -- mounts -------------------------------------------------------------------------

    def mounts(self, pod: Obj, container: Obj, paths: Mapping[str, Path]) -> list[Mount]:
        """The runtime mounts of a container's ``volumeMounts``."""
        out: list[Mount] = []
        propagation = {"HostToContainer": "rslave", "Bidirectional": "rshared"}
        for vm in container.get("volumeMounts") or []:
            host = paths.get(vm.get("name", ""))
            if host is None:
                raise VolumeError(f'volume "{vm.get("name")}" is not set up')
            sub = vm.get("subPath") or ""
            if sub:
                if sub.startswith("/") or ".." in Path(sub).parts:
                    raise VolumeError(f"subPath {sub!r} must be relative without '..'")
                host = host / sub
                if not host.exists():
                    host.mkdir(parents=True, exist_ok=True)
            out.append(Mount(host_path=str(host), container_path=vm.get("mountPath", ""),
                             read_only=bool(vm.get("readOnly")),
                             propagation=propagation.get(vm.get("mountPropagation") or "",
                                                         "rprivate")))
        return out

    # -- tear-down ----------------------------------------------------------------------

    def teardown(self, uid: str) -> None:
        """Unmount and remove everything of a pod (after its containers are gone)."""
        pod_dir = self.pod_dir(uid)
        for path in mounts_under(pod_dir):
            subprocess.run(["umount", str(path)], capture_output=True, timeout=10, check=False)
        self._tmpfs = {p for p in self._tmpfs if pod_dir not in p.parents}
        shutil.rmtree(pod_dir, ignore_errors=True)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points below ``directory`` (deepest first), from /proc/self/mountinfo."""
    prefix = str(directory.resolve()) + "/"
    found = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 4:
                point = fields[4].replace("\\040", " ")
                if point.startswith(prefix):
                    found.append(Path(point))
    except OSError:
        return []
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _same_content(directory: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    try:
        existing = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
        if existing != set(files):
            return False
        for rel, (content, mode) in files.items():
            target = directory / rel
            if target.read_bytes() != content or stat.S_IMODE(target.stat().st_mode) != mode:
                return False
        return True
    except OSError:
        return False
