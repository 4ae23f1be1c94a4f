"""The websocket attach's opening handshake (RFC 6455 §4.2)."""

from __future__ import annotations

import pytest

from freight.apiserver.http import Headers
from freight.apiserver.websocket import accept_key, handshake_lines
from freight.errors import InvalidArgument

GOOD = {
    "Connection": "keep-alive, Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def headers(**changes: str | None) -> Headers:
    merged = {**GOOD, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return Headers((k.lower(), v) for k, v in merged.items() if v is not None)


def test_accept_key_is_the_rfcs_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_good_request_gets_101_with_the_accept_key() -> None:
    lines = handshake_lines(headers())
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"Upgrade": "tcp"}, "Upgrade: websocket"),
        ({"Connection": "keep-alive"}, "Connection: Upgrade"),
        ({"Sec_WebSocket_Version": "8"}, "Sec-WebSocket-Version: 13"),
        ({"Sec_WebSocket_Key": None}, "Sec-WebSocket-Key"),
        ({"Sec_WebSocket_Key": "c2hvcnQ="}, "Sec-WebSocket-Key"),
    ],
)
def test_bad_requests_name_what_is_wrong(change: dict, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        handshake_lines(headers(**change))
