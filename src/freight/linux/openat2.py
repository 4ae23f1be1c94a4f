"""openat2(2) with RESOLVE_IN_ROOT: open a path of a container from a dirfd on its root.

The kernel resolves every component itself, treating the dirfd as "/":
absolute symlinks restart at it, ".." stops at it, and because the walk is
one system call a container changing its files meanwhile cannot swing a
component out of the root (the race a userspace lstat+readlink walk has).
Mount points under the dirfd (the container's volumes, seen through
/proc/<pid>/root) are crossed as the container would cross them.

Linux 5.6+ has it; `available()` says whether this kernel does.
"""

from __future__ import annotations

import ctypes
import errno
import os

SYS_OPENAT2 = 437  # same number on x86_64 and arm64 (asm-generic)

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# What a container path gets: confined to the root, and /proc/self/fd/N style
# magic links (which jump anywhere) refused.
IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = IN_ROOT) -> int:
    """A new fd for `path` resolved under `dirfd`; OSError naming `path` on failure.

    EAGAIN (the kernel saw a concurrent rename and refuses to guess) is retried.
    """
    how = _OpenHow(
        flags | os.O_CLOEXEC, mode if flags & (os.O_CREAT | os.O_TMPFILE) else 0, resolve
    )
    raw = os.fsencode(path or ".")
    for _ in range(64):
        fd = _libc.syscall(SYS_OPENAT2, dirfd, raw, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def available() -> bool:
    root = os.open("/", os.O_PATH)
    try:
        os.close(openat2(root, ".", os.O_PATH))
    except OSError:
        return False
    finally:
        os.close(root)
    return True
