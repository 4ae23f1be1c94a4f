"""freightd --live-restore: containers keep running while the daemon stops,
restarts or is upgraded, and everything works on them afterwards (logs -f,
attach, exec, kill, wait, stop, stats, top, published ports, DNS of user
networks, --rm). Without it, a daemon stop stops the containers (their stop
signal, then SIGKILL after their stop timeout, within the shutdown timeout)
and their restart policies bring them back at the next start.

Each module's daemon is its own (a private root), restarted by the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

TICKER = 'trap "echo bye; exit 0" TERM; echo ready; i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.2; done'  # noqa: E501
IGNORE_TERM = 'trap "" TERM; echo ready; while true; do sleep 0.05; done'


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    return result.stdout.decode()


def poll(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def state(d, ref: str) -> dict:
    return json.loads(ok(d.cli("inspect", ref)))[0]["State"]


def http_get(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.1)


class LiveDaemon:
    """A --live-restore daemon on a root of its own, restartable."""

    def __init__(self, tools, root: Path, cgroup_parent: str) -> None:
        self.tools, self.root, self.cgroup_parent = tools, root, cgroup_parent
        self.d = tools.start(root, cgroup_parent, "--live-restore")

    def restart(self, sig: int = signal.SIGTERM, down: float = 0.0) -> None:
        self.d.proc.send_signal(sig)
        assert self.d.proc.wait(15) in (0, -signal.SIGKILL)
        time.sleep(down)
        self.d = self.tools.start(self.root, self.cgroup_parent, "--live-restore")


@pytest.fixture(scope="module")
def live(daemon_tools, run_id: str) -> Iterator[LiveDaemon]:
    if os.geteuid() != 0:
        pytest.skip("needs root (freightd)")
    root = Path(f"/tmp/freight-test-{run_id}-live")
    root.mkdir(parents=True)
    cgroup_parent = f"freight-test-{run_id}-live"
    daemon = None
    try:
        daemon = LiveDaemon(daemon_tools, root, cgroup_parent)
        ok(daemon.d.cli("image", "bootstrap", "busybox", timeout=120))
        yield daemon
    finally:
        if daemon is not None:
            ids = daemon.d.cli("ps", "-aq").stdout.decode().split()
            if ids:
                daemon.d.cli("rm", "-f", *ids)
            daemon_tools.stop(daemon.d)
        daemon_tools.cleanup(root, cgroup_parent)


def test_info_says_live_restore(live, freightd) -> None:
    fmt = ("info", "--format", "{{.LiveRestoreEnabled}}")
    assert ok(live.d.docker(*fmt)) == "true\n"
    assert ok(freightd.docker(*fmt)) == "false\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "kill-9"])
def test_logs_exec_stop_after_a_restart(live, sig: signal.Signals) -> None:
    d = live.d
    name = f"lr-ticker-{sig.name.lower()}"
    ok(d.cli("run", "-d", "--name", name, "busybox", "sh", "-c", TICKER))
    poll(lambda: "tick2" in ok(d.cli("logs", name)), what="ticks")
    pid = state(d, name)["Pid"]
    live.restart(sig)
    d = live.d
    assert state(d, name)["Status"] == "running"
    assert state(d, name)["Pid"] == pid
    # logs -f started after the restart shows the old lines and keeps following.
    follow = subprocess.Popen(
        [sys.executable, "-m", "freight.cli.main", "logs", "-f", name], env=d.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        seen = poll(lambda: int(ok(d.cli("logs", name)).split()[-1][4:]), what="tick")
        assert ok(d.cli("exec", name, "echo", "exec-ok")) == "exec-ok\n"
        stats = json.loads(ok(d.docker("stats", "--no-stream", "--format", "{{json .}}",
                                       name)))  # fmt: skip
        assert stats["Name"] == name and stats["PIDs"] != "0"
        assert "sh -c" in ok(d.docker("top", name))
        poll(lambda: int(ok(d.cli("logs", name)).split()[-1][4:]) > seen + 2, what="more")
        assert ok(d.cli("stop", "-t", "10", name)) == name + "\n"
        output, _ = follow.communicate(timeout=15)  # ends with the container
    finally:
        if follow.poll() is None:
            follow.kill()
    lines = output.decode().split()
    assert lines[0] == "ready" and lines[-1] == "bye"
    ticks = [int(t[4:]) for t in lines if t.startswith("tick")]
    assert ticks == list(range(1, len(ticks) + 1)) and ticks[-1] > seen
    assert state(d, name)["ExitCode"] == 0
    assert not Path(f"/proc/{pid}").exists()
    ok(d.cli("rm", name))


def test_attach_kill_wait_after_a_restart(live) -> None:
    d = live.d
    echo = 'while read l; do echo "got $l"; done'
    ok(d.cli("run", "-d", "-i", "--name", "lr-talk", "busybox", "sh", "-c", echo))
    live.restart(down=0.5)
    d = live.d
    wait = subprocess.Popen(
        ["docker", "-H", d.host, "wait", "lr-talk"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    attach = subprocess.Popen(
        ["docker", "-H", d.host, "attach", "lr-talk"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        attach.stdin.write(b"hello\n")
        attach.stdin.flush()
        assert attach.stdout.readline() == b"got hello\n"
        ok(d.docker("kill", "lr-talk"))
        assert wait.communicate(timeout=15)[0] == b"137\n"
        attach.communicate(timeout=15)
    finally:
        for p in (wait, attach):
            if p.poll() is None:
                p.kill()
    assert state(d, "lr-talk")["ExitCode"] == 137
    ok(d.cli("rm", "lr-talk"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stop", "kill-9"])
def test_ports_and_dns_after_a_restart(live, sig: signal.Signals) -> None:
    d = live.d
    ok(d.cli("network", "create", "lr-net"))
    try:
        script = "echo kept > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"
        ok(d.cli("run", "-d", "--name", "lr-web", "--network", "lr-net", "-p", "127.0.0.1::8080",
                 "busybox", "sh", "-c", script))  # fmt: skip
        ok(d.cli("run", "-d", "--name", "lr-client", "--network", "lr-net", "busybox",
                 "sleep", "600"))  # fmt: skip
        port = json.loads(ok(d.cli("inspect", "lr-web")))[0]["NetworkSettings"]["Ports"][
            "8080/tcp"
        ][0]["HostPort"]
        assert http_get(f"http://127.0.0.1:{port}/index.html").strip() == "kept"
        live.restart(sig)
        d = live.d
        # The NAT rule and the bound port are back; the embedded DNS answers again.
        assert http_get(f"http://127.0.0.1:{port}/index.html").strip() == "kept"
        fetched = ok(d.cli("exec", "lr-client", "wget", "-qO-", "http://lr-web:8080/index.html"))
        assert fetched == "kept\n"
        assert f"127.0.0.1:{port}->8080/tcp" in ok(d.cli("ps", "--format", "{{.Ports}}"))
    finally:
        d.cli("rm", "-f", "lr-web", "lr-client")
        d.cli("network", "rm", "lr-net")


def test_rm_containers_that_exit_while_down_or_after(live) -> None:
    d = live.d
    ok(d.cli("run", "-d", "--rm", "--name", "lr-brief", "busybox", "sleep", "0.5"))
    ok(d.cli("run", "-d", "--rm", "--name", "lr-later", "busybox", "sleep", "8"))
    live.restart(down=1.5)  # lr-brief exits meanwhile, lr-later after the restart
    d = live.d
    names = lambda: ok(d.cli("ps", "-a", "--format", "{{.Names}}")).split()  # noqa: E731
    poll(lambda: "lr-brief" not in names(), what="lr-brief removed")
    assert "lr-later" in names()
    poll(lambda: "lr-later" not in names(), timeout=15, what="lr-later removed")


def test_a_crash_is_survived_too(live) -> None:
    d = live.d
    ok(d.cli("run", "-d", "--name", "lr-crash", "busybox", "sleep", "600"))
    pid = state(d, "lr-crash")["Pid"]
    live.restart(signal.SIGKILL)
    d = live.d
    assert state(d, "lr-crash")["Pid"] == pid
    assert ok(d.cli("rm", "-f", "lr-crash")) == "lr-crash\n"
    assert not Path(f"/proc/{pid}").exists()


# without --live-restore --------------------------------------------------------------


def test_stop_without_live_restore_stops_containers(private_root, daemon_tools) -> None:
    root, cgroup_parent = private_root
    d = daemon_tools.start(root, cgroup_parent, "--shutdown-timeout", "3")
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        ok(d.cli("run", "-d", "--name", "polite", "busybox", "sh", "-c", TICKER))
        ok(d.cli("run", "-d", "--name", "stubborn", "--stop-timeout", "1", "busybox", "sh",
                 "-c", IGNORE_TERM))  # fmt: skip
        ok(d.cli("run", "-d", "--name", "slow", "--stop-timeout", "60", "busybox", "sh",
                 "-c", IGNORE_TERM))  # fmt: skip
        ok(d.cli("run", "-d", "--rm", "--name", "tidy", "busybox", "sleep", "600"))
        for name in ("polite", "stubborn", "slow"):
            poll(lambda n=name: "ready" in ok(d.cli("logs", n)), what=f"{name} ready")
        pids = {n: state(d, n)["Pid"] for n in ("polite", "stubborn", "slow", "tidy")}
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(15) == 0
        took = time.monotonic() - started
        # In parallel, bounded: "slow" (60 s) is killed at the 3 s shutdown timeout.
        assert 1 <= took < 8, took
        for name, pid in pids.items():
            assert not Path(f"/proc/{pid}").exists(), f"{name} still runs"
        d = daemon_tools.start(root, cgroup_parent)
        got = {n: state(d, n) for n in ("polite", "stubborn", "slow")}
        assert {n: (s["Status"], s["ExitCode"]) for n, s in got.items()} == {
            "polite": ("exited", 0),
            "stubborn": ("exited", 137),
            "slow": ("exited", 137),
        }
        assert ok(d.cli("logs", "polite")).split()[-1] == "bye"
        assert "tidy" not in ok(d.cli("ps", "-a", "--format", "{{.Names}}")).split()
        ok(d.cli("rm", "polite", "stubborn", "slow"))
    finally:
        daemon_tools.stop(d)


def test_restart_policies_apply_after_a_stop_without_live_restore(
    private_root, daemon_tools
) -> None:
    root, cgroup_parent = private_root
    d = daemon_tools.start(root, cgroup_parent)
    try:
        ok(d.cli("image", "bootstrap", "busybox", timeout=120))
        for name, policy in [("always", "always"), ("unless", "unless-stopped"),
                             ("user-stopped", "unless-stopped"), ("never", "no")]:  # fmt: skip
            ok(d.cli("run", "-d", "--name", name, "--restart", policy, "--stop-timeout", "1",
                     "busybox", "sleep", "600"))  # fmt: skip
        ok(d.cli("stop", "-t", "0", "user-stopped"))
        old = {n: state(d, n)["Pid"] for n in ("always", "unless", "never")}
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(20) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in old.values())
        d = daemon_tools.start(root, cgroup_parent)
        running = lambda n: state(d, n)["Running"]  # noqa: E731
        poll(lambda: running("always") and running("unless"), what="policies applied")
        assert state(d, "always")["Pid"] != old["always"]
        assert not running("user-stopped")  # the user's stop holds for unless-stopped
        assert not running("never")
        assert state(d, "never")["ExitCode"] == 137  # pid 1 ignores SIGTERM: killed at 1 s
        ok(d.cli("rm", "-f", "always", "unless", "user-stopped", "never"))
    finally:
        daemon_tools.stop(d)
