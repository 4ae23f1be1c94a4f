"""Reading a container's log (written by its shim), once or following, across rotations.

Two on-disk formats (see services.logdrivers for which driver writes which):

- json: one Docker json-file entry per line,
  ``{"log": "hello\\n", "stream": "stdout", "attrs": {…}, "time": "2026-…Z"}``;
- local: Docker's local format, ``[u32 size][protobuf LogEntry][u32 size]`` per entry.

A rotated log is read oldest first: ``<path>.N[.gz]`` … ``<path>.1[.gz]``, then
``<path>``. Following polls the live file (the writer is another process, and
it must work the same for a container started by an earlier daemon); when
the live file's inode changes, the old handle is drained and the new file is
read from its start, so nothing is lost across a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from freight.services.clock import parse_rfc3339
from freight.services.logdrivers import LogFiles, rotated_files

FOLLOW_POLL_S = 0.02
_U32 = struct.Struct(">I")
MAX_LOCAL_ENTRY = 1 << 20  # a frame size beyond this is corruption, not an entry


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time: str
    attrs: tuple[tuple[str, str], ...] = ()  # sorted (key, value): what --details shows


_SLACK_S = 1e-6


@dataclass(frozen=True)
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    tail: int | None = None  # None: everything
    since: float = 0.0
    until: float = 0.0  # 0: no end
    follow: bool = False

    def wants(self, entry: LogEntry) -> bool:
        if entry.stream == "stdout" and not self.stdout:
            return False
        if entry.stream == "stderr" and not self.stderr:
            return False
        if self.since or self.until:
            t = parse_rfc3339(entry.time)
            # Entry times parse to microseconds and --since/--until arrive as float
            # seconds: a microsecond of slack keeps an entry at exactly either bound
            # in, as dockerd does (a batch of lines written at one instant shares it).
            if self.since and t < self.since - _SLACK_S:
                return False
            if self.until and t > self.until + _SLACK_S:
                return False
        return True


def parse_line(line: bytes) -> LogEntry | None:
    try:
        raw = json.loads(line)
        attrs = raw.get("attrs")
        pairs = tuple(sorted((str(k), str(v)) for k, v in attrs.items())) if attrs else ()
        return LogEntry(
            raw.get("stream", "stdout"), raw["log"].encode(), raw.get("time", ""), pairs
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a torn last line while the shim writes; skipped


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _nano_time(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def parse_local(body: bytes) -> LogEntry:
    """One protobuf LogEntry: source (1), time_nano (2), line (3), partial (4)."""
    source, ns, line, partial, pos = "stdout", 0, b"", False, 0
    while pos < len(body):
        key, pos = _varint(body, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(body, pos)
            if number == 2:
                ns = value
            elif number == 4:
                partial = bool(value)
        elif wire == 2:
            size, pos = _varint(body, pos)
            chunk, pos = body[pos : pos + size], pos + size
            if number == 1:
                source = chunk.decode(errors="replace")
            elif number == 3:
                line = chunk
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
    return LogEntry(source, line if partial else line + b"\n", _nano_time(ns))


class Decoder:
    """Bytes of one format in, whole entries out; an incomplete tail waits for more."""

    def __init__(self, fmt: str) -> None:
        self.local = fmt == "local"
        self.buf = b""

    def feed(self, data: bytes) -> list[LogEntry]:
        buf = self.buf + data if self.buf else data
        if not self.local:
            *lines, self.buf = buf.split(b"\n")
            return [e for e in map(parse_line, lines) if e is not None]
        entries, pos = [], 0
        while len(buf) - pos >= 4:
            (size,) = _U32.unpack_from(buf, pos)
            if size > MAX_LOCAL_ENTRY:
                pos = len(buf)  # corrupt: drop what is there rather than loop on it
                break
            if len(buf) - pos < size + 8:
                break
            with contextlib.suppress(ValueError, IndexError):
                entries.append(parse_local(buf[pos + 4 : pos + 4 + size]))
            pos += size + 8
        self.buf = buf[pos:]
        return entries


def _as_files(target: LogFiles | Path) -> LogFiles:
    return target if isinstance(target, LogFiles) else LogFiles(target, "json")


def _read_whole(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    if path.suffix == ".gz":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return b""  # a compression cut short: the plain file was kept
    return data


@dataclass
class Snapshot:
    """What a read found, and where following goes on: the live file's handle and offset."""

    entries: list[LogEntry]
    handle: BinaryIO | None
    offset: int


