"""Copying a hijacked attach/exec stream to and from the terminal.

Owns: the client end of ``attach`` and ``exec``: container output to our
stdout/stderr (raw with a TTY, demultiplexed 8-byte frames without), our
stdin to the container when asked (half-closing the socket at EOF so the
process sees it), the detach keys, the window size (right after start and on
every SIGWINCH) and ``--sig-proxy`` (signals the CLI gets become
``POST /containers/{id}/kill?signal=``).

One thread, one ``select`` over the socket, stdin and a signal wakeup pipe:
starting threads would cost import time, and there are only three
descriptors to watch.

Detach: with a TTY and stdin attached the keys are caught here and never
sent, as docker's escape proxy does; otherwise the daemon catches them and
closes the stream, and we note that they went by so the caller knows the
end of the stream was a detach, not an exit.
"""

from __future__ import annotations

import os
import select
import sys
import time

from freight.cli.signals import PROXIED, SignalPipe, signal_name
from freight.cli.terminal import EscapeMatcher, RawTerminal, terminal_size
from freight.client.demux import STDERR, Demuxer
from freight.client.http import ClientError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freight.client.api import EngineAPI
    from freight.client.http import Hijacked

_CHUNK = 65536
# How a stream ended: the container closed it, the user typed the detach keys
# and we caught them (docker's EscapeError), or the daemon closed it right
# after the keys went by (a daemon-side detach).
EOF, ESCAPED, DETACHED = "eof", "escaped", "detached"
_RESIZE_RETRIES = 10  # docker's initTtySize: 10 more tries, 10 ms * n apart


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Target:
    """What a session is attached to: a container or an exec, and how to reach it."""

    def __init__(self, api: EngineAPI, ident: str, *, is_exec: bool = False) -> None:
        self.api = api
        self.id = ident
        self.is_exec = is_exec

    def resize(self, height: int, width: int) -> None:
        if self.is_exec:
            self.api.exec_resize(self.id, height, width)
        else:
            self.api.container_resize(self.id, height, width)

    def kill(self, signum: int) -> None:
        """--sig-proxy: POST /containers/{id}/kill?signal=NAME (errors ignored, as docker)."""
        try:  # noqa: SIM105 (contextlib costs an import on the hot path)
            self.api.container_kill(self.id, signal=signal_name(signum))
        except ClientError:
            pass  # docker logs these at debug level only


