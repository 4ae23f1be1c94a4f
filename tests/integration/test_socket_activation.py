"""freightd -H fd://: serving on sockets inherited already listening, as systemd
socket activation hands them over (sd_listen_fds: LISTEN_PID, LISTEN_FDS,
fds from 3). No systemd needed: the test binds the sockets, puts them at fds
3 and 4 of the daemon and sets the variables, as systemd would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def ping_unix(path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096)


class Activated:
    """Sockets a 'systemd' (this test) made; freightd started on them like a socket unit's service."""

    def __init__(self, root: Path, cgroup_parent: str, tools) -> None:
        self.root, self.cgroup_parent, self.tools = root, cgroup_parent, tools
        self.sock_path = root / "activated.sock"
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(str(self.sock_path))
        self.unix.listen(16)
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.port = self.tcp.getsockname()[1]

    def spawn(self, *hosts: str, listen_fds: int = 2, own_pid: bool = True) -> subprocess.Popen:
        sockets = [self.unix.fileno(), self.tcp.fileno()]

        def place_fds() -> None:  # in the child: fds 3 and 4, as systemd lays them out
            high = [os.dup(fd) for fd in sockets]
            for target, fd in enumerate(high, start=3):
                os.dup2(fd, target)

        pid = "$$" if own_pid else "1"
        daemon = [
            sys.executable, "-m", "freight.daemon.main",
            *[arg for h in hosts for arg in ("-H", h)],
            "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "run"),
            "--cgroup-parent", self.cgroup_parent, "--log-level", "debug",
            *self.tools.network_flags(self.cgroup_parent),
        ]  # fmt: skip
        # sh's $$ is the pid the daemon will have: exec keeps it.
        script = f'LISTEN_PID={pid} LISTEN_FDS={listen_fds} exec "$@"'
        log = open(self.root / "freightd.log", "ab")  # noqa: SIM115 - the child keeps it
        with log:
            return subprocess.Popen(
                ["sh", "-c", script, "sh", *daemon],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=place_fds, pass_fds=(3, 4),
            )  # fmt: skip

    def freightd(self, proc: subprocess.Popen):  # noqa: ANN201 - a conftest Freightd
        d = self.tools.Freightd(
            self.root, f"unix://{self.sock_path}", proc, self.cgroup_parent,
            self.root / "freightd.log",
        )  # fmt: skip
        self.tools.wait_for_ping(d)
        return d

    def close(self) -> None:
        self.unix.close()
        self.tcp.close()


@pytest.fixture
def activated(private_root, daemon_tools) -> Iterator[Activated]:
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    a = Activated(*private_root, daemon_tools)
    try:
        yield a
    finally:
        a.close()


def test_fd_hosts_serve_the_inherited_sockets(activated, daemon_tools) -> None:
    d = activated.freightd(activated.spawn("fd://"))
    try:
        assert ok(d.docker("version", "--format", "{{.Server.Os}}")) == "linux\n"
        tcp = f"tcp://127.0.0.1:{activated.port}"
        over_tcp = subprocess.run(
            [sys.executable, "-m", "freight.cli.main", "-H", tcp, "info", "--format",
             "{{.OSType}}"], capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        assert ok(over_tcp) == "linux\n"
    finally:
        daemon_tools.stop(d)
    assert d.proc.returncode == 0
    # The socket file is systemd's: still there, and the next daemon serves on it again.
    assert activated.sock_path.exists()
    d = activated.freightd(activated.spawn("fd://"))
    try:
        assert b"200 OK" in ping_unix(activated.sock_path)
    finally:
        daemon_tools.stop(d)


def test_one_fd_by_number_beside_a_unix_host(activated, daemon_tools) -> None:
    own = activated.root / "own.sock"
    proc = activated.spawn("fd://3", f"unix://{own}")
    d = activated.freightd(proc)
    try:
        assert b"200 OK" in ping_unix(own)
        with socket.create_connection(("127.0.0.1", activated.port), timeout=2) as s:
            # fd 4 was passed but not asked for: nobody answers there.
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(0.5)
            with pytest.raises(TimeoutError):
                s.recv(100)
    finally:
        daemon_tools.stop(d)


@pytest.mark.parametrize(
    ("hosts", "kwargs", "message"),
    [
        (["fd://"], {"own_pid": False}, "no sockets found via socket activation"),
        (["fd://"], {"listen_fds": 0}, "no sockets found via socket activation"),
        (["fd://5"], {}, "too few socket activated files passed in by systemd"),
        (["fd://x"], {}, "invalid -H fd://x"),
    ],
)
def test_refusals(activated, hosts, kwargs, message) -> None:
    proc = activated.spawn(*hosts, **kwargs)
    assert proc.wait(30) == 1
    text = (activated.root / "freightd.log").read_text()
    assert message in text and "Traceback" not in text
