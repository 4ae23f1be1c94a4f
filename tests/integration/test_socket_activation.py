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

from freight.daemon.listeners import activated_hosts


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

    def spawn(
        self, *hosts: str, listen_fds: int = 2, own_pid: bool = True, flags: tuple[str, ...] = ()
    ) -> subprocess.Popen:
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
            *self.tools.network_flags(self.cgroup_parent), *flags,
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


def test_tls_applies_to_an_inherited_tcp_socket(activated, daemon_tools, tmp_path) -> None:
    import importlib.util

    path = Path(__file__).with_name("tlscerts.py")
    spec = importlib.util.spec_from_file_location("freight_activation_tlscerts", path)
    tlscerts = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tlscerts
    spec.loader.exec_module(tlscerts)
    certs = tlscerts.make_certs(tmp_path / "certs")
    d = activated.freightd(activated.spawn("fd://", flags=("--tlsverify", *certs.server_flags())))
    try:
        tcp = f"tcp://127.0.0.1:{activated.port}"
        base = [sys.executable, "-m", "freight.cli.main", "-H", tcp]
        plain = subprocess.run([*base, "version"], capture_output=True, timeout=30,
                               stdin=subprocess.DEVNULL)  # fmt: skip
        assert plain.returncode != 0
        tls = subprocess.run(
            [*base[:3], "--tlsverify", *certs.client_flags(), *base[3:], "info", "--format",
             "{{.OSType}}"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert ok(tls) == "linux\n"
        assert b"200 OK" in ping_unix(activated.sock_path)  # the unix one stays plain
    finally:
        daemon_tools.stop(d)


def test_activated_hosts_checks_and_cleans_the_environment() -> None:
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"}
    assert activated_hosts(["unix:///x.sock"], env) == ["unix:///x.sock"]
    assert "LISTEN_FDS" in env  # untouched without fd:// hosts
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        # Put the listener at fd 3 (saving what is there) as systemd would.
        try:
            saved: int | None = os.dup(3)
        except OSError:
            saved = None
        os.dup2(listener.fileno(), 3, inheritable=True)
        try:
            hosts = activated_hosts(["fd://", "unix:///y.sock"], env)
            assert hosts == ["fd://3", "unix:///y.sock"]
            assert not os.get_inheritable(3)  # close-on-exec now
            assert not {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} & set(env)
        finally:
            if saved is None:
                os.close(3)
            else:
                os.dup2(saved, 3, inheritable=False)
                os.close(saved)
