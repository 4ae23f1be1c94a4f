"""Signals the CLI acts on while a session runs: SIGWINCH and the proxied ones.

Owns: turning asynchronous signals into events a ``select`` loop reads, and
the set of signals ``--sig-proxy`` forwards with their names for
``POST /containers/{id}/kill?signal=``.

Why a wakeup pipe: ``signal.set_wakeup_fd`` makes the C-level handler write
the signal number to a non-blocking pipe, so the Python handlers are no-ops
and the work (an HTTP request) happens in the loop, never re-entrantly in
the middle of a write to the terminal — and without a thread.
"""

from __future__ import annotations

# The C module: `signal` builds its enums at import (enum costs ~8 ms of every command).
import _signal as signal
import os

# What docker's ForwardAllSignals passes on: it catches every signal and skips
# only SIGCHLD, SIGPIPE and Go's SIGURG — SIGWINCH included (docker 28 posts
# kill?signal=WINCH next to the resize; checked against the real CLI).
PROXIED = tuple(
    getattr(signal, name)
    for name in (
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM",
        "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCONT", "SIGVTALRM", "SIGPROF", "SIGIO",
        "SIGWINCH",
    )
)  # fmt: skip


def signal_name(signum: int) -> str:
    """docker's name for the kill API: "INT", "TERM", …"""
    return _names().get(signum) or str(signum)


def _names() -> dict[int, str]:
    """Number → name; of aliases (IOT/ABRT, POLL/IO, CLD/CHLD) the first in order, as
    `signal.Signals` picks them."""
    names: dict[int, str] = {}
    for name in sorted(n for n in dir(signal) if n.startswith("SIG") and "_" not in n):
        names.setdefault(getattr(signal, name), name.removeprefix("SIG"))
    return names


def _ignore(signum: int, frame: object) -> None:
    """The Python-level handler: the wakeup pipe already carries the signal."""


class SignalPipe:
    """Signals as bytes on a pipe: ``watch`` them, select on ``fileno``, ``drain``."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous_fd = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        self.saved: dict[int, object] = {}

    def watch(self, *signums: int) -> None:
        for signum in signums:
            if signum not in self.saved:
                self.saved[signum] = signal.signal(signum, _ignore)

    def fileno(self) -> int:
        return self.r

    def drain(self) -> list[int]:
        """The signals received since the last drain, in order."""
        try:
            return list(os.read(self.r, 4096))
        except BlockingIOError:
            return []

    def close(self) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self.saved.clear()
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.r)
        os.close(self.w)

    def __enter__(self) -> SignalPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
