"""Clients that vanish mid-stream leave nothing behind in the daemon; bad detach keys are 400."""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterator

import pytest

SPAM = ["sh", "-c", "while :; do echo spam spam spam; done"]
# An exec outlives a client that left (as with dockerd), so the one cut short ends by itself.
SHORT_SPAM = ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo spam $i; i=$((i+1)); done"]


def request(freightd, method: str, target: str, body: dict | None = None) -> socket.socket:
    """Send one request on a fresh connection; the caller reads the answer."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(freightd.host.removeprefix("unix://"))
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} /v1.45{target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    s.sendall(head.encode() + data)
    return s


def answer(s: socket.socket) -> bytes:
    """The head, and the body when it has a Content-Length."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        if not chunk:
            return got
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    length = int(fields.get(b"Content-Length", b"0"))
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def spammer(freightd) -> Iterator[str]:
    name = f"spam-{secrets.token_hex(4)}"
    result = freightd.cli("run", "-d", "--name", name, "busybox", *SPAM)
    assert result.returncode == 0, result.stderr.decode()
    yield name
    freightd.cli("rm", "-f", name)


def cut_attach(freightd, name: str) -> None:
    s = request(freightd, "POST", f"/containers/{name}/attach?stream=1&stdout=1&stderr=1")
    assert answer(s).startswith(b"HTTP/1.1 101")
    s.recv(65536)  # output is flowing
    s.close()  # gone, mid-stream, without a word


def cut_exec(freightd, name: str) -> None:
    s = request(
        freightd, "POST", f"/containers/{name}/exec", {"Cmd": SHORT_SPAM, "AttachStdout": True}
    )
    exec_id = json.loads(answer(s).partition(b"\r\n\r\n")[2])["Id"]
    s.close()
    s = request(freightd, "POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    assert answer(s).startswith(b"HTTP/1.1 101")
    s.recv(65536)
    s.close()


def test_vanished_clients_leave_no_fds_in_the_daemon(freightd, spammer) -> None:
    pid = freightd.proc.pid
    cut_attach(freightd, spammer)  # warm up lazily created state
    cut_exec(freightd, spammer)
    time.sleep(0.5)
    baseline = open_fds(pid)
    for _ in range(10):
        cut_attach(freightd, spammer)
        cut_exec(freightd, spammer)
    deadline = time.monotonic() + 10
    while open_fds(pid) > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(pid) <= baseline + 2, sorted(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("keys", ["ctrl-", "ctrl-@@", "nonsense-key"])
def test_unparseable_detach_keys_are_400_naming_them(freightd, spammer, keys: str) -> None:
    s = request(freightd, "POST", f"/containers/{spammer}/attach?stream=1&detachKeys={keys}")
    got = answer(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 400"), got[:200]
    body = got.partition(b"\r\n\r\n")[2]
    assert keys.encode() in body


@pytest.mark.parametrize("cli", ["freight", "docker"])
@pytest.mark.parametrize("remove", [True, False])
def test_a_failed_start_ends_the_attached_run(freightd, cli: str, remove: bool) -> None:
    """The user lookup fails in the daemon, before any process: `run` must not hang."""
    run = freightd.cli if cli == "freight" else freightd.docker
    name = f"nouser-{secrets.token_hex(4)}"
    args = ["run", "--name", name, *(["--rm"] if remove else []), "-u", "nosuchuser", "busybox"]
    result = run(*args, "true", timeout=30)
    assert result.returncode == 125, result.stderr.decode()
    assert b"unable to find user nosuchuser" in result.stderr
    listed = freightd.cli("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")
    if remove:
        assert listed.stdout == b""  # --rm: removed, as dockerd does
    else:
        assert listed.stdout.startswith(b"Created")
        state = json.loads(freightd.cli("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 128 and "nosuchuser" in state["Error"]
        freightd.cli("rm", "-f", name)
