"""Resource exhaustion from inside a container: fork bombs against --pids-limit,
memory hogs against -m, log floods against json-file rotation. The container
is contained; the host (and the daemon) stay responsive.
Each test states the attack and the safe outcome.
"""

from __future__ import annotations

import json
import os
import secrets
import time

import pytest
from sec_images import output


@pytest.fixture
def names(freightd):
    made: list[str] = []
    yield made
    if made:
        freightd.cli("rm", "-f", *made, timeout=30)


def _inspect(freightd, name: str) -> dict:
    result = freightd.cli("inspect", name)
    assert result.returncode == 0, output(result)
    return json.loads(result.stdout)[0]


def _pids_dir(freightd, cid: str) -> str:
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        for dirpath, _dirs, _files in os.walk(os.path.join(base, freightd.cgroup_parent)):
            if os.path.basename(dirpath).endswith(cid) and "pids.current" in os.listdir(dirpath):
                return dirpath
    raise AssertionError(f"no pids cgroup for {cid}")


def _pids_current(freightd, cid: str) -> int:
    with open(os.path.join(_pids_dir(freightd, cid), "pids.current")) as f:
        return int(f.read())


def _forks_refused(freightd, cid: str) -> int:
    """pids.events' `max`: how many forks the limit refused (v1 and v2)."""
    with open(os.path.join(_pids_dir(freightd, cid), "pids.events")) as f:
        return int(dict(line.split() for line in f.read().splitlines()).get("max", 0))


def test_fork_bomb_is_held_by_pids_limit(freightd, names):
    """Attack: a classic fork bomb (a function piping into itself in the background).
    Safe outcome: the container's cgroup never holds more than --pids-limit tasks, the
    daemon keeps answering (ps within 3 s) and `rm -f` ends the container quickly."""
    name = f"secbomb-{secrets.token_hex(3)}"
    names.append(name)
    bomb = "b() { b | b & }; b; sleep 3600"
    result = freightd.cli(
        "run", "-d", "--name", name, "--pids-limit", "40", "busybox", "sh", "-c", bomb
    )
    assert result.returncode == 0, output(result)
    cid = result.stdout.decode().strip()
    # The bomb runs into the limit (forks refused) and never past it; how many tasks
    # are alive at a given moment varies, as refused forks make shells give up.
    deadline, peak = time.monotonic() + 10, 0
    while time.monotonic() < deadline and not _forks_refused(freightd, cid):
        peak = max(peak, _pids_current(freightd, cid))
        time.sleep(0.05)
    assert _forks_refused(freightd, cid) > 0, "the bomb never reached --pids-limit"
    for _ in range(20):
        peak = max(peak, _pids_current(freightd, cid))
        time.sleep(0.05)
    assert peak <= 40, peak
    start = time.monotonic()
    result = freightd.cli("ps", "-q", timeout=10)
    assert result.returncode == 0 and time.monotonic() - start < 3, output(result)
    assert cid[:12] in result.stdout.decode()
    start = time.monotonic()
    result = freightd.cli("rm", "-f", name, timeout=20)
    assert result.returncode == 0 and time.monotonic() - start < 8, output(result)
    names.remove(name)


def test_memory_hog_is_oom_killed(freightd, names):
    """Attack: allocate without end (tail buffering an endless line of /dev/zero) to push
    the host into swapping or its own OOM killer. Safe outcome: only the container's
    process is OOM-killed at -m 32m (swap capped too): exit status 137, OOMKilled true,
    and the daemon answers afterwards."""
    name = f"sechog-{secrets.token_hex(3)}"
    names.append(name)
    result = freightd.cli(
        "run", "--name", name, "-m", "32m", "--memory-swap", "32m",
        "busybox", "sh", "-c", "tail /dev/zero",
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 137, output(result)
    state = _inspect(freightd, name)["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137, state
    assert freightd.cli("version").returncode == 0


def test_log_flood_stays_within_rotation(freightd, names):
    """Attack: write ~6 MiB of output as fast as possible to fill the host's disk through
    the container's log. Safe outcome: with --log-opt max-size=200k max-file=2 the log
    files on disk stay within about 2 x 200 KiB (plus one line of slack each), and the
    latest lines are still readable with `logs --tail`."""
    name = f"secflood-{secrets.token_hex(3)}"
    names.append(name)
    line = "x" * 1000
    flood = f"i=0; while [ $i -lt 6000 ]; do echo {line}$i; i=$((i+1)); done"
    result = freightd.cli(
        "run", "--name", name, "--log-opt", "max-size=200k", "--log-opt", "max-file=2",
        "busybox", "sh", "-c", flood,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    log_path = _inspect(freightd, name)["LogPath"]
    directory = os.path.dirname(log_path)
    base = os.path.basename(log_path)
    logs = [f for f in os.listdir(directory) if f.startswith(base)]
    total = sum(os.path.getsize(os.path.join(directory, f)) for f in logs)
    assert len(logs) <= 2, logs
    assert total <= 2 * (200 * 1024 + 2048), (logs, total)
    tail = freightd.cli("logs", "--tail", "1", name)
    assert tail.stdout.decode().strip() == f"{line}5999", output(tail)[-200:]
