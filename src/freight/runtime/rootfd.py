"""Rootfs setup's system calls, made through an fd to the container's root.

`rootfs.setup` computes each destination with `secure_join`, a userspace walk
that reads symlinks. Between that walk and the mount, a process that can write
a shared volume (another container) could swap a component for a symlink to
the host, and a plain path-based mount() would follow it (runc's
CVE-2021-30465). `RootedSyscalls` closes that window: every path under the
rootfs is opened again with openat2(RESOLVE_IN_ROOT) from an fd on the root,
and the mount (mkdir, touch, symlink, mknod, chown) is made on that fd —
mount() through `/proc/self/fd/N`, the rest with *at() calls on the parent fd
naming only the last component, never following it. A symlink met there
resolves inside the root, as the container would see it.

After pivot_root the container's root is "/" and paths are plain again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from freight.linux import syscalls
from freight.linux.openat2 import openat2
from freight.linux.seam import LinuxSyscalls

_PATH_DIR = os.O_PATH | os.O_DIRECTORY


class RootedSyscalls(LinuxSyscalls):
    """LinuxSyscalls that confines every path under `root` to it (until pivot_root)."""

    def __init__(self, root: str) -> None:
        self.root: str | None = os.path.normpath(root)
        self.root_fd = os.open(self.root, _PATH_DIR | os.O_CLOEXEC)

    def _reopen(self) -> None:
        assert self.root is not None
        fd = os.open(self.root, _PATH_DIR | os.O_CLOEXEC)
        os.close(self.root_fd)
        self.root_fd = fd

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def _inside(self, path: str) -> str | None:
        """`path` relative to the root, or None for a path outside it (a bind source)."""
        if self.root is None:
            return None
        path = os.path.normpath(path)
        if path == self.root:
            return "."
        if path.startswith(self.root + "/"):
            return path[len(self.root) + 1 :]
        return None

    @contextlib.contextmanager
    def _pinned(self, rel: str) -> Iterator[str]:
        fd = openat2(self.root_fd, rel, os.O_PATH)
        try:
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _parent(self, rel: str) -> Iterator[tuple[int, str]]:
        head, name = os.path.split(rel)
        if name in ("", ".", ".."):
            raise OSError(errno.EINVAL, "not a file name", rel)
        fd = openat2(self.root_fd, head or ".", _PATH_DIR)
        try:
            yield fd, name
        finally:
            os.close(fd)

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        rel = self._inside(target)
        if rel is None:
            syscalls.mount(source, target, fstype, flags, data)
            return
        if rel == ".":
            # The rootfs bound onto itself (pivot_root needs a mount point): the
            # fd must then be on the new mount, or mounts below would land under it.
            syscalls.mount(source, target, fstype, flags, data)
            self._reopen()
            return
        with self._pinned(rel) as pinned:
            syscalls.mount(source, pinned, fstype, flags, data)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        super().pivot_root(new_root, put_old)
        self.root = None  # from here on "/" is the container's root

    def mkdir_all(self, path: str, mode: int) -> None:
        rel = self._inside(path)
        if rel is None:
            super().mkdir_all(path, mode)
            return
        done: list[str] = []
        for part in [p for p in rel.split("/") if p not in ("", ".")]:
            done.append(part)
            sub = "/".join(done)
            try:
                os.close(openat2(self.root_fd, sub, _PATH_DIR))
                continue
            except FileNotFoundError:
                pass
            with self._parent(sub) as (pfd, name), contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=pfd)
            os.close(openat2(self.root_fd, sub, _PATH_DIR))  # NotADirectoryError if it is not

    def touch(self, path: str) -> None:
        rel = self._inside(path)
        if rel is None:
            super().touch(path)
            return
        with self._parent(rel) as (pfd, name):
            flags = os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            os.close(os.open(name, flags, 0o644, dir_fd=pfd))

    def symlink(self, target: str, link: str) -> None:
        rel = self._inside(link)
        if rel is None:
            super().symlink(target, link)
            return
        with self._parent(rel) as (pfd, name):
            os.symlink(target, name, dir_fd=pfd)

    def mknod(self, path: str, mode: int, device: int) -> None:
        rel = self._inside(path)
        if rel is None:
            super().mknod(path, mode, device)
            return
        with self._parent(rel) as (pfd, name):
            os.mknod(name, mode, device, dir_fd=pfd)
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=pfd)
            try:
                # mknod honours the umask; devices need their exact mode (0666).
                os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(mode))
            finally:
                os.close(fd)

    def chown(self, path: str, uid: int, gid: int) -> None:
        rel = self._inside(path)
        if rel is None:
            super().chown(path, uid, gid)
            return
        with self._parent(rel) as (pfd, name):
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)

    def kind(self, path: str) -> str | None:
        rel = self._inside(path)
        if rel is None:
            return super().kind(path)
        try:
            fd = openat2(self.root_fd, rel, os.O_PATH)
        except OSError:
            return None
        try:
            return "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str | None:
        rel = self._inside(path)
        if rel is None or rel == ".":
            return super().readlink(path) if rel is None else None
        try:
            with self._parent(rel) as (pfd, name):
                return os.readlink(name, dir_fd=pfd)
        except OSError:
            return None
