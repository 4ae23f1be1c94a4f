"""Idmapped mounts: show a tree with its owners shifted, without touching a file.

The new mount API (Linux 5.12+): open_tree(OPEN_TREE_CLONE) makes a detached
copy of a mount, mount_setattr(MOUNT_ATTR_IDMAP, userns_fd) gives the copy
the id mapping of a user namespace, move_mount attaches it. Through such a
mount a file owned by 0 on disk appears owned by the namespace's mapping of
0 (say 100000), and a file created by host uid 100000 lands on disk as 0.

For a container under a remapped root this means the image's layers stay
as they are and the container's upper directory holds unshifted ids (so
commit, diff and cp see what they see without a remap). Overlayfs can be
idmapped as a merged mount on this kernel line (it accepts idmapped layers
since 5.19 and is itself FS_ALLOW_IDMAP); `supported` probes once.
"""

from __future__ import annotations

import ctypes
import os

from freight.linux import syscalls

# Same numbers on x86_64 and arm64 (asm-generic table).
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442

OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(ret: int, what: str, path: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def open_tree_clone(path: str, recursive: bool = False) -> int:
    """A detached clone of the mount at `path`, as an fd (close-on-exec)."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    raw = os.fsencode(path)
    return _check(
        _libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), AT_FDCWD, raw, ctypes.c_uint(flags)),
        "open_tree",
        path,
    )


def set_idmap(mount_fd: int, userns_fd: int, path: str = "") -> None:
    """Give the detached mount `mount_fd` the id mapping of the user namespace `userns_fd`."""
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    ret = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(mount_fd),
        b"",
        ctypes.c_uint(AT_EMPTY_PATH),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(ret, "mount_setattr(MOUNT_ATTR_IDMAP)", path)


def move_mount(mount_fd: int, target: str) -> None:
    """Attach the detached mount `mount_fd` at `target`."""
    ret = _libc.syscall(
        ctypes.c_long(_SYS_MOVE_MOUNT),
        ctypes.c_int(mount_fd),
        b"",
        AT_FDCWD,
        os.fsencode(target),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    _check(ret, "move_mount", target)


def idmap_in_place(target: str, userns_fd: int) -> None:
    """Replace the mount at `target` by an idmapped clone of itself.

    The clone is made and idmapped before the original goes, so a failure
    leaves `target` as it was; the clone keeps the superblock (an overlay's
    layers) alive after the original is detached.
    """
    fd = open_tree_clone(target)
    try:
        set_idmap(fd, userns_fd, target)
        syscalls.umount(target, syscalls.MNT_DETACH)
        move_mount(fd, target)
    finally:
        os.close(fd)


def idmapped_bind(source: str, target: str, userns_fd: int) -> None:
    """Mount an idmapped view of the directory `source` at `target` (which must exist)."""
    fd = open_tree_clone(source, recursive=False)
    try:
        set_idmap(fd, userns_fd, source)
        move_mount(fd, target)
    finally:
        os.close(fd)
