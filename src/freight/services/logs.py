"""Reading a container's json-file log (written by its shim), once or following.

Each line of the file is Docker's json-file entry:
`{"log": "hello\\n", "stream": "stdout", "time": "2026-…Z"}`. Following polls
the file: the writer is another process (the shim), and it must work the same
for a container that was started by an earlier daemon.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from freight.services.clock import parse_rfc3339

FOLLOW_POLL_S = 0.02


@dataclass(frozen=True)
class LogEntry:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time: str


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
            if self.since and t < self.since:
                return False
            if self.until and t > self.until:
                return False
        return True


def parse_line(line: bytes) -> LogEntry | None:
    try:
        raw = json.loads(line)
        return LogEntry(raw.get("stream", "stdout"), raw["log"].encode(), raw.get("time", ""))
    except (ValueError, KeyError, TypeError):
        return None  # a torn last line while the shim writes; skipped


def read_entries(path: Path, query: LogQuery) -> tuple[list[LogEntry], int]:
    """The entries wanted from the file as it is now, and the offset read up to."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    entries = [e for e in map(parse_line, data[:end].splitlines()) if e and query.wants(e)]
    if query.tail is not None:
        entries = entries[-query.tail :] if query.tail > 0 else []
    return entries, end


def open_log(path: Path) -> BinaryIO | None:
    """An open handle keeps the entries readable even if the file is removed
    meanwhile (a --rm container is deleted right after it exits)."""
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by follow()
    except FileNotFoundError:
        return None


async def follow(
    log: BinaryIO | None,
    offset: int,
    query: LogQuery,
    finished: Callable[[], bool],
) -> AsyncIterator[LogEntry]:
    """Entries appended after `offset` until `finished()` and the file is drained."""
    if log is None:
        return
    buf = b""
    try:
        log.seek(offset)
        while True:
            done = finished()  # sample before reading: no entry lost at the end
            chunk = await asyncio.to_thread(log.read, 1 << 20)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                entry = parse_line(line)
                if entry and query.wants(entry):
                    yield entry
            if done and not chunk:
                return
            if not chunk:
                await asyncio.sleep(FOLLOW_POLL_S)
    finally:
        log.close()
