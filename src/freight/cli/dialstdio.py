"""The byte pump behind ``freight system dial-stdio``: stdin -> daemon socket,
daemon socket -> stdout, each direction half-closed on its own EOF, so an
``ssh ... freight system dial-stdio`` carries HTTP (and hijacked attach
streams) as if the client were on the daemon's own socket.
"""

from __future__ import annotations

import contextlib
import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    from socket import socket as Socket

_CHUNK = 65536


def proxy(sock: Socket, stdin_fd: int, stdout_fd: int) -> None:
    """Pump until the daemon has closed its side (stdin EOF only half-closes ours)."""
    import socket

    stdin_open = True
    while True:
        watched = [sock.fileno()] + ([stdin_fd] if stdin_open else [])
        ready, _, _ = select.select(watched, [], [])
        if stdin_open and stdin_fd in ready:
            data = os.read(stdin_fd, _CHUNK)
            if data:
                sock.sendall(data)
            else:
                stdin_open = False
                # The daemon may have closed already: the read side ends the loop then.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
        if sock.fileno() in ready:
            try:
                data = sock.recv(_CHUNK)
            except ConnectionError:
                data = b""
            if not data:
                return
            _write_all(stdout_fd, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
