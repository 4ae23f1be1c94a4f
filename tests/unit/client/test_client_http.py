"""EngineClient against a fake daemon: framing, bodies, upgrade, errors."""

from __future__ import annotations

import io
import socket

import pytest
from fakedaemon import respond, respond_json

from freight.client.api import EngineAPI
from freight.client.http import (
    DEFAULT_HOST,
    ApiError,
    DaemonUnreachable,
    EngineClient,
    parse_host,
    resolve_host,
)


def test_host_resolution_order():
    env = {"FREIGHT_HOST": "unix:///a", "DOCKER_HOST": "unix:///b"}
    assert resolve_host("tcp://x:1", env) == "tcp://x:1"
    assert resolve_host(None, env) == "unix:///a"
    assert resolve_host(None, {"DOCKER_HOST": "unix:///b"}) == "unix:///b"
    assert resolve_host(None, {}) == DEFAULT_HOST


def test_parse_host():
    assert parse_host("unix:///run/x.sock") == ("unix", "/run/x.sock")
    assert parse_host("tcp://127.0.0.1:2375") == ("tcp", ("127.0.0.1", 2375))
    assert parse_host("tcp://localhost") == ("tcp", ("localhost", 2375))


def test_content_length_json_and_version_prefix(daemon):
    daemon.route("GET", "/version", lambda req, s: respond_json(s, 200, {"Version": "1"}))
    assert EngineClient(daemon.host).get_json("/version") == {"Version": "1"}
    assert daemon.requests[0].path == "/v1.45/version"


def test_ping_is_unversioned(daemon):
    daemon.route(
        "GET", "/_ping", lambda req, s: respond(s, 200, b"OK", {"Content-Type": "text/plain"})
    )
    assert EngineAPI(EngineClient(daemon.host)).ping() == "OK"
    assert daemon.requests[0].path == "/_ping"


def test_chunked_response_iterated_incrementally(daemon):
    def chunked(req, s):
        s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b'{"status":"a"}\n', b'{"status":', b'"b"}\n'):
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        s.sendall(b"0\r\n\r\n")

    daemon.route("POST", "/images/create", chunked)
    response = EngineClient(daemon.host).request("POST", "/images/create")
    assert [m["status"] for m in response.iter_json()] == ["a", "b"]


def test_read_until_close(daemon):
    def until_close(req, s):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nline1\nline2")
        s.shutdown(socket.SHUT_WR)

    daemon.route("GET", "/logs", until_close)
    response = EngineClient(daemon.host).request("GET", "/containers/x/logs")
    assert list(response.iter_lines()) == [b"line1\n", b"line2"]


def test_streamed_request_body_is_chunked(daemon):
    daemon.route(
        "POST", "/images/create", lambda req, s: respond_json(s, 200, {"n": len(req.body)})
    )
    payload = b"x" * 200_000
    client = EngineClient(daemon.host)
    response = client.request("POST", "/images/create", data=io.BytesIO(payload))
    assert response.json() == {"n": len(payload)}
    request = daemon.requests[0]
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == payload


def test_json_body_and_query(daemon):
    daemon.route(
        "POST",
        "/containers/create",
        lambda req, s: respond_json(s, 201, {"Id": "abc", "Warnings": []}),
    )
    api = EngineAPI(EngineClient(daemon.host))
    assert api.container_create({"Image": "busybox"}, name="web 1")["Id"] == "abc"
    request = daemon.requests[0]
    assert request.query == "name=web%201"
    assert request.json() == {"Image": "busybox"}
    assert request.headers["content-type"] == "application/json"


def test_repeated_list_params(daemon):
    daemon.route("POST", "/images/create", lambda req, s: respond(s, 200, b'{"status":"sha256:1"}'))
    api = EngineAPI(EngineClient(daemon.host))
    list(api.image_import("http://x/t.tar", changes=["CMD a", "ENV b=c"]))
    assert "changes=CMD%20a&changes=ENV%20b%3Dc" in daemon.requests[0].query


def test_error_message_maps_to_api_error(daemon):
    daemon.route(
        "GET", "/json", lambda req, s: respond_json(s, 404, {"message": "No such container: x"})
    )
    with pytest.raises(ApiError) as info:
        EngineClient(daemon.host).get_json("/containers/x/json")
    assert info.value.status == 404
    assert str(info.value) == "Error response from daemon: No such container: x"


def test_missing_socket_is_daemon_unreachable(tmp_path):
    host = f"unix://{tmp_path}/nope.sock"
    with pytest.raises(DaemonUnreachable) as info:
        EngineClient(host).get_json("/version")
    assert (
        str(info.value) == f"Cannot connect to the freight daemon at {host}. Is freightd running?"
    )


def test_hijack_returns_socket_and_early_bytes(daemon):
    def upgrade(req, s):
        assert req.headers["upgrade"] == "tcp"
        s.sendall(
            b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Type: application/vnd.docker.multiplexed-stream\r\n\r\nearly"
        )
        assert s.recv(5) == b"input"
        s.sendall(b"-late")

    daemon.route("POST", "/attach", upgrade)
    conn = EngineClient(daemon.host).hijack("POST", "/containers/x/attach", {"stream": True})
    assert conn.buffered == b"early"
    conn.sock.sendall(b"input")
    data = conn.recv()
    while not data.endswith(b"-late"):
        data += conn.recv()
    assert data == b"early-late"
    conn.close()


def test_hijack_error_status(daemon):
    daemon.route(
        "POST", "/attach", lambda req, s: respond_json(s, 409, {"message": "container is paused"})
    )
    with pytest.raises(ApiError, match="container is paused"):
        EngineClient(daemon.host).hijack("POST", "/containers/x/attach")


def test_an_older_daemon_gets_the_version_it_serves(daemon, monkeypatch):
    """dockerd 20.10 serves API 1.41 and refuses /v1.45 with a 400 naming its maximum:
    the request goes again at 1.41, and so do the next ones (as the docker CLI
    negotiates). DOCKER_API_VERSION pins the version from the start."""

    def version(req, s):
        if req.path.startswith("/v1.45/"):
            message = "client version 1.45 is too new. Maximum supported API version is 1.41"
            respond_json(s, 400, {"message": message})
        else:
            respond_json(s, 200, {"Version": "20.10.24"})

    daemon.route("GET", "/version", version)
    client = EngineClient(daemon.host)
    assert client.get_json("/version") == {"Version": "20.10.24"}
    assert client.get_json("/version") == {"Version": "20.10.24"}
    assert [r.path for r in daemon.requests] == [
        "/v1.45/version",
        "/v1.41/version",
        "/v1.41/version",
    ]
    monkeypatch.setenv("DOCKER_API_VERSION", "1.40")
    assert EngineClient(daemon.host).get_json("/version") == {"Version": "20.10.24"}
    assert daemon.requests[-1].path == "/v1.40/version"
