"""User namespaces: id maps, entering a new user namespace, holding one open as an fd.

A new user namespace starts with no ids mapped; only a process in the
parent namespace with CAP_SETUID/CAP_SETGID there may write
/proc/PID/{uid,gid}_map, once each. Both users here are host root:

* `unshare_user` (the runtime's setup child): unshare, ask the caller (host
  root, waiting on the sync pipe) to write the maps, become root inside; see
  `freight.runtime.sync`.

* `unshare_mapped` (a process on its own): fork a small *mapper*, then
  unshare(CLONE_NEWUSER); the mapper, still in the host's namespace, writes
  our maps and exits; we then become uid/gid 0 of the new namespace, which
  is the mapped host id outside::

      setup child                         mapper (fork, host root)
      ───────────                         ──────
      fork ─────────────────────────────▶ read(pipe) ... blocks
      unshare(CLONE_NEWUSER)
      write(pipe, b"1") ────────────────▶ write /proc/PPID/uid_map, gid_map
      waitpid(mapper) ◀──────────────────  _exit(0 | 1)
      setgroups([]) setresgid(0) setresuid(0)

* `namespace_fd` (the daemon's idmapped mounts): the same mapper dance the
  other way round; a child unshares and waits, we write its maps, open
  /proc/CHILD/ns/user and let it go. The fd keeps the namespace alive.

Forking from a threaded parent is safe here: the children only make raw
system calls and leave through os._exit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from freight.linux import syscalls


@dataclass(frozen=True)
class IdRange:
    """One line of a uid_map/gid_map: ids [inner, inner+size) are [outer, outer+size) outside."""

    inner: int
    outer: int
    size: int

    def line(self) -> str:
        return f"{self.inner} {self.outer} {self.size}\n"


@dataclass(frozen=True)
class IdMap:
    """A namespace's uid and gid maps (at most 340 lines each, as the kernel allows)."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    def to_host_uid(self, uid: int) -> int | None:
        return _lookup(self.uids, uid)

    def to_host_gid(self, gid: int) -> int | None:
        return _lookup(self.gids, gid)

    @property
    def root(self) -> tuple[int, int]:
        """The host (uid, gid) of the namespace's root; -1 where 0 is unmapped."""
        uid, gid = self.to_host_uid(0), self.to_host_gid(0)
        return (-1 if uid is None else uid), (-1 if gid is None else gid)


def _lookup(ranges: tuple[IdRange, ...], inner: int) -> int | None:
    for r in ranges:
        if r.inner <= inner < r.inner + r.size:
            return r.outer + inner - r.inner
    return None


def write_maps(pid: int, idmap: IdMap) -> None:
    """Write `pid`'s uid_map and gid_map (the caller must be privileged in the parent ns)."""
    # One write() each: the kernel takes the whole map in a single call only.
    for name, ranges in (("uid_map", idmap.uids), ("gid_map", idmap.gids)):
        data = "".join(r.line() for r in ranges).encode()
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def unshare_mapped(idmap: IdMap) -> None:
    """Move the calling (single-threaded) process into a new user namespace with
    `idmap`, as its root; the caller keeps every capability inside it."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    mapper = os.fork()
    if mapper == 0:  # pragma: no cover - runs in the forked mapper
        code = 1
        try:
            os.close(write_fd)
            if os.read(read_fd, 1) == b"1":
                write_maps(parent, idmap)
                code = 0
        finally:
            os._exit(code)
    os.close(read_fd)
    try:
        syscalls.unshare(syscalls.CLONE_NEWUSER)
        os.write(write_fd, b"1")
    finally:
        os.close(write_fd)
        _, status = os.waitpid(mapper, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise OSError("writing the user namespace's uid_map/gid_map failed")
    become_root()


def unshare_user(wait_for_maps: Callable[[], None]) -> None:
    """unshare(CLONE_NEWUSER), let a process outside write the maps (`wait_for_maps`
    returns once it has), then become the namespace's root. The runtime's way: its
    caller writes the maps, as runc's does, which saves the mapper's fork."""
    syscalls.unshare(syscalls.CLONE_NEWUSER)
    wait_for_maps()
    become_root()


def become_root() -> None:
    """uid/gid 0 of the (mapped) user namespace we are in; no supplementary groups."""
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def namespace_fd(idmap: IdMap) -> int:
    """An O_RDONLY fd on a new user namespace with `idmap` (for MOUNT_ATTR_IDMAP)."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # EOF once the parent holds the fd
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("the user namespace helper failed to unshare")
        write_maps(child, idmap)
        return os.open(f"/proc/{child}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)


def proc_maps(pid: int | str = "self") -> IdMap:
    """The maps a process lives under, read back from /proc (tests, inspection)."""

    def read(name: str) -> tuple[IdRange, ...]:
        with open(f"/proc/{pid}/{name}") as f:
            return tuple(IdRange(*map(int, line.split())) for line in f if line.strip())

    return IdMap(read("uid_map"), read("gid_map"))
