"""The HTTP server over a real unix socket: framing, keep-alive, streaming, hijack, shutdown."""

import hashlib
import json
import os
import socket
import stat
import time

import h11
import pytest

from conftest import ERROR_KINDS, Demo, DemoState, RawClient, ServerThread, demo_router
from freight.dockerapi import stdcopy

DOCKER_HEADERS = {
    "api-version": "1.45",
    "docker-experimental": "false",
    "ostype": "linux",
    "server": "Freight/0.1.0 (linux)",
}


def read_until_close(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_ping_has_docker_headers(demo: Demo) -> None:
    reply = demo.client().request("GET", "/_ping")
    assert (reply.status, reply.body) == (200, b"OK")
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert reply.headers["pragma"] == "no-cache"
    for name, value in DOCKER_HEADERS.items():
        assert reply.headers[name] == value


def test_head_is_served_by_get_route_without_body(demo: Demo) -> None:
    client = demo.client()
    reply = client.request("HEAD", "/version")
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) > 0
    # the connection is still in sync afterwards
    assert client.request("GET", "/_ping").body == b"OK"


def test_keep_alive_serves_many_requests_on_one_connection(demo: Demo) -> None:
    client = demo.client()
    for _ in range(5):
        assert client.request("GET", "/_ping").status == 200


def test_pipelined_requests_answered_in_order(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(
        b"GET /containers/a/json HTTP/1.1\r\nHost: d\r\n\r\n"
        b"GET /containers/b/json HTTP/1.1\r\nHost: d\r\n\r\n"
        b"GET /containers/c/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    )
    data = read_until_close(conn)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b'"id":"a"') < data.index(b'"id":"b"') < data.index(b'"id":"c"')


def test_json_body_and_malformed_json(demo: Demo) -> None:
    client = demo.client()
    reply = client.request("POST", "/json", b'{"Image":"busybox"}')
    assert json.loads(reply.body) == {"got": {"Image": "busybox"}}
    assert reply.body.endswith(b"\n")
    reply = client.request("POST", "/json", b"{not json")
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body)["message"].startswith("invalid JSON")
    reply = client.request("POST", "/json", b"")
    assert json.loads(reply.body) == {"got": None}


def test_json_refuses_other_content_types(demo: Demo) -> None:
    reply = demo.client().request("POST", "/json", b"{}", [("Content-Type", "text/plain")])
    assert reply.status == 400
    assert "must be 'application/json'" in json.loads(reply.body)["message"]


def test_chunked_request_body_is_read_incrementally(demo: Demo) -> None:
    client = demo.client()
    payload = os.urandom(256 * 1024)
    client.send(
        h11.Request(
            method="POST",
            target="/echo",
            headers=[("Host", "d"), ("Transfer-Encoding", "chunked")],
        )
    )
    for start in range(0, len(payload), 10_000):
        client.send(h11.Data(data=payload[start : start + 10_000]))
    client.send(h11.EndOfMessage())
    reply = client.read_reply()
    assert json.loads(reply.body) == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    assert len(demo.state.body_chunks) > 1
    assert max(demo.state.body_chunks) < len(payload)


