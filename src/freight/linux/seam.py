"""The syscall seam: a `Syscalls` protocol, the real implementation, a recording fake.

Root filesystem setup is a long, order-sensitive sequence of mounts, mknods
and symlinks. Written against `Syscalls`, it runs for real in a container's
init and, in unit tests, against `RecordingSyscalls`, which records each call
so a test asserts on the plan without root (youki's syscall seam is the model).
"""

from __future__ import annotations

import os
import stat
from typing import Protocol

from freight.linux import syscalls


class Syscalls(Protocol):
    """The operations rootfs and namespace setup may perform."""

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None: ...
    def umount(self, target: str, flags: int) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def chdir(self, path: str) -> None: ...
    def mkdir_all(self, path: str, mode: int) -> None: ...
    def touch(self, path: str) -> None: ...
    def symlink(self, target: str, link: str) -> None: ...
    def mknod(self, path: str, mode: int, device: int) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...
    def readlink(self, path: str) -> str | None: ...
    def kind(self, path: str) -> str | None: ...
    def sethostname(self, name: str) -> None: ...


class LinuxSyscalls:
    """The real thing: each method is one system call (or a tiny group of them)."""

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        syscalls.mount(source, target, fstype, flags, data)

    def umount(self, target: str, flags: int) -> None:
        syscalls.umount(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        syscalls.pivot_root(new_root, put_old)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def mkdir_all(self, path: str, mode: int) -> None:
        os.makedirs(path, mode, exist_ok=True)

    def touch(self, path: str) -> None:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))

    def symlink(self, target: str, link: str) -> None:
        os.symlink(target, link)

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)
        # mknod honours the umask; devices need their exact mode (0666).
        os.chmod(path, stat.S_IMODE(mode))

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(path)
        except OSError:
            return None

    def kind(self, path: str) -> str | None:
        """'dir', 'file' (anything else) or None when nothing is there."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return "dir" if stat.S_ISDIR(st.st_mode) else "file"

    def sethostname(self, name: str) -> None:
        syscalls.sethostname(name)


class RecordingSyscalls:
    """A fake that records every mutating call as a tuple and answers queries from sets.

    `dirs` and `files` seed what exists; mkdir_all/touch/mknod add to them so
    later `kind` queries see the effect. `deny_mknod` makes mknod fail with
    EPERM, as it does in a user namespace or without CAP_MKNOD.
    """

    def __init__(
        self,
        dirs: set[str] | None = None,
        files: set[str] | None = None,
        links: dict[str, str] | None = None,
        deny_mknod: bool = False,
    ) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.dirs = set(dirs or ())
        self.files = set(files or ())
        self.links = dict(links or {})
        self.deny_mknod = deny_mknod

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount(self, target: str, flags: int) -> None:
        self.calls.append(("umount", target, flags))

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self.calls.append(("pivot_root", new_root, put_old))

    def chdir(self, path: str) -> None:
        self.calls.append(("chdir", path))

    def mkdir_all(self, path: str, mode: int) -> None:
        self.calls.append(("mkdir_all", path, mode))
        self.dirs.add(path)

    def touch(self, path: str) -> None:
        self.calls.append(("touch", path))
        self.files.add(path)

    def symlink(self, target: str, link: str) -> None:
        self.calls.append(("symlink", target, link))
        self.links[link] = target

    def mknod(self, path: str, mode: int, device: int) -> None:
        if self.deny_mknod:
            raise PermissionError(1, "Operation not permitted", path)
        self.calls.append(("mknod", path, mode, device))
        self.files.add(path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self.calls.append(("chown", path, uid, gid))

    def readlink(self, path: str) -> str | None:
        return self.links.get(path)

    def kind(self, path: str) -> str | None:
        if path in self.dirs:
            return "dir"
        return "file" if path in self.files else None

    def sethostname(self, name: str) -> None:
        self.calls.append(("sethostname", name))

    def named(self, name: str) -> list[tuple[object, ...]]:
        """Only the recorded calls of one kind, e.g. named("mount")."""
        return [c for c in self.calls if c[0] == name]
