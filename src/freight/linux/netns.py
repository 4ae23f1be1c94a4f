"""Named network namespaces, made by a small single-threaded helper process.

The daemon is threaded, and the design forbids namespace changes inside it.
So one helper process, started once by the daemon, does the namespace work:
it is single-threaded, so `unshare(CLONE_NEWNET)` and `setns` move the whole
(tiny) process and are undone right after. Each request costs a socket
round trip and a few syscalls (~0.3 ms), where forking the big daemon per
container costs 5-10 ms.

A namespace is kept alive by a bind mount of its nsfs inode on a file (as
`ip netns add` does), so it outlives the helper and the daemon and can be
joined by path (`linux.namespaces[type=network].path` in the OCI spec).

The helper hands back a NETLINK_ROUTE socket created *inside* the namespace:
a netlink socket stays bound to the namespace it was created in, so the
daemon configures addresses and routes in the namespace with it, from any
thread, without ever entering the namespace.

Protocol (SOCK_SEQPACKET socketpair, one datagram each way)::

    daemon                                   helper
      │── b"C" + path ─────────────────────────►│ unshare(NEWNET); bind-mount
      │                                          │ /proc/self/ns/net on path; lo up;
      │                                          │ socket(AF_NETLINK); setns(back)
      │◄──────────── b"ok" + SCM_RIGHTS(sock) ──│
      │── b"O" + path ─────────────────────────►│ setns(path); socket; setns(back)
      │◄──────────── b"ok" + SCM_RIGHTS(sock) ──│
      │◄──────────── b"er" + message ───────────│ (either, on failure)

The helper exits when its end of the pair is closed (the daemon went away).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from freight.linux import netdev, syscalls

_NETLINK_ROUTE = 0


def _netlink_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)


def _create(path: str, home_fd: int) -> socket.socket:
    with open(path, "x"):
        pass  # the mount point
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            syscalls.mount("/proc/self/ns/net", path, None, syscalls.MS_BIND)
            netdev.set_up("lo")
            return _netlink_socket()
        finally:
            syscalls.setns(home_fd, syscalls.CLONE_NEWNET)
    except BaseException:
        with contextlib.suppress(OSError):
            syscalls.umount(path, syscalls.MNT_DETACH)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def _open(path: str, home_fd: int) -> socket.socket:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
    finally:
        os.close(fd)
    try:
        return _netlink_socket()
    finally:
        syscalls.setns(home_fd, syscalls.CLONE_NEWNET)


def serve(conn: socket.socket) -> None:
    """The helper's loop: one request, one answer, until the daemon hangs up."""
    home_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    while True:
        try:
            request = conn.recv(4096)
        except OSError:
            return
        if not request:
            return
        op, path = request[:1], os.fsdecode(request[1:])
        try:
            sock = _create(path, home_fd) if op == b"C" else _open(path, home_fd)
        except OSError as e:
            conn.send(b"er" + f"{e}".encode())
            continue
        with sock:
            socket.send_fds(conn, [b"ok"], [sock.fileno()])


class NetnsHelper:
    """The daemon's handle on the helper process (thread-safe)."""

    def __init__(self) -> None:
        self._conn: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "freight.linux.netns", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        self._conn = ours

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _ask(self, op: bytes, path: Path) -> socket.socket:
        with self._lock:
            if self._conn is None:
                raise OSError("the network namespace helper is not running")
            self._conn.send(op + os.fsencode(str(path)))
            msg, fds, _, _ = socket.recv_fds(self._conn, 4096, 1)
        if not msg.startswith(b"ok") or not fds:
            raise OSError(f"network namespace {path}: {msg[2:].decode(errors='replace')}")
        return socket.socket(fileno=fds[0])

    def create(self, path: Path) -> socket.socket:
        """A new namespace bound on `path` (lo up); a netlink socket inside it."""
        return self._ask(b"C", path)

    def netlink(self, path: Path) -> socket.socket:
        """A netlink socket inside the existing namespace at `path`."""
        return self._ask(b"O", path)


def remove(path: Path) -> None:
    """Drop the namespace's bind mount and its mount point (missing is fine)."""
    with contextlib.suppress(OSError):
        syscalls.umount(str(path), syscalls.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def is_bound(path: Path) -> bool:
    """Whether `path` is a live namespace mount (an nsfs inode, not the empty file)."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
