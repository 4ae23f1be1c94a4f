"""Wire shapes: API versions, stdcopy framing, JSON progress messages."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight.dockerapi import jsonmessage, stdcopy, versions


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.45", "1.45", 0),
        ("1.9", "1.24", -1),
        ("1.24", "1.9", 1),
        ("1.45", "1.45.0", 0),
        ("2.0", "1.99", 1),
        ("1.x", "1.0", 0),
    ],
)
def test_compare(a: str, b: str, expected: int) -> None:
    assert versions.compare(a, b) == expected


def test_supported_range() -> None:
    assert versions.is_supported("1.24") and versions.is_supported("1.45")
    assert not versions.is_supported("1.23") and not versions.is_supported("1.46")
    assert versions.less_than("1.23", versions.MIN_API_VERSION)
    assert versions.greater_or_equal("1.45", "1.44")


def test_frame_header_layout() -> None:
    assert (
        stdcopy.encode_frame(stdcopy.StreamId.STDERR, b"abc")
        == b"\x02\x00\x00\x00\x00\x00\x00\x03abc"
    )
    assert (
        stdcopy.encode_header(stdcopy.StreamId.STDOUT, 0x01020304)
        == b"\x01\x00\x00\x00\x01\x02\x03\x04"
    )


frames = st.lists(
    st.tuples(st.sampled_from(list(stdcopy.StreamId)), st.binary(max_size=300)), max_size=10
)


@given(frames, st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_round_trip_with_arbitrary_splits(
    items: list[tuple[stdcopy.StreamId, bytes]], cuts: list[int]
) -> None:
    wire = b"".join(stdcopy.encode_frame(stream, data) for stream, data in items)
    decoder = stdcopy.FrameDecoder()
    out: list[stdcopy.Frame] = []
    position, i = 0, 0
    while position < len(wire):
        size = cuts[i % len(cuts)]
        out += decoder.feed(wire[position : position + size])
        position += size
        i += 1
    decoder.close()
    assert out == [stdcopy.Frame(stream, data) for stream, data in items]


def test_decoder_rejects_unknown_stream_and_truncation() -> None:
    with pytest.raises(ValueError, match="Unrecognized input header: 7"):
        stdcopy.FrameDecoder().feed(b"\x07\x00\x00\x00\x00\x00\x00\x00")
    decoder = stdcopy.FrameDecoder()
    assert decoder.feed(stdcopy.encode_frame(stdcopy.StreamId.STDOUT, b"hello")[:-1]) == []
    assert decoder.pending == 12
    with pytest.raises(ValueError):
        decoder.close()


def test_progress_lines_match_dockerd() -> None:
    line = jsonmessage.encode(
        jsonmessage.status_message("Pulling fs layer", "a1b2", jsonmessage.ProgressDetail())
    )
    assert line == b'{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2"}\r\n'
    line = jsonmessage.encode(jsonmessage.progress_message("Downloading", "a1b2", 10, 20))
    assert json.loads(line) == {
        "status": "Downloading",
        "progressDetail": {"current": 10, "total": 20},
        "progress": "[" + "=" * 24 + ">" + " " * 25 + "]  10B/20B",
        "id": "a1b2",
    }
    assert list(json.loads(line)) == ["status", "progressDetail", "progress", "id"]


def test_progress_bar_edges() -> None:
    assert jsonmessage.progress_bar(0, 100) == "[" + " " * 50 + "]  0B/100B"
    assert jsonmessage.progress_bar(100, 100) == "[" + "=" * 50 + "]  100B/100B"
    assert jsonmessage.progress_bar(5000, 0) == "5kB"


def test_error_line_has_both_keys() -> None:
    line = jsonmessage.encode(jsonmessage.error_message("manifest unknown"))
    assert line == b'{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\r\n'


def test_aux_and_stream_lines() -> None:
    assert jsonmessage.aux_message({"ID": "sha256:x"}).to_wire() == {"aux": {"ID": "sha256:x"}}
    assert jsonmessage.JSONMessage(stream="Step 1/2\n").to_wire() == {"stream": "Step 1/2\n"}
