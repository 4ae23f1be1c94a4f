"""Copying a hijacked attach stream to and from the terminal.

Owns: the client end of ``attach``: container output to our stdout/stderr
(demultiplexed unless the container has a TTY), our stdin to the container
when asked (closing the write side at EOF so the process sees it), and raw
terminal mode while a TTY session runs.

One thread, ``select`` over the socket and stdin: starting threads would
cost import time, and there are only two descriptors to watch.
"""

from __future__ import annotations

import os
import select
import sys

from freight.client.demux import STDERR, Demuxer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freight.client.http import Hijacked

_CHUNK = 65536


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def pump(conn: Hijacked, *, tty: bool, send_stdin: bool) -> None:
    """Run until the container closes its output stream."""
    out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    sys.stdout.flush()
    demux = None if tty else Demuxer()
    stdin_fd = sys.stdin.fileno() if send_stdin else -1
    for data in _early(conn):
        _deliver(data, demux, out_fd, err_fd)
    while True:
        watch = [conn.sock] + ([stdin_fd] if stdin_fd >= 0 else [])
        ready, _, _ = select.select(watch, [], [])
        if stdin_fd in ready and not _forward_stdin(stdin_fd, conn):
            stdin_fd = -1
        if conn.sock in ready:
            data = conn.sock.recv(_CHUNK)
            if not data:
                return
            _deliver(data, demux, out_fd, err_fd)


def _early(conn: Hijacked) -> list[bytes]:
    # Bytes read along with the 101 answer belong to the stream.
    data, conn.buffered = conn.buffered, b""
    return [data] if data else []


def _forward_stdin(fd: int, conn: Hijacked) -> bool:
    data = os.read(fd, _CHUNK)
    if not data:
        conn.close_write()
        return False
    try:
        conn.sock.sendall(data)
    except OSError:
        return False  # the container is gone; its output tells the rest
    return True


def _deliver(data: bytes, demux: Demuxer | None, out_fd: int, err_fd: int) -> None:
    if demux is None:
        _write_all(out_fd, data)
        return
    for stream, payload in demux.feed(data):
        _write_all(err_fd if stream >= STDERR else out_fd, payload)


class RawTerminal:
    """Puts stdin in raw mode for a TTY session and restores it afterwards."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stdin.isatty()
        self.saved: list | None = None

    def __enter__(self) -> RawTerminal:
        if self.enabled:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(fd)
            tty.setraw(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)


def terminal_size() -> tuple[int, int] | None:
    """(height, width) of our terminal, or None when stdout is not one."""
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return size.lines, size.columns
