"""Docker's json-file log format, written by the shim.

One JSON object per line, keys in Docker's order::

    {"log":"hello\n","stream":"stdout","time":"2026-11-29T10:00:00.123456789Z"}

Output is split like Docker's log copier: one entry per line, newline
included; a line longer than 16 KiB is cut into 16 KiB partial entries
without a newline; whatever is left when the stream closes is a final
entry without a newline. Invalid UTF-8 becomes U+FFFD, as Go's encoder does.
"""

from __future__ import annotations

import time
from json.encoder import encode_basestring  # the C encoder (ensure_ascii=False)
from typing import TYPE_CHECKING

from freight.shim.logrotate import RotatingFile

if TYPE_CHECKING:
    from freight.shim.logwriters import LogWriter

MAX_ENTRY = 16 * 1024
# Characters the JSON escaper leaves alone, to stand for a block's newlines while it is
# escaped: DEL keeps an ASCII text one byte per character; U+FFFF is a noncharacter.
_SENTINELS = ("\x7f", "\uffff")


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC time with nine fractional digits and a Z, Docker's timestamp shape."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class JsonLog:
    """Appends entries to the log file: all the lines of one read in one write(2).

    This is the shim's hot path (every byte a container prints passes here),
    so entries are built with the C string encoder rather than json.dumps per
    line, and lines read together share one timestamp (they arrived together).
    """

    def __init__(self, file: RotatingFile | str, attrs: dict[str, str] | None = None) -> None:
        self.file = RotatingFile(file) if isinstance(file, str) else file
        # --log-opt labels/env/tag: Docker's "attrs", between "stream" and "time".
        self.attrs = (
            ',"attrs":{'
            + ",".join(f"{encode_basestring(k)}:{encode_basestring(v)}" for k, v in attrs.items())
            + "}"
            if attrs
            else ""
        )

    def write(self, stream: str, data: bytes) -> None:
        self.write_lines(stream, [data])

    def write_lines(self, stream: str, lines: list[bytes]) -> None:
        tail = f',"stream":"{stream}"{self.attrs},"time":"{rfc3339_nano()}"}}\n'
        text = "".join(
            [
                '{"log":' + encode_basestring(line.decode("utf-8", "replace")) + tail
                for line in lines
            ]
        )
        self._write(text)

    def write_text_block(self, stream: str, block: bytes) -> None:
        """Whole lines (`block` ends with a newline, no line over MAX_ENTRY), one entry each.

        Encoded in bulk: the newlines become a sentinel, the block is escaped
        in one call (JSON escaping is per character), and each sentinel then
        becomes the end of one entry and the start of the next. A block that
        holds the sentinel itself goes line by line.
        """
        text = block.decode("utf-8", "replace")
        sentinel = next((s for s in _SENTINELS if s not in text), None)
        if sentinel is None:
            self.write_lines(stream, [line + b"\n" for line in block[:-1].split(b"\n")])
            return
        tail = f',"stream":"{stream}"{self.attrs},"time":"{rfc3339_nano()}"}}\n'
        escaped = encode_basestring(text.replace("\n", sentinel))[1:-1]
        entries = escaped.replace(sentinel, '\\n"' + tail + '{"log":"')
        self._write('{"log":"' + entries[: -len('{"log":"')])

    def _write(self, text: str) -> None:
        self.file.write_lines(text.encode())

    def close(self) -> None:
        self.file.close()


class LineSplitter:
    """Buffers one stream's bytes and hands complete (or 16 KiB partial) lines to the log."""

    def __init__(self, stream: str, log: LogWriter) -> None:
        self.stream = stream
        self.log = log
        self.buf = b""

    def feed(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        last = buf.rfind(b"\n") + 1
        if last and max(map(len, buf[: last - 1].split(b"\n"))) < MAX_ENTRY:
            # The common case: whole lines, none too long, one bulk write.
            self.log.write_text_block(self.stream, buf[:last])
            self.buf = buf[last:]
            if len(self.buf) < MAX_ENTRY:
                return
            buf = self.buf
        self.buf = self._cut(buf)

    def _cut(self, buf: bytes) -> bytes:
        """Entries by Docker's rule, one by one; returns the unterminated rest."""
        lines, start, size = [], 0, len(buf)
        while True:
            end = buf.find(b"\n", start, start + MAX_ENTRY)
            if end >= 0:
                cut = end + 1
            elif size - start >= MAX_ENTRY:
                cut = start + MAX_ENTRY
            else:
                break
            lines.append(buf[start:cut])
            start = cut
        if lines:
            self.log.write_lines(self.stream, lines)
        return buf[start:]

    def close(self) -> None:
        if self.buf:
            self.log.write(self.stream, self.buf)
            self.buf = b""
