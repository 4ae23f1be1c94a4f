"""Detach-key parsing and scanning."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight.errors import InvalidArgument
from freight.services.detachkeys import DEFAULT, Scanner, parse


def test_parse():
    assert parse(DEFAULT) == b"\x10\x11"
    assert parse("ctrl-a,x") == b"\x01x"
    assert parse("ctrl-@,ctrl-[") == b"\x00\x1b"


@pytest.mark.parametrize("bad", ["", "ctrl-", "ctrl-1", "alt-x", "ctrl-pq"])
def test_bad_keys_name_the_value(bad):
    with pytest.raises(InvalidArgument, match="Invalid detach keys"):
        parse(bad)


def test_scanner_detaches_and_strips_the_sequence():
    s = Scanner(b"\x10\x11")
    assert s.feed(b"ab\x10") == (b"ab", False)
    assert s.feed(b"\x11rest") == (b"", True)


def test_false_start_is_passed_on():
    s = Scanner(b"\x10\x11")
    assert s.feed(b"\x10x\x10\x10\x11") == (b"\x10x\x10", True)


@given(st.binary().filter(lambda b: b"\x10" not in b))
def test_ordinary_input_passes_unchanged(data):
    assert Scanner(b"\x10\x11").feed(data) == (data, False)
