"""Hostile images and small helpers for the security suite.

An image here is a root filesystem tar built in memory (host's busybox plus
whatever the attack needs) and imported with `freight import`, so every layer
goes through the daemon's real layer extraction.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

BUSYBOX = "/bin/busybox"
MTIME = 1700000000


@dataclass
class Entry:
    """One tar member: kind is "file", "dir", "symlink", "hardlink" (target = link name), "fifo"."""

    name: str
    kind: str = "file"
    data: bytes = b""
    target: str = ""
    mode: int = 0o644


def rootfs_tar(entries: Iterable[Entry], busybox: bool = True) -> bytes:
    """A tar with /bin/busybox (and the /etc files a container needs), then `entries`
    exactly in the order given (attacks depend on the order). An entry of `entries`
    replaces a base one of the same name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        base: list[Entry] = []
        if busybox:
            with open(BUSYBOX, "rb") as f:
                base.append(Entry("bin/busybox", data=f.read(), mode=0o755))
            base += [
                Entry("bin", "dir", mode=0o755),
                Entry("etc", "dir", mode=0o755),
                Entry("tmp", "dir", mode=0o1777),
                Entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
                Entry("etc/group", data=b"root:x:0:\n"),
            ]
            base.sort(key=lambda e: e.kind != "dir")
        given = {e.name for e in entries}
        base = [e for e in base if e.name not in given]
        for e in [*base, *entries]:
            add(tar, e)
    return buf.getvalue()


def add(tar: tarfile.TarFile, e: Entry) -> None:
    info = tarfile.TarInfo(e.name)
    info.mtime, info.mode = MTIME, e.mode
    if e.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif e.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, e.target
        tar.addfile(info)
    elif e.kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, e.target
        tar.addfile(info)
    elif e.kind == "fifo":
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    else:
        info.size = len(e.data)
        tar.addfile(info, io.BytesIO(e.data))


def import_image(freightd, entries: Iterable[Entry], busybox: bool = True) -> tuple[str, str]:
    """Import the rootfs as a new image; (name, combined CLI output). Name is "" on failure."""
    name = f"sec-{secrets.token_hex(4)}"
    result = freightd.cli("import", "-", name, input=rootfs_tar(entries, busybox))
    out = (result.stdout + result.stderr).decode(errors="replace")
    return (name if result.returncode == 0 else ""), out


def canary_dir(tmp_root: str = "/tmp") -> str:
    """A fresh host directory an attack aims at; tests assert it stays untouched."""
    path = os.path.join(tmp_root, f"freight-canary-{secrets.token_hex(4)}")
    os.mkdir(path, 0o755)
    with open(os.path.join(path, "HOSTSECRET"), "w") as f:
        f.write("host-secret\n")
    return path


def listing(path: str) -> list[str]:
    return sorted(os.listdir(path))


def output(result) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")
