"""Docker's json-file log format, written by the shim.

One JSON object per line, keys in Docker's order::

    {"log":"hello\n","stream":"stdout","time":"2026-11-29T10:00:00.123456789Z"}

Output is split like Docker's log copier: one entry per line, newline
included; a line longer than 16 KiB is cut into 16 KiB partial entries
without a newline; whatever is left when the stream closes is a final
entry without a newline. Invalid UTF-8 becomes U+FFFD, as Go's encoder does.
"""

from __future__ import annotations

import json
import os
import time

MAX_ENTRY = 16 * 1024


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC time with nine fractional digits and a Z, Docker's timestamp shape."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class JsonLog:
    """Appends entries to the log file; one write(2) per entry keeps lines whole."""

    def __init__(self, path: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self.fd = os.open(path, flags, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": rfc3339_nano()}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self.fd, line.encode())

    def close(self) -> None:
        os.close(self.fd)


class LineSplitter:
    """Buffers one stream's bytes and hands complete (or 16 KiB partial) lines to the log."""

    def __init__(self, stream: str, log: JsonLog) -> None:
        self.stream = stream
        self.log = log
        self.buf = b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\n", 0, MAX_ENTRY)
            if end >= 0:
                cut = end + 1
            elif len(self.buf) >= MAX_ENTRY:
                cut = MAX_ENTRY
            else:
                return
            self.log.write(self.stream, self.buf[:cut])
            self.buf = self.buf[cut:]

    def close(self) -> None:
        if self.buf:
            self.log.write(self.stream, self.buf)
            self.buf = b""
