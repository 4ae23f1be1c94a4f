"""The client's frame decoder agrees with dockerapi's encoder; logs time values."""

from __future__ import annotations

import pytest

from freight.cli.commands.logs import go_duration, timestamp
from freight.client.demux import Demuxer, FrameError
from freight.dockerapi.stdcopy import StreamId, encode_frame


def test_demux_split_anywhere():
    data = (
        encode_frame(StreamId.STDOUT, b"hello\n")
        + encode_frame(StreamId.STDERR, b"err")
        + encode_frame(StreamId.STDOUT, b"")
    )
    for cut in range(len(data) + 1):
        demux = Demuxer()
        frames = demux.feed(data[:cut]) + demux.feed(data[cut:])
        assert frames == [(1, b"hello\n"), (2, b"err"), (1, b"")]
        assert demux.pending == 0


def test_demux_rejects_unknown_stream():
    with pytest.raises(FrameError):
        Demuxer().feed(b"\x07\x00\x00\x00\x00\x00\x00\x01x")


def test_go_durations():
    assert go_duration("42m") == 2520
    assert go_duration("1h30m") == 5400
    assert go_duration("1.5s") == 1.5
    assert go_duration("2013-01-02") is None
    assert go_duration("10") is None


def test_timestamps():
    assert timestamp("1700000000") == "1700000000"
    assert timestamp("10m", now=1000.0) == "400.000000000"
    assert timestamp("2013-01-02T13:23:37Z") == "1357133017.000000000"
