"""Mounts added to and removed from a running container's mount namespace.

The kernel's new mount API makes this possible without entering the
container's root by path from the host (kernel ≥ 5.12 for read-only; 6.x here):

    forked child (single-threaded: setns(CLONE_NEWNS) refuses a threaded caller)
      │ fd = open_tree(source, OPEN_TREE_CLONE|AT_RECURSIVE)   host namespace: a
      │                                                          detached copy of the bind
      │ mount_setattr(fd, RDONLY, propagation)                  before it is attached
      │ setns(/proc/<pid>/ns/mnt)                               root and cwd become the
      │                                                          container's root
      │ mkdir -p / touch the destination                         inside the container
      │ move_mount(fd, "", AT_FDCWD, destination, F_EMPTY_PATH)  attach it there
      └ _exit(0)     (or one line "errno step" on the pipe, then _exit(1))

Removal is setns + umount2(MNT_DETACH) in the same kind of child. The daemon
never changes namespace itself; a child costs a fork (~2 ms for freightd).
Destinations are resolved inside the container's root after setns, so a
symlink in the container cannot make the daemon mount over a host path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from dataclasses import dataclass

from freight.linux import syscalls

_libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers of the new mount API: one table for every 64-bit architecture.
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1

PROPAGATION = {
    "private": syscalls.MS_PRIVATE,
    "rprivate": syscalls.MS_PRIVATE,
    "shared": syscalls.MS_SHARED,
    "rshared": syscalls.MS_SHARED,
    "slave": syscalls.MS_SLAVE,
    "rslave": syscalls.MS_SLAVE,
}


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class LiveMount:
    """A bind of host path `source` at `destination` inside the container."""

    source: str
    destination: str
    readonly: bool = False
    propagation: str = "rprivate"


class LiveMountError(OSError):
    """The kernel refused a step; `step` says which (open_tree, setns, mkdir, move_mount…)."""

    def __init__(self, err: int, step: str, path: str) -> None:
        super().__init__(err, f"{step}: {os.strerror(err)}", path)
        self.step = step


# the calls --------------------------------------------------------------------------


def _check(ret: int, step: str) -> int:
    if ret < 0:
        raise _StepFailed(ctypes.get_errno(), step)
    return ret


class _StepFailed(Exception):
    def __init__(self, err: int, step: str) -> None:
        super().__init__(err, step)
        self.err, self.step = err, step


def open_tree(path: str, flags: int) -> int:
    return _check(
        _libc.syscall(
            ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), os.fsencode(path),
            ctypes.c_uint(flags),
        ),
        "open_tree",
    )  # fmt: skip


def mount_setattr(fd: int, attr_set: int, propagation: int) -> None:
    attr = _MountAttr(attr_set, 0, propagation, 0)
    _check(
        _libc.syscall(
            ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(fd), b"",
            ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        "mount_setattr",
    )  # fmt: skip


def move_mount(fd: int, target: str) -> None:
    _check(
        _libc.syscall(
            ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_int(fd), b"", ctypes.c_int(AT_FDCWD),
            os.fsencode(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        ),
        "move_mount",
    )  # fmt: skip


# in the child --------------------------------------------------------------------------


def _attach(pid: int, m: LiveMount) -> None:
    tree = open_tree(m.source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
    mount_setattr(tree, MOUNT_ATTR_RDONLY if m.readonly else 0, PROPAGATION.get(m.propagation, 0))
    is_dir = stat.S_ISDIR(os.stat(m.source).st_mode)
    _enter(pid)
    _make_mount_point(m.destination, is_dir)
    move_mount(tree, m.destination)


def _detach(pid: int, destination: str) -> None:
    _enter(pid)
    try:
        syscalls.umount(destination, syscalls.MNT_DETACH | syscalls.UMOUNT_NOFOLLOW)
    except OSError as e:
        raise _StepFailed(e.errno or errno.EIO, "umount") from None


def _enter(pid: int) -> None:
    try:
        fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _StepFailed(e.errno or errno.ESRCH, "open mount namespace") from None
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWNS)
    except OSError as e:
        raise _StepFailed(e.errno or errno.EPERM, "setns") from None
    finally:
        os.close(fd)


def _make_mount_point(path: str, is_dir: bool) -> None:
    try:
        if is_dir:
            os.makedirs(path, 0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path) or "/", 0o755, exist_ok=True)
            if not os.path.lexists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    except OSError as e:
        raise _StepFailed(e.errno or errno.EIO, "create mount point") from None


# the parent ------------------------------------------------------------------------------


def _in_child(path: str, work: object, *args: object) -> None:
    """Run `work(*args)` in a forked child; its failure raised here as LiveMountError."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: syscalls only, then _exit (no Python cleanup, no locks)
        code = 0
        try:
            os.close(read_end)
            work(*args)  # type: ignore[operator]
        except _StepFailed as e:
            os.write(write_end, f"{e.err} {e.step}".encode())
            code = 1
        except BaseException as e:  # noqa: BLE001 - the child must always _exit
            os.write(write_end, f"{errno.EIO} {type(e).__name__}: {e}".encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    try:
        report = b""
        while chunk := os.read(read_end, 4096):
            report += chunk
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if report or os.waitstatus_to_exitcode(status) != 0:
        err, _, step = report.decode(errors="replace").partition(" ")
        raise LiveMountError(int(err) if err.isdigit() else errno.EIO, step or "child", path)


def attach(pid: int, mount: LiveMount) -> None:
    """Bind `mount.source` (host) at `mount.destination` in the namespace of process `pid`."""
    _in_child(mount.destination, _attach, pid, mount)


def detach(pid: int, destination: str) -> None:
    """Lazily unmount `destination` in the mount namespace of process `pid`."""
    _in_child(destination, _detach, pid, destination)


def is_mounted(pid: int, destination: str) -> bool:
    """Whether `destination` is a mount point in process `pid`'s view (its mountinfo)."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return any(line.split()[4] == destination for line in f)
    except OSError:
        return False
