"""End to end: containers through the freight CLI and the real docker CLI.

Every test that makes sense for both clients runs twice (`cli` fixture), so
the freight CLI is held to what `docker` shows against the same daemon.
Containers get unique names and are removed at teardown (`names` fixture).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CLIS = ("freight", "docker")
Cli = Callable[..., subprocess.CompletedProcess]

# Docker's default capability set (14 caps) as /proc/self/status shows it.
DOCKER_ROOT_CAPEFF = "00000000a80425fb"
TRAP_TERM = 'trap "echo bye; exit 0" TERM; echo ready; while true; do sleep 0.05; done'
SLEEP = ["sleep", "30"]


@pytest.fixture(params=CLIS)
def cli(request: pytest.FixtureRequest, freightd) -> Cli:
    """The freight CLI or the docker CLI, both pointed at the session daemon."""
    return freightd.cli if request.param == "freight" else freightd.docker


@pytest.fixture
def names(freightd) -> Iterator[Callable[[], str]]:
    """Unique container names; every container so named is removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"fx-{secrets.token_hex(4)}")
        return made[-1]

    yield new
    if made:
        freightd.docker("rm", "-f", *made)


def out(result: subprocess.CompletedProcess) -> str:
    """stdout of a command that must have succeeded."""
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


def err(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode()


def poll(check: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def inspect(d, name: str, fmt: str) -> str:
    return out(d.docker("inspect", "-f", fmt, name)).strip()


def wait_for_log(d, name: str, text: str) -> None:
    poll(lambda: text in d.docker("logs", name).stdout.decode(), what=f"{text!r} in logs")


# run: output and exit codes -------------------------------------------------


def test_run_output_and_exit_code(cli: Cli) -> None:
    r = cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == b"out\n"
    assert "err" in err(r)


def test_run_command_not_found_is_127(cli: Cli) -> None:
    r = cli("run", "--rm", "busybox", "nosuchcmd")
    assert r.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in err(r)


def test_run_not_executable_is_126(cli: Cli) -> None:
    r = cli("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126
    assert "permission denied" in err(r)


def test_run_daemon_error_is_125_with_one_line(cli: Cli) -> None:
    r = cli("run", "--rm", "-m", "1m", "busybox", "true")
    assert r.returncode == 125
    first = err(r).strip().splitlines()[0]
    assert re.fullmatch(
        r"(freight|docker): Error response from daemon: Minimum memory limit allowed is 6MB\.?",
        first,
    ), first


def test_run_unknown_image(cli: Cli) -> None:
    image = f"nosuch-{secrets.token_hex(3)}"
    r = cli("run", "--rm", image, "true")
    assert r.returncode == 125
    assert f"Unable to find image '{image}:latest' locally" in err(r)


def test_run_invalid_memory_value_names_it(cli: Cli) -> None:
    r = cli("run", "--rm", "--memory", "12xb", "busybox", "true")
    assert r.returncode == 125
    assert '"12xb"' in err(r) and "--memory" in err(r)


# run: process settings -------------------------------------------------------


def test_run_env_user_workdir_hostname(cli: Cli, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=f1\n\nPASSED\n")
    r = cli(
        "run", "--rm", "-e", "A=1", "--env-file", str(env_file), "-u", "nobody",
        "-w", "/tmp", "-h", "myhost", "busybox",
        "sh", "-c", 'echo "$A $FROM_FILE $PASSED"; id -u; pwd; hostname; cat /etc/hostname',
    )  # fmt: skip
    # PASSED has no value in the file: taken from the client's environment (unset here).
    assert out(r).splitlines() == ["1 f1 ", "65534", "/tmp", "myhost", "myhost"]


def test_run_env_file_value_from_client_environment(freightd, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("PASSED\n")
    args = ["run", "--rm", "--env-file", str(env_file), "busybox", "sh", "-c", "echo $PASSED"]
    for argv in ([sys.executable, "-m", "freight.cli.main"], ["docker", "-H", freightd.host]):
        r = subprocess.run(
            [*argv, *args],
            env={**freightd.env, "PASSED": "from-client"}, capture_output=True, timeout=60,
        )  # fmt: skip
        assert out(r) == "from-client\n", argv


def test_run_missing_env_file_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    r = cli("run", "--rm", "--env-file", str(missing), "busybox", "true")
    assert r.returncode == 125
    assert f"open {missing}: no such file or directory" in err(r)


def test_run_malformed_env_file_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.env"
    bad.write_text("GOOD=1\nBAD NAME=2\n")
    r = cli("run", "--rm", "--env-file", str(bad), "busybox", "true")
    assert r.returncode == 125
    assert "variable 'BAD NAME' contains whitespaces" in err(r)


def test_run_entrypoint(cli: Cli) -> None:
    r = cli("run", "--rm", "--entrypoint", "/bin/echo", "busybox", "hello", "world")
    assert out(r) == "hello world\n"


def test_run_pid1_capabilities_and_readonly_sys(cli: Cli) -> None:
    script = "echo $$; grep CapEff /proc/self/status; touch /sys/x 2>/dev/null; echo sys=$?"
    lines = out(cli("run", "--rm", "busybox", "sh", "-c", script)).splitlines()
    assert lines[0] == "1"
    assert lines[1].split() == ["CapEff:", DOCKER_ROOT_CAPEFF]
    assert lines[2] == "sys=1"


def test_run_non_root_user_has_no_effective_caps(freightd) -> None:
    r = freightd.docker(
        "run", "--rm", "-u", "nobody", "busybox", "grep", "CapEff", "/proc/self/status"
    )
    assert out(r).split() == ["CapEff:", "0000000000000000"]


def test_run_labels_visible_in_inspect(cli: Cli, names, freightd) -> None:
    name = names()
    out(cli("run", "--name", name, "-l", "team=infra", "-l", "tier", "busybox", "true"))
    labels = inspect(freightd, name, "{{json .Config.Labels}}")
    assert labels == '{"team":"infra","tier":""}'


LIMITS = {
    # (controller, cgroup v1 file): expected value for -m 64m --memory-swap 128m --cpus 0.5 --pids-limit 50
    ("memory", "memory.limit_in_bytes"): str(64 << 20),
    ("memory", "memory.memsw.limit_in_bytes"): str(128 << 20),
    ("cpu", "cpu.cfs_quota_us"): "50000",
    ("cpu", "cpu.cfs_period_us"): "100000",
    ("pids", "pids.max"): "50",
}


def test_run_resource_limits_seen_from_inside(cli: Cli, names, freightd) -> None:
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("cgroup v2 host: the v1 file names below do not apply")
    name = names()
    args = ["-m", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "50"]
    present = [k for k in LIMITS if Path("/sys/fs/cgroup", k[0], k[1]).exists()]
    if not present:
        pytest.skip("no cgroup v1 controllers on this host")
    script = "; ".join(f"cat /sys/fs/cgroup/{c}/{f}" for c, f in present)
    r = cli("run", "--rm", "--name", name, *args, "busybox", "sh", "-c", script)
    assert out(r).split() == [LIMITS[k] for k in present]


def test_run_resource_limits_on_host_cgroup(names, freightd) -> None:
    name = names()
    cid = out(freightd.docker("run", "-d", "--name", name, "-m", "64m", "--memory-swap", "128m",
                              "--cpus", "0.5", "--pids-limit", "50", "busybox", *SLEEP)).strip()  # fmt: skip
    seen = {}
    for controller, file in LIMITS:
        path = Path("/sys/fs/cgroup", controller, freightd.cgroup_parent, cid, file)
        if path.parent.parent.parent.is_dir():
            seen[(controller, file)] = path.read_text().strip()
    if not seen:
        pytest.skip("no cgroup v1 controllers on this host")
    assert seen == {k: LIMITS[k] for k in seen}


def test_run_rm_removes_container(cli: Cli, names, freightd) -> None:
    name = names()
    assert out(cli("run", "--rm", "--name", name, "busybox", "echo", "x")) == "x\n"
    r = poll(lambda: (p := freightd.docker("inspect", name)).returncode != 0 and p, what="removal")
    assert f"No such object: {name}" in err(r) or f"No such container: {name}" in err(r)


def test_run_detached_prints_full_id(cli: Cli, names, freightd) -> None:
    name = names()
    cid = out(cli("run", "-d", "--name", name, "busybox", *SLEEP)).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert inspect(freightd, name, "{{.Id}} {{.State.Running}}") == f"{cid} true"


def test_run_gives_random_adjective_surname_names(cli: Cli, freightd) -> None:
    label = f"fx.random={secrets.token_hex(4)}"
    cid = out(cli("create", "-l", label, "busybox", "true")).strip()
    try:
        name = inspect(freightd, cid, "{{.Name}}")
        assert re.fullmatch(r"/[a-z]+_[a-z]+[0-9]*", name), name
    finally:
        freightd.docker("rm", "-f", cid)


def test_run_name_conflict(cli: Cli, names, freightd) -> None:
    name = names()
    cid = out(freightd.docker("create", "--name", name, "busybox", "true")).strip()
    r = cli("run", "--name", name, "busybox", "true")
    assert r.returncode == 125
    assert (
        f'Conflict. The container name "/{name}" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name." in err(r)
    )


# lifecycle -------------------------------------------------------------------


def test_create_then_start(cli: Cli, names, freightd) -> None:
    name = names()
    cid = out(cli("create", "--name", name, "busybox", "echo", "created")).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert inspect(freightd, name, "{{.State.Status}}") == "created"
    assert out(cli("start", name)).strip() == name
    assert out(cli("wait", name)).strip() == "0"
    assert out(cli("logs", name)) == "created\n"


def test_stop_sends_stop_signal_first(cli: Cli, names, freightd) -> None:
    name = names()
    out(cli("run", "-d", "--name", name, "busybox", "sh", "-c", TRAP_TERM))
    wait_for_log(freightd, name, "ready")
    assert out(cli("stop", "-t", "10", name)).strip() == name
    assert inspect(freightd, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert "bye" in out(freightd.docker("logs", name))


def test_stop_kills_after_timeout(cli: Cli, names, freightd) -> None:
    name = names()
    out(cli("run", "-d", "--name", name, "busybox", *SLEEP))
    started = time.monotonic()
    out(cli("stop", "-t", "1", name))
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 8, elapsed  # PID 1 ignores TERM without a handler
    assert inspect(freightd, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


def test_stop_and_start_are_idempotent(cli: Cli, names) -> None:
    name = names()
    out(cli("create", "--name", name, "busybox", "true"))
    assert out(cli("stop", name)) == f"{name}\n"  # 304 from the daemon: not an error
    out(cli("run", "-d", "--name", (running := names()), "busybox", *SLEEP))
    assert out(cli("start", running)) == f"{running}\n"


def test_rm_force_of_missing_container_is_not_a_failure(cli: Cli) -> None:
    r = cli("rm", "-f", "fx-no-such-container")
    assert r.returncode == 0
    assert "No such container: fx-no-such-container" in err(r)
    assert cli("rm", "fx-no-such-container").returncode != 0


def test_kill_with_signal_and_wait(cli: Cli, names, freightd) -> None:
    name = names()
    script = 'trap "exit 7" USR1; echo ready; while true; do sleep 0.05; done'
    out(cli("run", "-d", "--name", name, "busybox", "sh", "-c", script))
    wait_for_log(freightd, name, "ready")
    assert out(cli("kill", "-s", "USR1", name)).strip() == name
    assert out(cli("wait", name)).strip() == "7"


def test_kill_not_running_is_an_error(cli: Cli, names) -> None:
    name = names()
    out(cli("create", "--name", name, "busybox", "true"))
    r = cli("kill", name)
    assert r.returncode != 0
    assert "is not running" in err(r)


def test_restart(cli: Cli, names, freightd) -> None:
    name = names()
    out(cli("run", "-d", "--name", name, "busybox", *SLEEP))
    pid_before = inspect(freightd, name, "{{.State.Pid}}")
    assert out(cli("restart", "-t", "0", name)).strip() == name
    state = inspect(freightd, name, "{{.State.Running}} {{.State.Pid}}").split()
    assert state[0] == "true" and state[1] not in (pid_before, "0")


def test_wait_prints_exit_code(cli: Cli, names) -> None:
    name = names()
    out(cli("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 0.2; exit 42"))
    r = cli("wait", name)
    assert out(r).strip() == "42"


def test_rm_running_needs_force(cli: Cli, names, freightd) -> None:
    name = names()
    cid = out(cli("run", "-d", "--name", name, "busybox", *SLEEP)).strip()
    r = cli("rm", name)
    assert r.returncode != 0  # docker 1, freight 125 (see the report)
    assert (
        f"You cannot remove a running container {cid}. Stop the container before "
        "attempting removal or force remove" in err(r)
    )
    assert out(cli("rm", "-f", name)).strip() == name
    assert freightd.docker("inspect", "--type", "container", name).returncode == 1


# logs ------------------------------------------------------------------------


def test_logs_tail_and_timestamps(cli: Cli, names) -> None:
    name = names()
    out(cli("run", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3 4; do echo l$i; done"))
    assert out(cli("logs", name)) == "l1\nl2\nl3\nl4\n"
    assert out(cli("logs", "--tail", "2", name)) == "l3\nl4\n"
    stamped = out(cli("logs", "-t", "--tail", "1", name))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z l4\n", stamped), stamped


def test_logs_keep_stdout_and_stderr_apart(cli: Cli, names) -> None:
    name = names()
    out(cli("run", "--name", name, "busybox", "sh", "-c", "echo o; echo e >&2"))
    r = cli("logs", name)
    assert (r.stdout, r.stderr) == (b"o\n", b"e\n")


def test_logs_follow_ends_when_container_exits(cli: Cli, names) -> None:
    name = names()
    out(cli("run", "-d", "--name", name, "busybox", "sh", "-c", "echo a; sleep 0.5; echo b"))
    r = cli("logs", "-f", name, timeout=15)
    assert out(r) == "a\nb\n"


# ps ----------------------------------------------------------------------------


@pytest.fixture
def two_containers(names, freightd) -> tuple[str, str, str, str]:
    """One exited and one running container, both labelled; returns (label, exited, running, running id)."""
    label = f"fx.ps={secrets.token_hex(4)}"
    exited, running = names(), names()
    out(freightd.docker("run", "--name", exited, "-l", label, "busybox", "true"))
    rid = out(freightd.docker("run", "-d", "--name", running, "-l", label, "busybox", *SLEEP))
    return label, exited, running, rid.strip()


def test_ps_filters(cli: Cli, two_containers) -> None:
    label, exited, running, rid = two_containers
    by_label = ["-f", f"label={label}", "--format", "{{.Names}}"]
    assert out(cli("ps", *by_label)).split() == [running]
    assert sorted(out(cli("ps", "-a", *by_label)).split()) == sorted([exited, running])
    assert out(cli("ps", "-a", "-f", "status=exited", *by_label)).split() == [exited]
    assert out(cli("ps", "-f", "status=exited", *by_label)).split() == [exited]  # implies -a
    assert out(cli("ps", "-a", "-f", f"name={exited}", "--format", "{{.Names}}")).split() == [
        exited
    ]
    ancestors = out(cli("ps", "-a", "-f", "ancestor=busybox", "--format", "{{.Names}}")).split()
    assert {exited, running} <= set(ancestors)
    assert out(cli("ps", "-q", "-f", f"label={label}")).split() == [rid[:12]]
    assert out(cli("ps", "-q", "--no-trunc", "-f", f"label={label}")).split() == [rid]


def test_ps_table_format(cli: Cli, two_containers) -> None:
    label, exited, running, rid = two_containers
    lines = out(cli("ps", "-a", "-f", f"label={label}", "--format", "table {{.ID}}\t{{.Status}}"))
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines.splitlines()]
    assert rows[0] == ["CONTAINER ID", "STATUS"]
    statuses = {row[0]: row[1] for row in rows[1:]}
    assert statuses[rid[:12]].startswith("Up ")
    assert len(statuses) == 2
    other = next(s for k, s in statuses.items() if k != rid[:12])
    assert other.startswith("Exited (0) ")


def test_ps_default_table(cli: Cli, two_containers) -> None:
    label, exited, running, rid = two_containers
    lines = out(cli("ps", "-f", f"label={label}")).splitlines()
    assert lines[0].split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    assert lines[1].startswith(rid[:12]) and lines[1].endswith(running)
    assert '"sleep 30"' in lines[1]


# inspect ---------------------------------------------------------------------


def test_inspect_format_and_type(cli: Cli, names) -> None:
    name = names()
    cli("run", "--name", name, "busybox", "sh", "-c", "exit 5")
    assert out(cli("inspect", "-f", "{{.State.ExitCode}}", name)).strip() == "5"
    assert out(cli("inspect", "--type", "container", "-f", "{{.Name}}", name)).strip() == f"/{name}"
    r = cli("inspect", "--type", "image", name)
    assert r.returncode != 0
    assert f"No such image: {name}" in err(r)
    image_id = out(cli("inspect", "--type", "image", "-f", "{{.Id}}", "busybox")).strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)


def test_inspect_json_document(cli: Cli, names) -> None:
    name = names()
    out(cli("create", "--name", name, "-e", "K=v", "busybox", "echo", "hi"))
    [doc] = json.loads(out(cli("inspect", name)))
    assert doc["Name"] == f"/{name}"
    assert doc["Path"] == "echo" and doc["Args"] == ["hi"]
    assert "K=v" in doc["Config"]["Env"]
    assert doc["Config"]["Image"] == "busybox"
    assert doc["State"]["Status"] == "created"
    assert doc["Image"].startswith("sha256:")
