"""The interactive client against the simulated container: exec, attach, run -i/-t.

In-process where stdin is not involved; a subprocess (on pipes or on a PTY
from ``pty.openpty()``) where the CLI's stdin, terminal modes or signals are
what is being tested.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

import pytest
from fakedaemon import CID, EID, SimContainer

from freight.cli.main import main
from freight.cli.terminal import EscapeMatcher, parse_detach_keys

CLI = [sys.executable, "-m", "freight.cli.main"]


def _paths(daemon) -> list[str]:
    return [f"{r.method} {r.path.split('/', 2)[-1]}" for r in daemon.requests]


# ------------------------------------------------------------------ exec
def test_exec_flow_order_body_and_exit_code(daemon, capfd):
    sim = SimContainer(daemon, running=True, exec_exit_code=7)
    argv = ["-H", daemon.host, "exec", "-e", "A=1", "-u", "nobody", "-w", "/tmp", "--privileged"]
    assert main([*argv, CID, "ls", "-l"]) == 7
    assert capfd.readouterr().out == "exec ls -l\n"
    assert _paths(daemon) == [
        f"GET containers/{CID}/json",
        f"POST containers/{CID}/exec",
        f"POST exec/{EID}/start",
        f"GET exec/{EID}/json",
    ]
    config = sim.exec_configs[0]
    assert config["Cmd"] == ["ls", "-l"]
    assert config["Env"] == ["A=1"]
    assert (config["User"], config["WorkingDir"], config["Privileged"]) == ("nobody", "/tmp", True)
    assert (config["AttachStdin"], config["AttachStdout"], config["AttachStderr"]) == (
        False,
        True,
        True,
    )
    assert sim.exec_starts == [{"Detach": False, "Tty": False}]
    start = next(r for r in daemon.requests if r.path.endswith("/start"))
    assert start.headers["connection"].lower() == "upgrade"
    assert start.headers["upgrade"] == "tcp"


def test_exec_detached_prints_nothing(daemon, capfd):
    sim = SimContainer(daemon, running=True)
    assert main(["-H", daemon.host, "exec", "-d", CID, "sleep", "5"]) == 0
    assert capfd.readouterr() == ("", "")
    assert sim.exec_configs[0]["AttachStdout"] is False
    assert sim.exec_starts == [{"Detach": True, "Tty": False}]
    assert not any(r.path.endswith(f"/exec/{EID}/json") for r in daemon.requests)


def test_exec_in_stopped_container_is_error_1(daemon, capfd):
    SimContainer(daemon, running=False)
    assert main(["-H", daemon.host, "exec", CID, "true"]) == 1
    assert f"Error response from daemon: container {CID} is not running" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ('exec: "nope": executable file not found in $PATH', 127),
        ("exec: permission denied", 126),
        ("something else", 1),
    ],
)
def test_exec_start_refused_exit_codes(daemon, capfd, message, status):
    sim = SimContainer(daemon, running=True)
    sim.exec_error = (500, message)
    assert main(["-H", daemon.host, "exec", CID, "nope"]) == status
    assert message in capfd.readouterr().err


def test_exec_missing_container_wins(daemon, capfd):
    SimContainer(daemon, running=True)
    assert main(["-H", daemon.host, "exec", "-it", "nosuch", "sh"]) == 1
    assert "page not found" in capfd.readouterr().err


def test_exec_stdin_is_copied_and_half_closed(daemon):
    sim = SimContainer(daemon, running=True)
    proc = subprocess.run(
        [*CLI, "-H", daemon.host, "exec", "-i", "--detach-keys", "ctrl-x,y", CID, "cat"],
        input=b"hello\n",
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"exec cat\nHELLO\nstdin closed\n"
    assert sim.processes[0].half_closed
    assert sim.exec_configs[0]["AttachStdin"] is True
    assert sim.exec_configs[0]["DetachKeys"] == "ctrl-x,y"


def test_exec_tty_needs_a_terminal(daemon):
    sim = SimContainer(daemon, running=True)
    proc = subprocess.run(
        [*CLI, "-H", daemon.host, "exec", "-it", CID, "sh"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 1
    assert b"the input device is not a TTY" in proc.stderr
    assert sim.exec_configs == []  # checked before the exec is created, as docker


# ------------------------------------------------------------------ run / attach
def test_run_tty_needs_a_terminal(daemon):
    SimContainer(daemon)
    proc = subprocess.run(
        [*CLI, "-H", daemon.host, "run", "-it", "busybox", "sh"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 1
    assert proc.stderr == b"freight: the input device is not a TTY\n"
    assert daemon.requests == []


def test_run_passes_detach_keys_to_attach(daemon):
    SimContainer(daemon)
    proc = subprocess.run(
        [*CLI, "-H", daemon.host, "run", "-i", "--detach-keys", "ctrl-x,y", "busybox", "cat"],
        input=b"abc",
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"hello\nABCstdin closed\n"
    attach = next(r for r in daemon.requests if r.path.endswith("/attach"))
    assert "detachKeys=ctrl-x%2Cy" in attach.query and "stdin=1" in attach.query


def test_run_daemon_side_detach_exits_0_without_waiting(daemon):
    sim = SimContainer(daemon)
    proc = subprocess.run(
        [*CLI, "-H", daemon.host, "run", "-i", "busybox", "cat"],
        input=b"abc\x10\x11",
        capture_output=True,
        timeout=20,
    )
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert sim.processes[0].detached and not sim.exited.is_set()


def _start_cli_with_stdin_open(daemon, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*CLI, "-H", daemon.host, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _read_until(proc.stdout.fileno(), b"hello\n")
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sig_proxy_posts_kill(daemon, sig):
    sim = SimContainer(daemon)
    proc = _start_cli_with_stdin_open(daemon, "run", "-i", "busybox", "cat")
    proc.send_signal(sig)
    assert proc.wait(20) == 130  # the simulated container exits 130 on TERM/INT
    assert sim.kills == [signal.Signals(sig).name.removeprefix("SIG")]


def test_sig_proxy_false_lets_the_signal_kill_the_cli(daemon):
    sim = SimContainer(daemon)
    proc = _start_cli_with_stdin_open(daemon, "run", "-i", "--sig-proxy=false", "busybox", "cat")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == -signal.SIGTERM
    assert sim.kills == []


def test_start_attach_interactive(daemon):
    sim = SimContainer(daemon, open_stdin=True, exit_code=0)
    proc = subprocess.run(
        [*CLI, "-H", daemon.host, "start", "-ai", CID],
        input=b"exit 4\n",
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == b"hello\nEXIT 4\n"
    assert [p.rsplit("/", 1)[-1] for p in _paths(daemon)] == [
        "json",
        "attach",
        "wait",
        "start",
    ]
    assert sim.processes[0].stdin


def test_attach_refuses_a_stopped_container(daemon, capfd):
    SimContainer(daemon, running=False)
    assert main(["-H", daemon.host, "attach", CID]) == 1
    assert "cannot attach to a stopped container, start it first" in capfd.readouterr().err


# ------------------------------------------------------------------ PTY sessions
def _read_until(fd: int, marker: bytes, timeout: float = 10) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {marker!r}; got {out!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    return out


class PtySession:
    """The CLI on the slave side of a PTY; the test holds the master and the slave."""

    def __init__(self, *args: str, rows: int = 30, cols: int = 100) -> None:
        import fcntl
        import struct

        self.master, self.slave = pty.openpty()
        self.winsize = struct.pack("HHHH", rows, cols, 0, 0)
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, self.winsize)
        self.before = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen(
            [*CLI, *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
        )

    def resize(self, rows: int, cols: int) -> None:
        import fcntl
        import struct

        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc.send_signal(signal.SIGWINCH)

    def modes(self) -> list:
        return termios.tcgetattr(self.slave)

    def stty(self) -> str:
        return subprocess.run(
            ["stty", "-a"], stdin=self.slave, capture_output=True, text=True
        ).stdout

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_session():
    made: list[PtySession] = []

    def make(*args: str) -> PtySession:
        made.append(PtySession(*args))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _wait_for(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_exec_tty_raw_mode_resize_and_exit(daemon, pty_session):
    sim = SimContainer(daemon, running=True, exec_exit_code=0)
    s = pty_session("-H", daemon.host, "exec", "-it", CID, "sh")
    stty_before = s.stty()
    _read_until(s.master, b"exec sh\n")
    assert not s.modes()[3] & termios.ICANON  # raw while the session runs
    assert "-icanon" in s.stty()
    _wait_for(lambda: len(sim.resizes) >= 1)
    s.resize(40, 120)
    _wait_for(lambda: len(sim.resizes) >= 2)
    assert sim.resizes == [("exec", 30, 100), ("exec", 40, 120)]
    assert sim.exec_configs[0]["ConsoleSize"] == [30, 100]
    assert sim.exec_starts[0] == {"Detach": False, "Tty": True, "ConsoleSize": [30, 100]}
    os.write(s.master, b"exit 5\n")
    assert s.proc.wait(20) == 5
    assert s.modes() == s.before
    assert s.stty().splitlines()[1:] == stty_before.splitlines()[1:]  # line 1 has the size


def test_exec_tty_detach_keys_read_escape_sequence(daemon, pty_session):
    sim = SimContainer(daemon, running=True)
    s = pty_session("-H", daemon.host, "exec", "-it", CID, "sh")
    _read_until(s.master, b"exec sh\n")
    os.write(s.master, b"ab\x10")
    _read_until(s.master, b"ab")
    os.write(s.master, b"\x11")
    out = _read_until(s.master, b"read escape sequence")
    assert s.proc.wait(20) == 1  # docker: "read escape sequence", status 1
    assert b"\x10" not in out and sim.processes[0].received == b"ab"
    assert s.modes() == s.before


@pytest.mark.parametrize(
    "args",
    [
        ("exec", "-it", CID, "sh"),
        ("attach", CID),
        ("run", "-it", "--sig-proxy=false", "busybox", "sh"),
    ],
)
def test_sigterm_restores_the_terminal(daemon, pty_session, args):
    SimContainer(daemon, tty=True, open_stdin=True, running=args[0] != "run")
    s = pty_session("-H", daemon.host, *args)
    stty_before = s.stty()
    _read_until(s.master, b"\n")
    assert "-icanon" in s.stty()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(20) == -signal.SIGTERM
    assert s.modes() == s.before
    assert s.stty() == stty_before


def test_run_tty_proxies_sigterm_like_docker_28(daemon, pty_session):
    sim = SimContainer(daemon)
    s = pty_session("-H", daemon.host, "run", "-it", "busybox", "sh")
    _read_until(s.master, b"hello\n")
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(20) == 130
    assert sim.kills == ["TERM"]
    assert s.modes() == s.before


def test_run_tty_detach_exits_0_and_container_runs_on(daemon, pty_session):
    sim = SimContainer(daemon)
    s = pty_session("-H", daemon.host, "run", "-it", "busybox", "sh")
    _read_until(s.master, b"hello\n")
    os.write(s.master, b"x\x10\x11")
    assert s.proc.wait(20) == 0
    assert not sim.exited.is_set()
    assert sim.resizes == [("container", 30, 100)]
    assert s.modes() == s.before


@pytest.mark.parametrize(("failures", "gives_up"), [(3, False), (50, True)])
def test_first_resize_is_retried_without_holding_the_stream(
    daemon, pty_session, failures, gives_up
):
    sim = SimContainer(daemon)
    sim.resize_failures = failures
    s = pty_session("-H", daemon.host, "run", "-it", "busybox", "sh")
    out = _read_until(s.master, b"hello\n")
    assert b"failed to resize" not in out  # output flows while retries run
    if gives_up:
        _read_until(s.master, b"failed to resize tty, using default size\n")
        assert sim.resizes == []
    else:
        _wait_for(lambda: sim.resizes == [("container", 30, 100)])
    os.write(s.master, b"exit 0\r")
    assert s.proc.wait(20) == 0


def test_attach_tty_nudges_the_size(daemon, pty_session):
    sim = SimContainer(daemon, tty=True, open_stdin=True, running=True)
    s = pty_session("-H", daemon.host, "attach", CID)
    _read_until(s.master, b"hello\n")
    _wait_for(lambda: len(sim.resizes) >= 2)
    assert sim.resizes == [("container", 31, 101), ("container", 30, 100)]
    os.write(s.master, b"exit 2\r")
    assert s.proc.wait(20) == 2


# ------------------------------------------------------------------ pieces
def test_detach_keys_parse_like_moby_term():
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x,ctrl-@,ctrl-_") == b"\x01x\x00\x1f"
    assert parse_detach_keys("ctrl-") == b"\x10\x11"  # invalid: docker falls back


def test_escape_matcher_holds_a_partial_match():
    m = EscapeMatcher(b"\x10\x11")
    assert m.feed(b"a\x10") == (b"a", False)
    assert m.feed(b"b") == (b"\x10b", False)
    assert m.feed(b"\x10\x10") == (b"\x10", False)
    assert m.feed(b"\x11rest") == (b"", True)
