"""Digest parsing, hashing and the streaming helper."""

import hashlib
import io

import pytest

from freight import errors
from freight.oci.digest import Digest, digest_stream

HELLO = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_of_hashes_with_sha256():
    d = Digest.of(b"hello")
    assert d == HELLO
    assert (d.algorithm, d.hex, d.short()) == ("sha256", HELLO[7:], HELLO[7:19])


def test_parse_accepts_sha256_and_sha512():
    assert Digest.parse(HELLO) == HELLO
    sha512 = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert Digest.parse(sha512).algorithm == "sha512"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:abc",
        HELLO.upper(),
        "md5:" + "a" * 32,
        HELLO + "0",
        "a" * 64,
    ],
)
def test_parse_rejects_malformed(bad):
    with pytest.raises(errors.InvalidArgument):
        Digest.parse(bad)


def test_digest_stream_reports_digest_and_size():
    data = b"x" * (3 << 20)
    assert digest_stream(io.BytesIO(data)) == (Digest.of(data), len(data))