def test_raw_chunked_encoding_on_the_wire(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(
        b"POST /echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    data = read_until_close(conn)
    assert b'"size":11' in data
    assert hashlib.sha256(b"hello world").hexdigest().encode() in data


def test_expect_100_continue(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(
        b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    assert conn.recv(1024).startswith(b"HTTP/1.1 100 ")
    conn.sendall(b"abc")
    assert b'"size":3' in read_until_close(conn)


def test_unread_body_is_drained_and_connection_kept(demo: Demo) -> None:
    client = demo.client()
    assert client.request("POST", "/ignore", b"x" * 100_000).status == 200
    assert client.request("GET", "/_ping").body == b"OK"


def test_unknown_path_and_wrong_method_are_page_not_found(demo: Demo) -> None:
    client = demo.client()
    for method, target in [("GET", "/nope"), ("POST", "/version"), ("GET", "/v1.45/nope")]:
        reply = client.request(method, target)
        assert reply.status == 404
        assert reply.headers["content-type"] == "application/json"
        assert reply.body == b'{"message":"page not found"}\n'


def test_version_prefix_and_limits(demo: Demo) -> None:
    client = demo.client()
    reply = client.request("GET", "/v1.41/containers/abc/json")
    assert json.loads(reply.body) == {"id": "abc", "version": "1.41"}
    assert json.loads(client.request("GET", "/containers/abc/json").body)["version"] == "1.45"
    old = client.request("GET", "/v1.12/containers/abc/json")
    assert old.status == 400
    assert json.loads(old.body) == {
        "message": "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    }
    new = client.request("GET", "/v1.99/_ping")
    assert new.status == 400
    assert json.loads(new.body) == {
        "message": "client version 1.99 is too new. Maximum supported API version is 1.45"
    }


def test_image_names_with_slashes_and_colons(demo: Demo) -> None:
    client = demo.client()
    reply = client.request("GET", "/v1.45/images/localhost:5000/a/b:tag/json")
    assert json.loads(reply.body)["name"] == "localhost:5000/a/b:tag"
    reply = client.request("DELETE", "/images/registry.example.com/x/y@sha256:abc")
    assert json.loads(reply.body)["name"] == "registry.example.com/x/y@sha256:abc"
    reply = client.request("GET", "/images/a%2Fb%3Atag/json")
    assert json.loads(reply.body)["name"] == "a/b:tag"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("notfound", 404),
        ("exists", 409),
        ("conflict", 409),
        ("invalid", 400),
        ("denied", 403),
        ("unavailable", 503),
        ("notimpl", 501),
        ("exec127", 400),
        ("exec125", 500),
        ("internal", 500),
    ],
)
def test_error_kinds_map_to_status(demo: Demo, kind: str, status: int) -> None:
    reply = demo.client().request("GET", f"/error/{kind}")
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body) == {"message": str(ERROR_KINDS[kind])}
    assert reply.headers["api-version"] == "1.45"


def test_unexpected_exception_is_500_and_connection_survives(
    demo: Demo, caplog: pytest.LogCaptureFixture
) -> None:
    client = demo.client()
    reply = client.request("GET", "/boom")
    assert reply.status == 500
    assert json.loads(reply.body) == {"message": "kaboom"}
    assert client.request("GET", "/_ping").body == b"OK"
    assert any("kaboom" in (r.exc_text or "") for r in caplog.records)


def test_filters_and_bool_query(demo: Demo) -> None:
    client = demo.client()
    reply = client.request("GET", '/containers/json?all=1&filters={"status":{"running":true}}')
    assert json.loads(reply.body) == {"filters": {"status": ["running"]}, "all": True}
    reply = client.request(
        "GET", "/containers/json?filters=%7B%22status%22%3A%5B%22exited%22%5D%7D"
    )
    assert json.loads(reply.body)["filters"] == {"status": ["exited"]}
    assert client.request("GET", "/containers/json?filters=nope").status == 400


def test_malformed_request_gets_400(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    assert read_until_close(conn).startswith(b"HTTP/1.1 400 ")


def test_streaming_sends_headers_before_body(demo: Demo) -> None:
    client = demo.client()
    client.send(
        h11.Request(method="POST", target="/containers/x/wait?delay=2", headers=[("Host", "d")])
    )
    client.send(h11.EndOfMessage())
    started = time.monotonic()
    head = client.read_head()
    assert time.monotonic() - started < 1.5
    assert head.status_code == 200
    assert (b"transfer-encoding", b"chunked") in [(k.lower(), v) for k, v in head.headers]
    data = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        data += event.data  # type: ignore[attr-defined]
    assert data == b'{"StatusCode":0}\n'


def test_streaming_chunks_arrive_as_produced(demo: Demo) -> None:
    reply = demo.client().request("GET", "/stream?count=5")
    assert reply.body.splitlines() == [b'{"n":%d}' % n for n in range(5)]
    assert demo.state.stream_closed.wait(2)


def test_client_disconnect_mid_stream_cancels_handler(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
    assert b'{"n":0}' in conn.recv(4096) + conn.recv(4096)
    conn.close()
    assert demo.state.stream_closed.wait(5)
    # the server carries on
    assert demo.client().request("GET", "/_ping").body == b"OK"


def test_client_disconnect_while_waiting_cancels_before_any_output(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
    assert demo.state.stream_started.wait(2)
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()
    assert demo.state.stream_closed.wait(5)


def attach_request(multiplexed: bool, upgrade: bool = True) -> bytes:
    query = "?multiplexed=1" if multiplexed else ""
    head = f"POST /v1.45/containers/c1/attach{query} HTTP/1.1\r\nHost: d\r\n"
    if upgrade:
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    return (head + "Content-Length: 0\r\n\r\n").encode()


def split_head(data: bytes) -> tuple[list[str], bytes]:
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode().split("\r\n"), rest


def test_hijack_upgrade_with_half_close(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(attach_request(multiplexed=True))
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    lines, rest = split_head(data)
    assert lines[0] == "HTTP/1.1 101 UPGRADED"
    assert "Content-Type: application/vnd.docker.multiplexed-stream" in lines
    assert "Connection: Upgrade" in lines and "Upgrade: tcp" in lines
    assert "Api-Version: 1.45" in lines
    conn.sendall(b"hello ")
    conn.sendall(b"world")
    conn.shutdown(socket.SHUT_WR)  # stdin done; output must keep flowing
    rest += read_until_close(conn)
    decoder = stdcopy.FrameDecoder()
    frames = decoder.feed(rest)
    decoder.close()
    stdout = b"".join(f.data for f in frames if f.stream == stdcopy.StreamId.STDOUT)
    stderr = b"".join(f.data for f in frames if f.stream == stdcopy.StreamId.STDERR)
    assert stdout == b"HELLO WORLD"
    assert stderr == b"bye\n"


def test_hijack_data_pipelined_behind_request_is_not_lost(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(attach_request(multiplexed=False) + b"early")
    conn.shutdown(socket.SHUT_WR)
    lines, rest = split_head(read_until_close(conn))
    assert "Content-Type: application/vnd.docker.raw-stream" in lines
    assert rest == b"EARLYbye\n"


def test_hijack_without_upgrade_is_200_and_unframed(demo: Demo) -> None:
    conn = demo.connect()
    conn.sendall(attach_request(multiplexed=False, upgrade=False) + b"x")
    conn.shutdown(socket.SHUT_WR)
    lines, rest = split_head(read_until_close(conn))
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Type: application/vnd.docker.raw-stream" in lines
    assert not any(
        line.lower().startswith(("transfer-encoding", "content-length")) for line in lines
    )
    assert rest == b"Xbye\n"


def test_unix_socket_mode_stale_file_and_removal(tmp_path) -> None:
    sock = tmp_path / "d.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # a socket file nobody listens on, as a crashed daemon leaves
    thread = ServerThread(demo_router(DemoState()), [f"unix://{sock}", "tcp://127.0.0.1:0"])
    thread.start()
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        unix_url, tcp_url = thread.server.addresses
        assert unix_url == f"unix://{sock}"
        host, port = tcp_url.removeprefix("tcp://").rsplit(":", 1)
        assert int(port) > 0
        client = RawClient(socket.create_connection((host, int(port)), timeout=5))
        assert client.request("GET", "/_ping").body == b"OK"
    finally:
        thread.stop()
    assert not sock.exists()


def test_listener_refuses_non_socket_file(tmp_path) -> None:
    path = tmp_path / "file"
    path.write_text("not a socket")
    thread = ServerThread(demo_router(DemoState()), [f"unix://{path}"])
    with pytest.raises(Exception, match="not a socket"):
        thread.start()
    thread.stop()
    assert path.read_text() == "not a socket"


def test_shutdown_cancels_streams_and_closes_idle_connections(demo: Demo) -> None:
    streaming = demo.connect()
    streaming.sendall(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
    assert demo.state.stream_started.wait(2)
    idle = demo.client()
    assert idle.request("GET", "/_ping").status == 200
    started = time.monotonic()
    demo.thread.run(demo.thread.server.close())
    assert time.monotonic() - started < 1.0
    assert demo.state.stream_cancelled.is_set()
    assert idle.sock.recv(10) == b""
    assert not os.path.exists(demo.sock)


def test_a_client_that_dribbles_its_request_head_is_cut_off(tmp_path) -> None:
    """Slowloris: a connection that never finishes its request line and headers is
    closed after the header timeout (dockerd's ReadHeaderTimeout), while a prompt
    client on another connection is served all along."""
    sock = tmp_path / "d.sock"
    thread = ServerThread(demo_router(DemoState()), [f"unix://{sock}"])
    thread.server.header_timeout = 0.5
    thread.start()
    try:
        slow = socket.socket(socket.AF_UNIX)
        slow.connect(str(sock))
        slow.settimeout(5)
        slow.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n")  # ... and never the blank line
        started = time.monotonic()
        prompt = socket.socket(socket.AF_UNIX)
        prompt.connect(str(sock))
        assert RawClient(prompt).request("GET", "/_ping").body == b"OK"
        assert slow.recv(1024) == b""  # closed by the server
        assert 0.4 < time.monotonic() - started < 3
        slow.close()
    finally:
        thread.stop()