def read_snapshot(target: LogFiles | Path, query: LogQuery, keep_open: bool) -> Snapshot:
    """Every wanted entry of every file, oldest first; `keep_open` keeps the live file's handle.

    The live file is opened first, so a rotation meanwhile does not read it
    twice (the rotated copy with its inode is skipped). An open handle keeps
    the entries readable even if the file is removed meanwhile (a --rm
    container is deleted right after it exits).
    """
    files = _as_files(target)
    try:
        handle: BinaryIO | None = open(files.path, "rb")  # noqa: SIM115 - returned
    except FileNotFoundError:
        handle = None
    live_ino = os.fstat(handle.fileno()).st_ino if handle else -1
    entries: list[LogEntry] = []
    for path in rotated_files(files.path)[:-1] if handle else rotated_files(files.path):
        try:
            if path.stat().st_ino == live_ino:
                continue
        except FileNotFoundError:
            continue
        entries += Decoder(files.format).feed(_read_whole(path))
    offset = 0
    if handle is not None:
        decoder = Decoder(files.format)
        entries += decoder.feed(handle.read())
        offset = handle.tell() - len(decoder.buf)
    entries = [e for e in entries if query.wants(e)]
    if query.tail is not None:
        entries = entries[-query.tail :] if query.tail > 0 else []
    if handle is not None and not keep_open:
        handle.close()
        handle = None
    return Snapshot(entries, handle, offset)


def read_entries(target: LogFiles | Path, query: LogQuery) -> tuple[list[LogEntry], int]:
    """The entries wanted from the files as they are now, and the live file's offset."""
    snap = read_snapshot(target, query, keep_open=False)
    return snap.entries, snap.offset


def open_log(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by follow()
    except FileNotFoundError:
        return None


def _rotated_away(path: Path, handle: BinaryIO) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False  # removed (the container is being deleted): keep the handle


async def follow(
    log: BinaryIO | None,
    offset: int,
    query: LogQuery,
    finished: Callable[[], bool],
    target: LogFiles | Path | None = None,
) -> AsyncIterator[LogEntry]:
    """Entries appended after `offset` until `finished()` and the file is drained.

    With `target`, a rotation (the live path now names another file) moves
    the follower to the new file once the old one is drained.
    """
    if log is None:
        return
    files = _as_files(target) if target is not None else None
    decoder = Decoder(files.format if files else "json")
    try:
        log.seek(offset)
        while True:
            done = finished()  # sample before reading: no entry lost at the end
            chunk = await asyncio.to_thread(log.read, 1 << 20)
            for entry in decoder.feed(chunk):
                if query.wants(entry):
                    yield entry
            if chunk:
                continue
            if files is not None and _rotated_away(files.path, log):
                tail = await asyncio.to_thread(log.read)  # written before the rename
                for entry in decoder.feed(tail):
                    if query.wants(entry):
                        yield entry
                fresh = open_log(files.path)
                if fresh is not None:
                    log.close()
                    log, decoder = fresh, Decoder(files.format)
                    continue
            elif files is not None and os.fstat(log.fileno()).st_size < log.tell():
                log.seek(0)  # truncated in place (max-file=1)
                decoder = Decoder(files.format)
                continue
            if done:
                return
            await asyncio.sleep(FOLLOW_POLL_S)
    finally:
        log.close()
