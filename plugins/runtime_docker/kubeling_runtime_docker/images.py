"""Images built locally from a static busybox, so nothing has to come from a registry.

The infra ("pause") image of every pod is built this way when it is missing, and tests
build their busybox image with the same function.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["DEFAULT_APPLETS", "busybox_rootfs", "check_static", "import_image_args"]

DEFAULT_APPLETS = (
    "sh", "ash", "cat", "echo", "ls", "sleep", "httpd", "nc", "wget", "hostname", "env",
    "id", "kill", "ps", "touch", "mkdir", "rm", "true", "false", "test", "[", "printf",
    "head", "tail", "grep", "sed", "wc", "date", "mount", "cp", "mv", "ln", "chmod",
    "seq", "tr", "stat", "readlink", "uname", "whoami", "find", "dd", "df", "yes", "sync",
    "tar", "gzip", "nslookup", "ping",
)


def check_static(path: Path) -> None:
    """Raise ``ValueError`` unless ``path`` is a statically linked executable."""
    try:
        head = path.read_bytes()[:8192]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read busybox ({exc.strerror}); install Debian's "
                         f"busybox-static package (apt-get install busybox-static)") from None
    if not head.startswith(b"\x7fELF"):
        raise ValueError(f"{path} is not an ELF executable")
    if b"ld-linux" in head or b"ld-musl" in head:
        raise ValueError(f"{path} is dynamically linked, so it cannot run alone in an image; "
                         f"install Debian's busybox-static package (apt-get install "
                         f"busybox-static)")


def busybox_rootfs(busybox: Path, applets: Iterable[str] = DEFAULT_APPLETS,
                   files: dict[str, bytes] | None = None) -> bytes:
    """A root filesystem tarball: ``/bin/busybox``, applet symlinks, ``/etc/passwd``,
    ``/tmp`` and any extra ``files`` (path -> content)."""
    check_static(busybox)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "root", "var", "var/www", "proc", "sys", "dev"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                               b"nobody:x:65534:65534:nobody:/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for name, data in (files or {}).items():
            add_file(name.lstrip("/"), data)
    return buf.getvalue()


def import_image_args(repo_tag: str, *, cmd: Sequence[str] | None = None,
                      entrypoint: Sequence[str] | None = None,
                      labels: dict[str, str] | None = None) -> dict[str, str | list[str]]:
    """Query parameters of ``POST /images/create?fromSrc=-`` (``docker import``)."""
    repo, _, tag = repo_tag.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = repo_tag, "latest"
    changes = []
    if cmd is not None:
        changes.append(f"CMD {json.dumps(list(cmd))}")
    if entrypoint is not None:
        changes.append(f"ENTRYPOINT {json.dumps(list(entrypoint))}")
    for key, value in (labels or {}).items():
        changes.append(f"LABEL {json.dumps(key)}={json.dumps(value)}")
    params: dict[str, str | list[str]] = {"fromSrc": "-", "repo": repo, "tag": tag}
    if changes:
        params["changes"] = changes
    return params