class Interactive:
    """One attached session: signals, raw mode and the copy loop around a stream.

    Use as a context manager from before the attach (so proxied signals are
    caught from the start, as docker does right after create) to after the
    exit status is known.
    """

    def __init__(
        self,
        target: Target,
        *,
        tty: bool,
        stdin: bool,
        detach_keys: bytes,
        sig_proxy: bool = False,
        monitor_size: bool = False,
    ) -> None:
        self.target = target
        self.tty = tty
        self.stdin = stdin
        self.detach_keys = detach_keys
        self.sig_proxy = sig_proxy
        self.monitor_size = monitor_size
        self.signals = SignalPipe()
        self._retry: tuple[int, float] | None = None  # (attempt, when) of a resize retry
        if sig_proxy:
            self.signals.watch(*PROXIED)

    def __enter__(self) -> Interactive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.signals.close()

    # ---------------------------------------------------------- window size
    def start_resizing(self, bump: bool = False) -> None:
        """Send our size now and on every SIGWINCH (docker's MonitorTtySize).

        A failed first resize is retried from the copy loop (10 ms, 20 ms, …
        apart, ten times) without holding up the stream, then reported as
        docker does. ``bump`` first sends one row and column more, as
        ``docker attach`` does, so a re-attached shell redraws its prompt.
        """
        if not self.monitor_size:
            return
        import _signal as signal

        self.signals.watch(signal.SIGWINCH)
        size = terminal_size()
        if size is None:
            return
        if bump:
            self._try_resize(size[0] + 1, size[1] + 1)
        if not self._try_resize(*size):
            self._retry = (0, time.monotonic() + 0.01)

    def timer_timeout(self) -> float | None:
        """How long the copy loop may block before a resize retry is due."""
        if self._retry is None:
            return None
        return max(0.0, self._retry[1] - time.monotonic())

    def on_timer(self) -> None:
        if self._retry is None or time.monotonic() < self._retry[1]:
            return
        attempt = self._retry[0] + 1
        size = terminal_size()
        if size is not None and self._try_resize(*size):
            self._retry = None
        elif attempt < _RESIZE_RETRIES:
            self._retry = (attempt, time.monotonic() + (attempt + 1) * 0.01)
        else:
            self._retry = None
            sys.stderr.write("failed to resize tty, using default size\n")
            sys.stderr.flush()

    def _try_resize(self, height: int, width: int) -> bool:
        try:
            self.target.resize(height, width)
        except ClientError:
            return False
        return True

    def on_signals(self) -> None:
        import _signal as signal

        for signum in self.signals.drain():
            if self.sig_proxy and signum in PROXIED:
                self.target.kill(signum)
            if signum == signal.SIGWINCH and self.monitor_size:
                size = terminal_size()
                if size is not None:
                    self._try_resize(*size)

    # ---------------------------------------------------------- streaming
    def stream(self, conn: Hijacked) -> str:
        """Copy until the stream ends: EOF, ESCAPED or DETACHED."""
        with RawTerminal(self.tty and self.stdin):
            return _Pump(self, conn).run()

    def wait_readable(self, sock: object) -> None:
        """Block until ``sock`` is readable, still proxying signals meanwhile."""
        while True:
            ready, _, _ = select.select([sock, self.signals], [], [])
            if self.signals in ready:
                self.on_signals()
            if sock in ready:
                return


class _Pump:
    """The select loop of one session."""

    def __init__(self, session: Interactive, conn: Hijacked) -> None:
        self.session = session
        self.conn = conn
        self.out_fd, self.err_fd = sys.stdout.fileno(), sys.stderr.fileno()
        self.demux = None if session.tty else Demuxer()
        self.stdin_fd = sys.stdin.fileno() if session.stdin else -1
        keys = session.detach_keys
        # With a TTY the keys are ours to catch; otherwise we only watch them go by.
        self.escape = EscapeMatcher(keys) if session.tty and session.stdin else None
        self.watcher = None if self.escape else EscapeMatcher(keys)
        self.keys_sent = False

    def run(self) -> str:
        sys.stdout.flush()
        sys.stderr.flush()
        if self.conn.buffered:  # bytes that came with the 101 belong to the stream
            data, self.conn.buffered = self.conn.buffered, b""
            self._deliver(data)
        while True:
            watch = [self.conn, self.session.signals]
            if self.stdin_fd >= 0:
                watch.append(self.stdin_fd)
            ready, _, _ = select.select(watch, [], [], self.session.timer_timeout())
            self.session.on_timer()
            if self.session.signals in ready:
                self.session.on_signals()
            if self.stdin_fd in ready and self._forward_stdin():
                return ESCAPED
            if self.conn in ready:
                data = self.conn.recv(_CHUNK)
                if not data:
                    return DETACHED if self.keys_sent else EOF
                self._deliver(data)

    def _forward_stdin(self) -> bool:
        """Send what stdin has; True when the user typed the detach keys."""
        data = os.read(self.stdin_fd, _CHUNK)
        if not data:
            self.stdin_fd = -1
            self.conn.close_write()
            return False
        detached = False
        if self.escape is not None:
            data, detached = self.escape.feed(data)
        elif self.watcher is not None and self.watcher.feed(data)[1]:
            self.keys_sent = True
        if data:
            try:
                self.conn.sendall(data)
            except OSError:
                self.stdin_fd = -1  # the process is gone; its output tells the rest
        return detached

    def _deliver(self, data: bytes) -> None:
        if self.demux is None:
            _write_all(self.out_fd, data)
            return
        for stream, payload in self.demux.feed(data):
            _write_all(self.err_fd if stream >= STDERR else self.out_fd, payload)
