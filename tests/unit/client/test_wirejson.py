"""freight.client.wirejson gives exactly what the stdlib json gives."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.client import wirejson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values, st.booleans(), st.sampled_from([(", ", ": "), (",", ":")]))
def test_dumps_and_loads_match_the_stdlib(value, ascii_only: bool, separators) -> None:
    text = wirejson.dumps(value, separators=separators, ensure_ascii=ascii_only)
    assert text == json.dumps(value, separators=separators, ensure_ascii=ascii_only)
    assert wirejson.loads(text) == json.loads(text)
    assert wirejson.loads(f" \n{text}\t".encode()) == json.loads(text)


def test_raw_decode_reads_one_value_of_a_stream() -> None:
    text = '{"status":"a"}{"status":"b"}'
    first, end = wirejson.raw_decode(text)
    assert first == {"status": "a"} and wirejson.raw_decode(text, end)[0] == {"status": "b"}


@pytest.mark.parametrize("bad", ["", "{", '{"a":1} x', "[1,]", "nope"])
def test_malformed_documents_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        wirejson.loads(bad)


def test_unserialisable_objects_raise_type_error_unless_default() -> None:
    with pytest.raises(TypeError):
        wirejson.dumps({"a": object()})
    assert wirejson.dumps({"a": object()}, default=lambda o: "x") == '{"a": "x"}'


def test_constants_as_the_stdlib() -> None:
    assert wirejson.loads("[NaN, Infinity]")[1] == float("inf")
