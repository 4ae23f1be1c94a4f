"""A log file that rotates by size, as Docker's json-file and local drivers do.

    <path>          the file being written
    <path>.1        the newest rotated file (<path>.1.gz once compressed)
    <path>.2[.gz]   …
    <path>.N[.gz]   the oldest, N = max-file - 1; the next rotation drops it

A write that would take the file past `max_size` first rotates: every
`<path>.K` moves to `<path>.K+1`, the current file becomes `<path>.1` and a
new empty one is opened. Entries are never split across files, so each file
holds whole lines (a single write larger than `max_size` still goes whole
into a fresh file, as Docker's).

Compression runs in a forked child (the shim stays a single-threaded select
loop and must not stall on zlib): it writes `<path>.1.gz.tmp`, renames it to
`<path>.1.gz`, then unlinks `<path>.1`. A reader therefore always sees one of
the two names. The next rotation waits until the previous compression is
done (`<path>.1` gone) before shifting the names.
"""

from __future__ import annotations

import contextlib
import os
import time

COMPRESS_WAIT_S = 30.0  # a compression still running at the next rotation: wait this long


def rotated_name(path: str, index: int, compressed: bool) -> str:
    return f"{path}.{index}.gz" if compressed else f"{path}.{index}"


class RotatingFile:
    """Append-only writes; rotation when `max_size` (bytes, 0: never) would be passed."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1, compress: bool = False):
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.compress = compress and self.max_file > 1
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size
        self.compressor = 0  # pid of the running compression child, 0: none

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        return os.open(self.path, flags, 0o640)

    def write(self, data: bytes) -> None:
        """One entry (or entries that must stay together)."""
        if self.max_size and self.size and self.size + len(data) > self.max_size:
            self.rotate()
        self._append(data)

    def write_lines(self, data: bytes) -> None:
        """Newline-terminated entries: split so that no file passes `max_size`."""
        if not self.max_size or self.size + len(data) <= self.max_size:
            self._append(data)
            return
        pos = 0
        while pos < len(data):
            room = self.max_size - self.size
            cut = data.rfind(b"\n", pos, pos + room) + 1 if room > 0 else 0
            if cut <= pos:  # not even the next entry fits
                if self.size:
                    self.rotate()
                    continue
                cut = data.find(b"\n", pos) + 1 or len(data)  # alone it is too big: whole
            self._append(data[pos:cut])
            pos = cut

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a regular file takes it all, unless interrupted
            view = view[os.write(self.fd, view) :]
        self.size += len(data)

    def rotate(self) -> None:
        os.close(self.fd)
        if self.max_file == 1:
            # Docker truncates when only one file is kept.
            os.truncate(self.path, 0)
        else:
            self._wait_compression()
            self._shift()
            os.rename(self.path, rotated_name(self.path, 1, False))
            if self.compress:
                self.compressor = compress_in_child(rotated_name(self.path, 1, False))
        self.fd = self._open()
        self.size = 0

    def _shift(self) -> None:
        """.K → .K+1 from the oldest; the one past max-file - 1 is removed."""
        last = self.max_file - 1
        for compressed in (False, True):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(rotated_name(self.path, last, compressed))
        for index in range(last - 1, 0, -1):
            for compressed in (False, True):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(
                        rotated_name(self.path, index, compressed),
                        rotated_name(self.path, index + 1, compressed),
                    )

    def _wait_compression(self) -> None:
        pending = rotated_name(self.path, 1, False)
        if not self.compress or not os.path.exists(pending):
            return
        deadline = time.monotonic() + COMPRESS_WAIT_S
        while os.path.exists(pending) and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        os.close(self.fd)


def compress_in_child(path: str) -> int:
    """Fork a child that gzips `path` to `path`.gz and removes `path`; its pid.

    The shim reaps every child (it is a subreaper), so nobody waits here.
    """
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        gzip_file(path)
        code = 0
    finally:
        os._exit(code)


def gzip_file(path: str) -> None:
    import zlib  # only in the short-lived child: no shim pays for it

    tmp = path + ".gz.tmp"
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 16):
            dst.write(packer.compress(chunk))
        dst.write(packer.flush())
    os.rename(tmp, path + ".gz")
    os.unlink(path)
