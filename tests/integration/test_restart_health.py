"""Restart policies and healthchecks with real containers, through the freight CLI.

A crashing container restarts with growing delays and stops after N for
on-failure:N; a stop during the back-off ends it (and never signals pid 0);
probes make a container healthy, unhealthy, time out and leave no exec
behind; --health-on-failure=restart restarts it; an image's HEALTHCHECK
applies unless --no-healthcheck; at daemon start the policies bring back
what docker would.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def names(freightd) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def new() -> str:
        made.append("rh-" + secrets.token_hex(4))
        return made[-1]

    yield new
    if made:
        freightd.cli("rm", "-f", *made)


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def inspect(d, name: str) -> dict:
    return json.loads(ok(d.cli("inspect", name)))[0]


def wait_for(what: Callable[[], object], timeout: float = 10.0, step: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def ps_status(d, name: str) -> str:
    return ok(d.cli("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")).strip()


# restart policies -----------------------------------------------------------------


def test_on_failure_restarts_with_growing_delays_then_gives_up(freightd, names, tmp_path) -> None:
    name = names()
    since = f"{time.time() - 1:.3f}"
    starts = tmp_path / "starts"
    starts.touch()
    # Each run notes the host's uptime (not namespaced) in a bind-mounted file, then fails.
    ok(freightd.cli(
        "run", "-d", "--name", name, "--restart", "on-failure:4", "-v", f"{tmp_path}:/data",
        "busybox", "sh", "-c", "cut -d' ' -f1 /proc/uptime >> /data/starts; exit 3",
    ))  # fmt: skip
    wait_for(lambda: inspect(freightd, name)["State"]["Status"] == "exited"
             and len(starts.read_text().split()) == 5, timeout=20)  # fmt: skip
    state = inspect(freightd, name)
    assert state["RestartCount"] == 4
    assert state["State"]["ExitCode"] == 3
    assert state["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # dockerd's back-off: 0.1, 0.2, 0.4, 0.8 s before each restart (uptime has 10 ms steps).
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True):
        assert gap >= delay - 0.02, gaps
    assert gaps[3] > gaps[0] + 0.5, gaps
    time.sleep(1.0)
    assert len(starts.read_text().split()) == 5  # no fifth restart
    actions = events_of(freightd, name, since)
    lifecycle = [a for a in actions if a in ("create", "start", "die", "destroy")]
    assert lifecycle == ["create"] + ["start", "die"] * 5


def events_of(d, name: str, since: str) -> list[str]:
    until = f"{time.time() + 0.5:.3f}"
    r = d.cli("events", "--since", since, "--until", until, "--filter", f"container={name}",
              "--format", "{{.Action}}")  # fmt: skip
    return ok(r).split("\n")


def test_an_oom_killed_container_is_restarted(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--memory", "8m", "--memory-swap", "8m",
        "--restart", "on-failure:1", "busybox",
        "sh", "-c", "x=$(head -c 30000000 /dev/zero | tr '\\0' a)",
    ))  # fmt: skip
    state = wait_for(
        lambda: (s := inspect(freightd, name))["State"]["Status"] == "exited" and s, timeout=20
    )
    assert state["RestartCount"] == 1
    assert state["State"]["OOMKilled"] is True and state["State"]["ExitCode"] == 137
    events = ok(freightd.cli("events", "--since", "0", "--until", str(time.time()),
                             "--filter", f"container={name}", "--format", "{{.Action}}"))  # fmt: skip
    actions = [a for a in events.split() if a in ("oom", "die", "start")]
    assert actions == ["start", "oom", "die", "start", "oom", "die"]  # oom before each die


def test_stop_during_backoff_cancels_and_start_resets_the_count(freightd, names) -> None:
    name = names()
    ok(freightd.cli("run", "-d", "--name", name, "--restart", "always", "busybox", "false"))
    # After a few quick restarts the back-off is long enough to be seen waiting.
    wait_for(lambda: inspect(freightd, name)["RestartCount"] >= 4, timeout=15)
    state = wait_for(lambda: (s := inspect(freightd, name))["State"]["Restarting"] and s, 15)
    assert state["State"]["Status"] == "restarting"
    assert state["State"]["Running"] is True and state["State"]["Pid"] == 0
    assert ps_status(freightd, name).startswith("Restarting (1) ")
    count = state["RestartCount"]
    # pid 0 would be freightd's own process group: the daemon must outlive this stop.
    ok(freightd.cli("stop", name))
    after = inspect(freightd, name)
    assert after["State"]["Status"] == "exited" and after["State"]["Restarting"] is False
    time.sleep(1.0)
    assert inspect(freightd, name)["RestartCount"] == count
    assert inspect(freightd, name)["State"]["Status"] == "exited"
    ok(freightd.cli("start", name))  # an explicit start: restarts apply again, from 0
    wait_for(lambda: inspect(freightd, name)["RestartCount"] >= 1, timeout=10)
    assert inspect(freightd, name)["RestartCount"] < count


def test_kill_and_rm_of_a_restarting_container(freightd, names) -> None:
    name = names()
    ok(freightd.cli("run", "-d", "--name", name, "--restart", "unless-stopped", "busybox", "false"))
    wait_for(lambda: inspect(freightd, name)["RestartCount"] >= 4, timeout=15)
    wait_for(lambda: inspect(freightd, name)["State"]["Restarting"], timeout=15)
    ok(freightd.cli("kill", name))
    assert inspect(freightd, name)["State"]["Status"] == "exited"
    ok(freightd.cli("start", name))
    wait_for(lambda: inspect(freightd, name)["RestartCount"] >= 4, timeout=15)
    wait_for(lambda: inspect(freightd, name)["State"]["Restarting"], timeout=15)
    began = time.monotonic()
    ok(freightd.cli("rm", "-f", name))
    assert time.monotonic() - began < 5
    assert freightd.cli("inspect", name).returncode != 0


def test_a_user_stop_keeps_always_stopped(freightd, names) -> None:
    name = names()
    ok(freightd.cli("run", "-d", "--name", name, "--restart", "always", "--stop-timeout", "1",
                    "busybox", "sleep", "30"))  # fmt: skip
    ok(freightd.cli("stop", name))
    time.sleep(0.5)
    state = inspect(freightd, name)
    assert state["State"]["Status"] == "exited" and state["RestartCount"] == 0


def test_restart_policy_errors(freightd, names) -> None:
    r = freightd.cli("run", "-d", "--restart", "sometimes", "busybox", "true")
    assert r.returncode == 125
    assert (
        "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', "
        "'on-failure', or 'unless-stopped'" in r.stderr.decode()
    )
    r = freightd.cli("create", "--restart", "on-failure:-1", "busybox", "true")
    assert "invalid restart policy: maximum retry count cannot be negative" in r.stderr.decode()
    for command in ("run", "create"):  # word for word what docker 28 prints, and its status
        r = freightd.cli(command, "--rm", "--restart", "always", "busybox", "true")
        theirs = freightd.docker(command, "--rm", "--restart", "always", "busybox", "true")
        assert r.returncode == theirs.returncode == 125
        assert r.stderr.decode().replace("freight", "docker") == theirs.stderr.decode()
    r = freightd.cli("run", "--restart", "on-failure:x", "busybox", "true")
    assert "invalid restart policy format: maximum retry count must be an integer" in (
        r.stderr.decode()
    )


# healthchecks ---------------------------------------------------------------------


def exec_dirs(d, name: str) -> list[Path]:
    cid = inspect(d, name)["Id"]
    execs = d.exec_root / "containers" / cid / "execs"
    return list(execs.iterdir()) if execs.is_dir() else []


def test_healthy_container(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "echo ok; exit 0",
        "--health-interval", "150ms", "busybox", "sleep", "30",
    ))  # fmt: skip
    assert inspect(freightd, name)["State"]["Health"]["Status"] in ("starting", "healthy")
    wait_for(lambda: inspect(freightd, name)["State"]["Health"]["Status"] == "healthy")
    assert ps_status(freightd, name).endswith("(healthy)")
    listed = ok(freightd.cli("ps", "--filter", "health=healthy", "--format", "{{.Names}}"))
    assert name in listed.split()
    wait_for(lambda: len(inspect(freightd, name)["State"]["Health"]["Log"]) == 5)
    state = inspect(freightd, name)
    entry = state["State"]["Health"]["Log"][-1]
    assert entry["ExitCode"] == 0 and entry["Output"] == "ok\n"
    assert state["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "echo ok; exit 0"],
        "Interval": 150_000_000,
    }
    hc = ok(freightd.cli("inspect", "--format", "{{.State.Health.Status}}", name)).strip()
    assert hc == "healthy"
    # Probes leave no exec records or state directories behind.
    time.sleep(0.3)
    assert len(exec_dirs(freightd, name)) <= 1


def test_unhealthy_then_stopped(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "echo bad >&2; exit 1",
        "--health-interval", "100ms", "--health-retries", "2", "--stop-timeout", "1",
        "busybox", "sleep", "30",
    ))  # fmt: skip
    wait_for(lambda: inspect(freightd, name)["State"]["Health"]["Status"] == "unhealthy")
    h = inspect(freightd, name)["State"]["Health"]
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1 and h["Log"][-1]["Output"] == "bad\n"
    assert ps_status(freightd, name).endswith("(unhealthy)")
    ok(freightd.cli("stop", "-t", "0", name))
    before = inspect(freightd, name)["State"]["Health"]
    time.sleep(0.4)
    after = inspect(freightd, name)["State"]["Health"]
    assert after["Log"] == before["Log"]  # no probe once stopped
    assert after["Status"] == "unhealthy"


def test_start_period_and_capped_output(freightd, names) -> None:
    name = names()
    began = time.monotonic()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "head -c 9000 /dev/zero | tr '\\0' x; exit 1",
        "--health-start-period", "1500ms", "--health-start-interval", "100ms",
        "--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "30",
    ))  # fmt: skip
    wait_for(lambda: len(inspect(freightd, name)["State"]["Health"]["Log"]) >= 3)
    h = inspect(freightd, name)["State"]["Health"]
    if time.monotonic() - began < 1.4:  # failures in the start period do not count
        assert h["Status"] == "starting" and h["FailingStreak"] == 0
    wait_for(lambda: inspect(freightd, name)["State"]["Health"]["Status"] == "unhealthy")
    assert time.monotonic() - began >= 1.5
    output = inspect(freightd, name)["State"]["Health"]["Log"][-1]["Output"]
    assert output == "x" * 4096 + "..."


def test_a_hanging_probe_is_killed_at_its_timeout(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "sleep 21.5", "--health-timeout", "200ms",
        "--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "30",
    ))  # fmt: skip
    wait_for(lambda: inspect(freightd, name)["State"]["Health"]["Status"] == "unhealthy")
    entry = inspect(freightd, name)["State"]["Health"]["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (200ms)"
    # The hung probes were killed: at most the one in flight is left.
    time.sleep(0.5)
    assert len(host_processes(b"sleep\x0021.5\x00")) <= 1


def host_processes(cmdline: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == cmdline:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_health_on_failure_restart(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "exit 1", "--health-interval", "100ms",
        "--health-retries", "1", "--health-on-failure", "restart", "--stop-timeout", "1",
        "busybox", "sleep", "30",
    ))  # fmt: skip
    wait_for(lambda: inspect(freightd, name)["RestartCount"] >= 1, timeout=10)
    state = wait_for(lambda: (s := inspect(freightd, name))["State"]["Running"] and s, 10)
    assert state["Config"]["Healthcheck"]["OnFailure"] == "restart"
    assert state["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_health_on_failure_stop(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "exit 1", "--health-interval", "100ms",
        "--health-retries", "1", "--health-on-failure", "stop", "--stop-timeout", "1",
        "--restart", "unless-stopped", "busybox", "sleep", "30",
    ))  # fmt: skip
    wait_for(lambda: inspect(freightd, name)["State"]["Status"] == "exited", timeout=10)
    time.sleep(0.3)
    assert inspect(freightd, name)["RestartCount"] == 0


def test_image_healthcheck_and_no_healthcheck(freightd, names, tmp_path) -> None:
    tag = "rh-health-" + secrets.token_hex(3)
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nHEALTHCHECK --interval=150ms --retries=2 CMD ["true"]\n'
    )
    ok(freightd.cli("build", "-q", "-t", tag, str(tmp_path), timeout=120))
    try:
        with_check, without = names(), names()
        ok(freightd.cli("run", "-d", "--name", with_check, tag, "sleep", "30"))
        ok(freightd.cli("run", "-d", "--name", without, "--no-healthcheck", tag, "sleep", "30"))
        wait_for(lambda: inspect(freightd, with_check)["State"]["Health"]["Status"] == "healthy")
        assert inspect(freightd, with_check)["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]
        state = inspect(freightd, without)
        assert "Health" not in state["State"]
        # As dockerd's merge: NONE, with the image's other fields filled in.
        assert state["Config"]["Healthcheck"]["Test"] == ["NONE"]
        # The request overrides the image's command and keeps its other fields.
        custom = names()
        ok(freightd.cli("run", "-d", "--name", custom, "--health-cmd", "exit 1", tag,
                        "sleep", "30"))  # fmt: skip
        wait_for(lambda: inspect(freightd, custom)["State"]["Health"]["Status"] == "unhealthy")
        assert inspect(freightd, custom)["Config"]["Healthcheck"]["Retries"] == 2
    finally:
        freightd.cli("rmi", "-f", tag)


def test_health_restarts_from_starting_after_a_start(freightd, names) -> None:
    name = names()
    ok(freightd.cli(
        "run", "-d", "--name", name, "--health-cmd", "exit 0", "--health-interval", "300ms",
        "--stop-timeout", "1", "busybox", "sleep", "30",
    ))  # fmt: skip
    wait_for(lambda: inspect(freightd, name)["State"]["Health"]["Status"] == "healthy")
    ok(freightd.cli("stop", "-t", "0", name))
    ok(freightd.cli("start", name))
    h = inspect(freightd, name)["State"]["Health"]
    assert h["Status"] == "starting" and h["Log"]  # the log outlives the run
    wait_for(lambda: inspect(freightd, name)["State"]["Health"]["Status"] == "healthy")


def test_health_flag_errors(freightd) -> None:
    r = freightd.cli("run", "--health-interval", "5", "busybox", "true")
    assert r.returncode == 125
    assert (
        'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"'
        in r.stderr.decode()
    )
    r = freightd.cli("run", "--no-healthcheck", "--health-cmd", "true", "busybox", "true")
    assert "--no-healthcheck conflicts with --health-* options" in r.stderr.decode()
    r = freightd.cli("create", "--health-interval", "500us", "busybox", "true")
    assert "Interval in Healthcheck cannot be less than 1ms" in r.stderr.decode()


# daemon start ---------------------------------------------------------------------


def test_policies_at_daemon_start(own_daemon, daemon_tools) -> None:
    d = own_daemon

    def run(name: str, policy: str, *cmd: str) -> None:
        ok(d.cli("run", "-d", "--name", name, "--restart", policy, "--stop-timeout", "1",
                 "busybox", *cmd))  # fmt: skip

    run("always-stopped", "always", "sleep", "60")
    run("unless-stopped-by-user", "unless-stopped", "sleep", "60")
    run("unless-stopped-running", "unless-stopped", "sleep", "60")
    run("on-failure-clean", "on-failure:3", "true")
    run("no-running", "no", "sleep", "60")
    run("always-crashing", "always", "false")
    ok(d.cli("stop", "-t", "0", "always-stopped", "unless-stopped-by-user"))
    wait_for(lambda: inspect(d, "on-failure-clean")["State"]["Status"] == "exited")
    wait_for(lambda: inspect(d, "always-crashing")["RestartCount"] >= 3)
    daemon_tools.stop(d)  # without --live-restore: the running ones are stopped, not by the user
    d2 = daemon_tools.start(d.root, d.cgroup_parent)
    d.proc = d2.proc
    status = {
        n: inspect(d2, n)["State"]["Status"]
        for n in (
            "always-stopped", "unless-stopped-by-user", "unless-stopped-running",
            "on-failure-clean", "no-running",
        )
    }  # fmt: skip
    assert status == {
        "always-stopped": "running",
        "unless-stopped-by-user": "exited",
        "unless-stopped-running": "running",
        "on-failure-clean": "exited",
        "no-running": "exited",
    }
    # The crash loop caught in a back-off by the shutdown goes on, counted from 0 again.
    wait_for(lambda: 1 <= inspect(d2, "always-crashing")["RestartCount"] <= 3)
