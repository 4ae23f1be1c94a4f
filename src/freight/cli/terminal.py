"""The local terminal during an interactive session.

Owns: docker's ``CheckTty`` rule (``-t`` with stdin attached needs stdin to be
a terminal), raw mode (moby/term's ``MakeRaw``, i.e. cfmakeraw, on stdin only)
and putting the terminal back — on normal exit *and* when SIGTERM or SIGHUP
kill the CLI: a handler restores the saved modes, then re-raises the signal
with its default action so the exit status still says "killed by SIGTERM" —
the window size, and docker's detach keys (``--detach-keys``, ``ctrl-p,ctrl-q``).

``termios`` is imported directly (not ``tty``, which only wraps it) and only
when a TTY session actually starts.
"""

from __future__ import annotations

import _signal as signal  # not `signal`: its enums cost ~8 ms of every command
import os
import sys

from freight.cli.session import CliError

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
_CTRL_SPECIALS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def check_tty(attach_stdin: bool, tty: bool) -> None:
    """docker's In().CheckTty: refuse ``-it`` when stdin is not a terminal (exit 1)."""
    if tty and attach_stdin and not os.isatty(sys.stdin.fileno()):
        raise CliError("the input device is not a TTY", 1)


def terminal_size() -> tuple[int, int] | None:
    """(height, width) of our terminal (docker asks stdout), or None."""
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except (OSError, ValueError):
        return None
    if not size.lines and not size.columns:
        return None
    return size.lines, size.columns


def parse_detach_keys(text: str | None) -> bytes:
    """moby/term's ToBytes: "ctrl-p,ctrl-q" -> b"\\x10\\x11"; invalid -> the default.

    docker's client warns and falls back to the default for a bad sequence;
    the daemon refuses it, so the user still hears about it.
    """
    if not text:
        return DEFAULT_DETACH_KEYS
    keys = bytearray()
    for key in text.split(","):
        code = _key_code(key.strip())
        if code is None:
            return DEFAULT_DETACH_KEYS
        keys.append(code)
    return bytes(keys)


def _key_code(key: str) -> int | None:
    if len(key) == 1:
        return ord(key) if ord(key) < 128 else None
    if not key.startswith("ctrl-") or len(key) != 6:
        return None
    c = key[5]
    if "a" <= c <= "z":
        return ord(c) - ord("a") + 1
    return _CTRL_SPECIALS.get(c)


class EscapeMatcher:
    """Finds the detach sequence in keyboard input, as docker's escape proxy does.

    ``feed`` returns (bytes to forward, detached). A partial match is held
    back until the next byte decides: the full sequence is swallowed and
    ends the session, anything else sends the held bytes on.
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.pos = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    self.pos = 0
                    return bytes(out), True
                continue
            out += self.keys[: self.pos]
            self.pos = 0
            if byte == self.keys[0]:
                self.pos = 1
            else:
                out.append(byte)
        return bytes(out), False


class RawTerminal:
    """Stdin in raw mode for the session; restored on exit, SIGTERM and SIGHUP."""

    FATAL = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self, enabled: bool) -> None:
        self.fd = sys.stdin.fileno() if enabled else -1
        self.enabled = enabled and os.isatty(self.fd)
        self.saved: list | None = None
        self.handlers: dict[int, object] = {}

    def __enter__(self) -> RawTerminal:
        if not self.enabled:
            return self
        import termios

        self.saved = termios.tcgetattr(self.fd)
        for sig in self.FATAL:
            if signal.getsignal(sig) is signal.SIG_DFL:
                self.handlers[sig] = signal.signal(sig, self._restore_and_die)
        termios.tcsetattr(self.fd, termios.TCSANOW, raw_mode(self.saved))
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
        for sig, handler in self.handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self.handlers.clear()

    def restore(self) -> None:
        """Put the saved modes back (idempotent)."""
        if self.saved is None:
            return
        import termios

        saved, self.saved = self.saved, None
        try:  # noqa: SIM105 (contextlib costs an import on the hot path)
            termios.tcsetattr(self.fd, termios.TCSANOW, saved)
        except termios.error:
            pass  # the terminal went away (SIGHUP): nothing left to restore

    def _restore_and_die(self, signum: int, frame: object) -> None:
        self.restore()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def raw_mode(mode: list) -> list:
    """cfmakeraw on a tcgetattr list (moby/term MakeRaw does the same)."""
    import termios as t

    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = mode
    iflag &= ~(t.IGNBRK | t.BRKINT | t.PARMRK | t.ISTRIP | t.INLCR | t.IGNCR | t.ICRNL | t.IXON)
    oflag &= ~t.OPOST
    lflag &= ~(t.ECHO | t.ECHONL | t.ICANON | t.ISIG | t.IEXTEN)
    cflag = (cflag & ~(t.CSIZE | t.PARENB)) | t.CS8
    cc = list(cc)
    cc[t.VMIN], cc[t.VTIME] = 1, 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]
