"""Unix sockets: passing fds (SCM_RIGHTS) on raw fds, and paths longer than sun_path.

The runtime's children hand a PTY master back to their caller over a
socketpair they only know as an fd number, so the helpers take fds, not
socket objects. `socket.socket(fileno=fd)` would take ownership of the fd;
they borrow it and `detach()` before returning.

sockaddr_un holds 108 bytes, and state directories under a long data root
(or pytest's tmp dirs) exceed that. Binding or connecting through
/proc/self/fd/<dirfd>/<name> resolves the directory through the fd, so only
that short string has to fit.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

_SUN_PATH_MAX = 107  # 108 bytes including the terminating NUL


def send_fd(sock_fd: int, fd: int, message: bytes = b"fd") -> None:
    """Send `fd` (with a non-empty `message`: a stream needs at least one byte)."""
    sock = socket.socket(fileno=sock_fd)
    try:
        socket.send_fds(sock, [message], [fd])
    finally:
        sock.detach()


def recv_fd(sock_fd: int, bufsize: int = 4096) -> tuple[bytes, int | None]:
    """(message, fd or None); b"" at EOF. Extra fds, which nobody sent us on purpose, are closed."""
    sock = socket.socket(fileno=sock_fd)
    try:
        message, fds, _, _ = socket.recv_fds(sock, bufsize, 4)
    finally:
        sock.detach()
    for extra in fds[1:]:
        os.close(extra)
    return message, fds[0] if fds else None


@contextlib.contextmanager
def _short(path: str) -> Iterator[str]:
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield path
        return
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}"
    finally:
        os.close(dir_fd)


def listen(path: str, mode: int = 0o600, backlog: int = 16) -> socket.socket:
    """A listening stream socket at `path` (replacing a stale one), chmod'ed to `mode`."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with _short(path) as short:
            sock.bind(short)
        os.chmod(path, mode)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def connect(path: str) -> socket.socket:
    """A stream socket connected to `path`, however long it is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with _short(path) as short:
            sock.connect(short)
    except BaseException:
        sock.close()
        raise
    return sock
