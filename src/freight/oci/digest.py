"""Content digests: the `algorithm:hex` strings that address every blob.

A `Digest` is a `str`, so it can be used as a dict key, compared with a
literal and written into JSON unchanged; parsing checks the grammar once, at
the edge, so code holding a `Digest` never re-validates it.

    >>> d = Digest.of(b"hello")
    >>> d.algorithm, d.hex[:12]
    ('sha256', '2cf24dba5fb0')

Only sha256 is produced; sha512 is accepted when parsing because the OCI spec
registers it and a registry may hand one to us.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from freight import errors

SHA256 = "sha256"

# Registered algorithms and the length of their hex encoding.
_HEX_LENGTHS = {SHA256: 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")

# Large enough to amortise the per-call cost, small enough to stay in L2.
CHUNK_SIZE = 1 << 20


class Digest(str):
    """A validated "algorithm:hex" content digest."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Validate `value` and return it as a Digest (InvalidArgument if malformed)."""
        algorithm, sep, encoded = value.partition(":")
        length = _HEX_LENGTHS.get(algorithm)
        if not sep or length is None:
            raise errors.InvalidArgument(f"invalid digest {value!r}: unsupported algorithm")
        if len(encoded) != length or not _HEX.fullmatch(encoded):
            raise errors.InvalidArgument(
                f"invalid digest {value!r}: expected {length} lowercase hex characters"
            )
        return cls(value)

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """The sha256 digest of `data`."""
        return cls.from_hasher(sha256_hasher(data))

    @classmethod
    def from_hasher(cls, hasher: hashlib._Hash) -> Digest:
        """The digest a finished hashlib object stands for."""
        return cls(f"{hasher.name}:{hasher.hexdigest()}")

    @property
    def algorithm(self) -> str:
        return self.partition(":")[0]

    @property
    def hex(self) -> str:
        return self.partition(":")[2]

    def short(self) -> str:
        """The 12-character id prefix Docker shows in tables."""
        return self.hex[:12]


def sha256_hasher(data: bytes = b"") -> hashlib._Hash:
    """A fresh sha256 hashlib object, for hashing while streaming."""
    return hashlib.sha256(data)


def digest_stream(stream: BinaryIO) -> tuple[Digest, int]:
    """Hash `stream` to its end; return its digest and length in bytes."""
    hasher = sha256_hasher()
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        hasher.update(chunk)
        size += len(chunk)
    return Digest.from_hasher(hasher), size
