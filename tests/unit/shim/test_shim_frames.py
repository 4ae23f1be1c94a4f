"""The attach.sock frame codec (freight.shimapi.frames) as the shim uses it."""

from __future__ import annotations

import pytest

from freight.shimapi import frames


def test_encode_header_is_type_and_big_endian_length() -> None:
    assert frames.encode(frames.STDOUT, b"hi") == b"\x01\x00\x00\x00\x02hi"
    assert frames.encode(frames.CLOSE_STDIN) == b"\x01\x00\x00\x00\x00"
    assert frames.encode_resize(24, 80) == b"\x02\x00\x00\x00\x04\x00\x18\x00\x50"


def test_decoder_reassembles_frames_split_anywhere() -> None:
    stream = b"".join(
        [
            frames.encode(frames.STDIN, b"hello"),
            frames.encode(frames.CLOSE_STDIN),
            frames.encode_resize(40, 120),
        ]
    )
    for step in (1, 2, 3, 7, len(stream)):
        decoder = frames.Decoder()
        got = []
        for i in range(0, len(stream), step):
            got += decoder.feed(stream[i : i + step])
        assert got == [
            (frames.STDIN, b"hello"),
            (frames.CLOSE_STDIN, b""),
            (frames.RESIZE, b"\x00\x28\x00\x78"),
        ]
    assert frames.decode_resize(got[2][1]) == (40, 120)


def test_decoder_refuses_oversized_frames() -> None:
    with pytest.raises(ValueError):
        frames.Decoder().feed(b"\x00" + (frames.MAX_PAYLOAD + 1).to_bytes(4, "big"))
