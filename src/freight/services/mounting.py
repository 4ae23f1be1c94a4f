"""Mounting what a snapshotter returns (the daemon mounts; snapshotters don't)."""

from __future__ import annotations

from pathlib import Path

from freight.linux import syscalls
from freight.linux.mountopts import parse_mount_options
from freight.snapshots import Mount


def mount_all(mounts: list[Mount], target: Path) -> None:
    for m in mounts:
        flags, _propagation, data = parse_mount_options(m.options)
        fstype = None if m.type == "bind" else m.type
        if m.type == "bind":
            flags |= syscalls.MS_BIND
        syscalls.mount(m.source, str(target), fstype, flags, data or None)
        if m.type == "bind" and flags & syscalls.MS_RDONLY:
            # A bind mount ignores MS_RDONLY until it is remounted.
            syscalls.mount(None, str(target), None, flags | syscalls.MS_REMOUNT, None)


def unmount(target: Path) -> None:
    """Lazy unmount: a process still holding a file must not block cleanup."""
    syscalls.umount(str(target), syscalls.MNT_DETACH)
