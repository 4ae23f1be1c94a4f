"""Layer compression: recognise gzip, zstd, xz, bzip2 or plain tar by magic bytes.

Media types say how a layer is compressed, but Docker ignores them and sniffs
the stream, and so do we: a mislabelled layer still unpacks, and the caller
never has to pass the media type down.
"""

from __future__ import annotations

import bz2
import enum
import gzip
import lzma
from typing import BinaryIO, Protocol

from freight import errors


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Compression(enum.Enum):
    PLAIN = "plain"
    GZIP = "gzip"
    ZSTD = "zstd"
    XZ = "xz"
    BZIP2 = "bzip2"


_MAGIC = (
    (b"\x1f\x8b", Compression.GZIP),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
    (b"\xfd7zXZ\x00", Compression.XZ),
    (b"BZh", Compression.BZIP2),
)
_MAGIC_LEN = max(len(magic) for magic, _ in _MAGIC)


def detect(head: bytes) -> Compression:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.PLAIN


class Prefixed:
    """A reader that replays the sniffed bytes, then continues with the stream."""

    def __init__(self, head: bytes, stream: Readable) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size < 0:
            data, self._head = self._head + self._stream.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


def _read_head(stream: Readable) -> bytes:
    head = b""
    while len(head) < _MAGIC_LEN and (chunk := stream.read(_MAGIC_LEN - len(head))):
        head += chunk
    return head


def decompressed(stream: BinaryIO | Readable) -> tuple[Compression, Readable]:
    """Sniff `stream` and return its compression and a reader of the plain bytes.

    Read errors of the decompressors (EOFError, zlib.error, lzma.LZMAError,
    gzip.BadGzipFile, zstandard.ZstdError) surface from `read`; see
    `DECOMPRESSION_ERRORS`.
    """
    head = _read_head(stream)
    kind = detect(head)
    source = Prefixed(head, stream)
    if kind is Compression.GZIP:
        return kind, gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[arg-type]
    if kind is Compression.XZ:
        return kind, lzma.LZMAFile(source)  # type: ignore[arg-type]
    if kind is Compression.BZIP2:
        return kind, bz2.BZ2File(source)  # type: ignore[arg-type]
    if kind is Compression.ZSTD:
        return kind, _zstd_reader(source)
    return kind, source


def _zstd_reader(source: Readable) -> Readable:
    # Imported lazily: zstd layers are rare and the module is a C extension.
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)


def decompression_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a decompressor raises on truncated or corrupt input."""
    import zlib

    kinds: list[type[BaseException]] = [EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile]
    try:
        import zstandard

        kinds.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(kinds)


class Bounded:
    """The plain bytes of `stream`, refused (InvalidArgument naming `what` and the limit)
    past `max_size` bytes, or — compressed input only, once past `grace` bytes — past
    `max_ratio` times the compressed bytes read: a decompression bomb stops early.
    """

    def __init__(
        self,
        stream: BinaryIO | Readable,
        what: str,
        max_size: int,
        max_ratio: int = 2000,
        grace: int = 256 << 20,
    ) -> None:
        self._counted = Counting(stream)
        kind, self._plain = decompressed(self._counted)
        self._compressed = kind is not Compression.PLAIN
        self._what, self._max_size, self._max_ratio, self._grace = what, max_size, max_ratio, grace
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._plain.read(size)
        self.size += len(data)
        if self.size > self._max_size:
            raise errors.InvalidArgument(
                f"{self._what} is larger than {self._max_size} bytes uncompressed"
            )
        if (
            self._compressed
            and self.size > self._grace
            and self.size > self._counted.count * self._max_ratio
        ):
            raise errors.InvalidArgument(
                f"{self._what} expands more than {self._max_ratio} times "
                f"({self._counted.count} compressed bytes gave {self.size}): "
                "refused as a decompression bomb"
            )
        return data


class Counting:
    """A stream, counting the bytes read from it (the compressed side of a ratio)."""

    def __init__(self, stream: BinaryIO | Readable) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data
