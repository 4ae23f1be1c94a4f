"""The shim's stdio relay: one select() loop between the process, its log and attach clients.

    process stdout/stderr pipes ─┐                 ┌─▶ the log driver (containers only)
    (or the PTY master)          ├─▶ relay loop ───┤
                                 │                 └─▶ every client of attach.sock
    stdin pipe (or PTY master) ◀─┘◀── STDIN / CLOSE_STDIN / RESIZE frames from clients

Frames are `freight.shimapi.frames` (docs/CONTRACTS.md, "The shim's stdio
socket"). The loop never blocks on anyone but the process:

- every fd is non-blocking; a client that cannot take a frame keeps the rest
  in its own buffer and is dropped once that passes CLIENT_BUFFER, so a slow
  or stuck client never stalls the container (it still has its log);
- except the *primary* client, the one an exec shim waited for with
  `--wait-attach`: its output exists nowhere else, so while its buffer is
  over the limit the relay stops reading the process's output, and the
  process blocks on a full pipe, as it would writing to a slow terminal;
- stdin the process does not read is buffered up to STDIN_BUFFER; beyond
  that the relay stops reading from clients (their socket buffers fill and
  the daemon's writes wait), so memory stays bounded both ways.

A client that half-closes (shutdown(SHUT_WR)) keeps receiving output. Buffers
are only allocated while something is pending: an idle shim holds none.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
from collections.abc import Callable

from freight.linux import pty
from freight.shim.jsonlog import LineSplitter
from freight.shim.logwriters import LogWriter
from freight.shimapi import frames

READ_SIZE = 1 << 16
CLIENT_BUFFER = 1 << 18  # per client, then it is dropped (or, if primary, output pauses)
STDIN_BUFFER = 1 << 16  # then clients are not read until the process takes some
DRAIN_GRACE = 2.0  # seconds to wait for output EOF after the process exited
EXIT_FLUSH = 5.0  # seconds clients get to take their last frames
EOT = b"\x04"  # ^D: end of input on a terminal in canonical mode


class Client:
    __slots__ = ("sock", "decoder", "pending", "primary", "reading")

    def __init__(self, sock: socket.socket, primary: bool) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.decoder = frames.Decoder()
        self.pending = b""
        self.primary = primary
        self.reading = True

    def send(self, data: bytes) -> None:
        """Send now what the socket takes, keep the rest; OSError if the peer is gone."""
        if self.pending:
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        self.pending = data[sent:]

    def flush(self) -> None:
        with contextlib.suppress(BlockingIOError):
            sent = self.sock.send(self.pending)
            self.pending = self.pending[sent:]


class Relay:
    """Owns the process's stdio fds, the attach listener and its clients."""

    def __init__(
        self, listener: socket.socket, socket_path: str, wake_fd: int, log: LogWriter | None
    ) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.socket_path = socket_path
        self.wake_fd = wake_fd
        self.log = log
        self.clients: dict[int, Client] = {}
        self.sources: dict[int, tuple[int, LineSplitter | None]] = {}
        self.stdin_fd = -1  # where STDIN frames go: the pipe, or the master; -1 ignores them
        self.stdin_pending = b""
        self.stdin_closing = False
        self.tty_fd = -1

    # --- setting up -------------------------------------------------------

    def wait_for_client(self, timeout: float, watch_fd: int) -> bool:
        """Block until the first client connects (it becomes primary).

        False on timeout or when `watch_fd` (the ready pipe) reports an error:
        its reader, the daemon, is gone and nobody will ever attach.
        """
        poller = select.poll()
        poller.register(self.listener.fileno(), select.POLLIN)
        poller.register(watch_fd, 0)  # POLLERR/POLLHUP are always reported
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                if fd == watch_fd:
                    return False
                if self._accept(primary=True):
                    return True
        return False

    def add_client(self, sock: socket.socket) -> None:
        """A client connected before the relay began (``--client-fd``): the primary one."""
        self.clients[sock.fileno()] = Client(sock, primary=True)

    def add_output(self, fd: int, kind: int, stream: str) -> None:
        os.set_blocking(fd, False)
        splitter = LineSplitter(stream, self.log) if self.log is not None else None
        self.sources[fd] = (kind, splitter)

    def set_stdin(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.stdin_fd = fd

    def set_terminal(self, master: int, accept_stdin: bool) -> None:
        """The PTY master is the only output, and the stdin when the process has one.

        Unlike pipe output, its partial lines go to the log as soon as they
        are read (as partial entries), so prompts show up.
        """
        self.add_output(master, frames.STDOUT, "stdout")
        self.tty_fd = master
        if accept_stdin:
            self.stdin_fd = master

    # --- the loop ---------------------------------------------------------

    def run(self, exited: Callable[[], bool]) -> None:
        """Relay until every output closed, or DRAIN_GRACE after `exited()` turned true.

        `exited` is the reaper's check; the wake fd (SIGCHLD) makes select return.
        """
        deadline: float | None = None
        while self.sources:
            if deadline is None and exited():
                deadline = time.monotonic() + DRAIN_GRACE
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break  # a daemonised grandchild still holds the output: stop waiting
            readable, writable = self._select(timeout)
            if self.listener.fileno() in readable:
                while self._accept(primary=False):
                    pass
            for fd in writable:
                self._writable(fd)
            for fd in readable:
                self._readable(fd)
        for _, splitter in self.sources.values():  # what a lingering writer left unterminated
            if splitter is not None:
                splitter.close()

    def _select(self, timeout: float | None) -> tuple[list[int], list[int]]:
        rlist = [self.listener.fileno(), self.wake_fd]
        if not any(c.primary and len(c.pending) > CLIENT_BUFFER for c in self.clients.values()):
            rlist += self.sources
        if len(self.stdin_pending) <= STDIN_BUFFER:
            rlist += [fd for fd, c in self.clients.items() if c.reading]
        wlist = [fd for fd, c in self.clients.items() if c.pending]
        if self.stdin_pending and self.stdin_fd >= 0:
            wlist.append(self.stdin_fd)
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        return readable, writable

    def _readable(self, fd: int) -> None:
        if fd == self.wake_fd:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 512)
        elif fd in self.sources:
            self._read_output(fd)
        elif fd in self.clients:
            self._read_client(self.clients[fd])

    def _writable(self, fd: int) -> None:
        if fd == self.stdin_fd:
            self._flush_stdin()
        client = self.clients.get(fd)
        if client is not None:
            try:
                client.flush()
            except OSError:
                self._drop(client)

    def _accept(self, primary: bool) -> bool:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return False
        self.clients[sock.fileno()] = Client(sock, primary)
        return True

    # --- output -----------------------------------------------------------

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: every slave fd of the PTY is closed
                raise
            data = b""
        kind, splitter = self.sources[fd]
        if not data:
            del self.sources[fd]
            if splitter is not None:
                splitter.close()
            if fd != self.tty_fd:  # the master still takes RESIZE and stdin until the end
                os.close(fd)
            return
        if splitter is not None:
            splitter.feed(data)
            if fd == self.tty_fd:
                # A terminal's output is often a prompt without a newline, and the
                # daemon's output-attach follows the log: write it out now.
                splitter.close()
        self.broadcast(frames.encode(kind, data))

    def broadcast(self, frame: bytes) -> None:
        for client in list(self.clients.values()):
            try:
                client.send(frame)
            except OSError:
                self._drop(client)
                continue
            if len(client.pending) > CLIENT_BUFFER and not client.primary:
                self._drop(client)  # too slow: it would stall everyone

    def _drop(self, client: Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        client.sock.close()

    # --- input ------------------------------------------------------------

    def _read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self._drop(client)
            return
        if not data:
            client.reading = False  # half-closed: it may still want output
            return
        try:
            received = client.decoder.feed(data)
        except ValueError:
            self._drop(client)  # not speaking the protocol
            return
        for kind, payload in received:
            self._command(kind, payload)

    def _command(self, kind: int, payload: bytes) -> None:
        if kind == frames.STDIN and self.stdin_fd >= 0 and not self.stdin_closing:
            self.stdin_pending += payload
            self._flush_stdin()
        elif kind == frames.CLOSE_STDIN and self.stdin_fd >= 0:
            self.stdin_closing = True
            self._flush_stdin()
        elif kind == frames.RESIZE and self.tty_fd >= 0 and len(payload) >= 4:
            height, width = frames.decode_resize(payload)
            with contextlib.suppress(OSError):
                pty.set_size(self.tty_fd, height, width)

    def _flush_stdin(self) -> None:
        try:
            while self.stdin_pending:
                written = os.write(self.stdin_fd, self.stdin_pending)
                self.stdin_pending = self.stdin_pending[written:]
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the process closed its stdin (or exited)
            self.stdin_pending = b""
            self._close_stdin()
            return
        if self.stdin_closing:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        if self.stdin_fd == self.tty_fd:
            with contextlib.suppress(OSError):
                os.write(self.tty_fd, EOT)
        else:
            os.close(self.stdin_fd)
        self.stdin_fd = -1

    # --- the end ----------------------------------------------------------

    def finish(self, exit_code: int | None) -> None:
        """Stop listening, send EXIT (unless None), give clients EXIT_FLUSH to read, close all.

        Connections still in the listen backlog are accepted first, so a
        client that connected just before the end also learns the exit code.
        """
        while self._accept(primary=False):
            pass
        self._close_listener()
        if exit_code is not None:
            self.broadcast(frames.encode(frames.EXIT, str(exit_code).encode()))
        deadline = time.monotonic() + EXIT_FLUSH
        while (waiting := [c for c in self.clients.values() if c.pending]) and (
            left := deadline - time.monotonic()
        ) > 0:
            for fd in select.select([], [c.sock for c in waiting], [], left)[1]:
                self._writable(fd.fileno())
        for client in list(self.clients.values()):
            self._drop(client)
        self._close_fds()

    def _close_listener(self) -> None:
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)

    def _close_fds(self) -> None:
        for fd, (_, splitter) in self.sources.items():
            if splitter is not None:
                splitter.close()
            if fd != self.tty_fd:
                os.close(fd)
        self.sources.clear()
        if self.stdin_fd >= 0 and self.stdin_fd != self.tty_fd:
            os.close(self.stdin_fd)
        self.stdin_fd = -1
        if self.tty_fd >= 0:
            os.close(self.tty_fd)
            self.tty_fd = -1
