"""docker-py and the docker CLI on the interactive paths: exec, attach with stdin,
detach keys, resize, --init and bind mounts."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator

import docker
import docker.errors
import pytest
import websocket


@pytest.fixture(scope="module")
def client(freightd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=freightd.host, timeout=60)
    yield c
    c.close()


@pytest.fixture
def running(client: docker.DockerClient) -> Iterator:
    c = client.containers.run(
        "busybox", ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        detach=True, name=f"ia-{secrets.token_hex(4)}", environment={"FROMCTR": "yes"},
    )  # fmt: skip
    yield c
    c.remove(force=True)


def test_exec_run_output_exit_code_user_env_workdir(running) -> None:
    code, out = running.exec_run(
        ["sh", "-c", "id -u; pwd; echo $FROMCTR $EXTRA; exit 5"],
        user="nobody", workdir="/tmp", environment={"EXTRA": "x"},
    )  # fmt: skip
    assert code == 5
    assert out.decode().split() == ["65534", "/tmp", "yes", "x"]


def test_exec_joins_the_containers_namespaces(running) -> None:
    hostname = running.attrs["Config"]["Hostname"]
    code, out = running.exec_run(["sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"])
    assert code == 0
    lines = out.decode().splitlines()
    assert lines[0] == hostname
    assert "while" in lines[1]  # PID 1 is the container's own init


def test_exec_missing_command_and_inspect(client, running) -> None:
    api = client.api
    exec_id = api.exec_create(running.id, ["nosuchcommand"])["Id"]
    assert b"executable file not found" in api.exec_start(exec_id)  # in the stream, as dockerd
    assert api.exec_inspect(exec_id)["ExitCode"] == 127
    ok = api.exec_create(running.id, ["true"])["Id"]
    api.exec_start(ok)
    assert api.exec_inspect(ok)["ExitCode"] == 0
    with pytest.raises(docker.errors.NotFound):
        api.exec_resize("nosuchexec", height=10, width=10)


def test_exec_in_a_stopped_container_is_a_conflict(client) -> None:
    c = client.containers.run("busybox", "true", detach=True)
    try:
        c.wait(timeout=30)
        with pytest.raises(docker.errors.APIError) as info:
            c.exec_run("true")
        assert info.value.status_code == 409
        assert "is not running" in str(info.value)
    finally:
        c.remove(force=True)


def test_exec_with_tty_and_stdin_through_the_docker_cli(freightd, running) -> None:
    result = freightd.docker("exec", "-i", running.id, "cat", input=b"piped through\n")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"piped through\n"


def test_run_interactive_stdin_through_the_docker_cli(freightd) -> None:
    result = freightd.docker(
        "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done", input=b"abc\n"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"abc\ndone\n"


def test_attach_socket_stdin_and_detach_keys(client) -> None:
    c = client.containers.create(
        "busybox", ["cat"], stdin_open=True, name=f"at-{secrets.token_hex(4)}"
    )
    try:
        c.start()
        sock = c.attach_socket(
            params={"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-x"}
        )
        raw: socket.socket = sock._sock
        raw.settimeout(10)
        raw.sendall(b"hello\n")
        got = b""
        deadline = time.monotonic() + 10
        while b"hello" not in got and time.monotonic() < deadline:
            got += raw.recv(4096)
        assert b"hello" in got  # multiplexed frame carrying the echo
        raw.sendall(b"\x18")  # ctrl-x: detach
        raw.settimeout(10)
        while raw.recv(4096):
            pass
        c.reload()
        assert c.status == "running"  # detaching leaves the container alone
        raw.close()
    finally:
        c.remove(force=True)


def test_websocket_attach_carries_stdin_and_raw_output(client, freightd) -> None:
    c = client.containers.create(
        "busybox", ["sh", "-c", "cat; echo bye >&2"], stdin_open=True,
        name=f"ws-{secrets.token_hex(4)}",
    )  # fmt: skip
    try:
        c.start()
        # docker-py's attach_socket(ws=True) builds a ws:// URL from a TCP base_url only:
        # websocket-client (what it uses) over the daemon's unix socket instead.
        unix = socket.socket(socket.AF_UNIX)
        unix.connect(freightd.host.removeprefix("unix://"))
        query = "stdin=1&stdout=1&stderr=1&stream=1"
        url = f"ws://localhost/v1.45/containers/{c.id}/attach/ws?{query}"
        ws = websocket.create_connection(url, socket=unix, timeout=10)
        ws.send_binary(b"over the websocket\n")
        got = b""
        while b"over the websocket" not in got:
            got += ws.recv()
        assert got == b"over the websocket\n"  # raw bytes: no 8-byte frame header
        ws.close()
    finally:
        c.remove(force=True)


def test_websocket_attach_refuses_a_bad_handshake(freightd, running) -> None:
    path = freightd.host.removeprefix("unix://")

    def get(target: str, extra: str) -> bytes:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += s.recv(4096)
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")), 0,
            )  # fmt: skip
            while len(body) < length:
                body += s.recv(4096)
            return head + b"\r\n\r\n" + body

    upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    bad_key = get(
        f"/containers/{running.id}/attach/ws?stream=1", upgrade + "Sec-WebSocket-Key: x\r\n"
    )
    assert bad_key.startswith(b"HTTP/1.1 400") and b"Sec-WebSocket-Key" in bad_key
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    missing = get("/containers/nosuchcontainer/attach/ws?stream=1", upgrade + key)
    assert missing.startswith(b"HTTP/1.1 404") and b"No such container" in missing
    ok = get(f"/containers/{running.id}/attach/ws?stream=1&stdout=1", upgrade + key)
    assert ok.startswith(b"HTTP/1.1 101")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in ok  # RFC 6455's example


def test_init_reaps_as_pid_1(freightd) -> None:
    result = freightd.docker(
        "run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("/sbin/docker-init -- sh")


def test_bind_mounts(freightd, tmp_path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f").write_text("from host\n")
    result = freightd.docker(
        "run", "--rm", "-v", f"{tmp_path}/in:/data:ro", "-v", f"{tmp_path}/new:/new", "busybox",
        "sh", "-c", "cat /data/f; touch /data/x 2>/dev/null || echo read-only; echo w > /new/y",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split("\n")[:2] == ["from host", "read-only"]
    assert (tmp_path / "new" / "y").read_text() == "w\n"
