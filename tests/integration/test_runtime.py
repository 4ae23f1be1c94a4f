"""The freight OCI runtime (and runc on the same bundles) seen from inside the container."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_fixtures import Harness, become_subreaper, make_bundle, skip_unless_root

from freight.errors import ExecError
from freight.runtime.api import open_runtime

pytestmark = pytest.mark.root

RUNTIMES = [
    "freight",
    pytest.param(
        "runc",
        marks=pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    ),
]


@pytest.fixture(params=RUNTIMES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    skip_unless_root()
    become_subreaper()
    h = Harness(open_runtime(request.param, tmp_path / "state"), tmp_path)
    yield h
    h.cleanup()


@pytest.fixture
def freight(tmp_path: Path) -> Iterator[Harness]:
    skip_unless_root()
    become_subreaper()
    h = Harness(open_runtime("freight", tmp_path / "state"), tmp_path)
    yield h
    h.cleanup()


def test_pid1_hostname_and_exit_code(harness: Harness) -> None:
    out, code = harness.run(["sh", "-c", "echo pid=$$; hostname; exit 3"], hostname="inside")
    assert out == "pid=1\ninside\n"
    assert code == 3


def test_default_capabilities(harness: Harness) -> None:
    out, _ = harness.run(["grep", "-E", "^Cap(Eff|Bnd|Prm)", "/proc/self/status"])
    assert out.split() == [
        "CapPrm:",
        "00000000a80425fb",
        "CapEff:",
        "00000000a80425fb",
        "CapBnd:",
        "00000000a80425fb",
    ]


def test_spec_user(harness: Harness) -> None:
    out, _ = harness.run(["sh", "-c", "id; grep CapBnd /proc/self/status"], uid=65534, gid=65534)
    assert out.splitlines()[0] == "uid=65534(nobody) gid=65534(nogroup)"
    assert out.split()[-1] == "00000000a80425fb"


def test_sys_is_readonly_and_paths_are_masked(harness: Harness) -> None:
    script = (
        "touch /sys/x 2>&1; ls /sys/firmware | wc -l; wc -c < /proc/timer_list;"
        " echo 1 > /proc/sys/vm/overcommit_memory 2>&1; grep ' /proc/sys ' /proc/mounts"
    )
    out, _ = harness.run(["sh", "-c", script])
    lines = out.splitlines()
    assert "Read-only file system" in lines[0]
    assert lines[1:3] == ["0", "0"]
    assert "Read-only file system" in lines[3]
    assert lines[4].split()[3].startswith("ro")


def test_dev_has_standard_nodes(harness: Harness) -> None:
    out, _ = harness.run(["sh", "-c", "ls /dev; echo x > /dev/null && echo ok; readlink /dev/ptmx"])
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "fd"):
        assert name in out.split()
    assert out.split()[-2:] == ["ok", "pts/ptmx"]


def test_cgroup_limits_visible_inside(harness: Harness) -> None:
    script = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes;"
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
    )
    out, _ = harness.run(["sh", "-c", script], memory=64 << 20, pids=33)
    assert out.split() == [str(64 << 20), "33"]


def test_loopback_is_up_and_root_can_be_readonly(harness: Harness) -> None:
    out, _ = harness.run(
        ["sh", "-c", "cat /sys/class/net/lo/operstate; touch /x 2>&1"], readonly=True
    )
    first, second = out.splitlines()[:2]
    assert first in ("unknown", "up")
    assert "Read-only file system" in second


def test_sigkill_gives_137_and_cgroup_is_removed(harness: Harness) -> None:
    cid, pid, r = harness.create(["sleep", "100"])
    harness.rt.start(cid)
    assert harness.rt.state(cid).status == "running"
    harness.rt.kill(cid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    assert harness.rt.state(cid).status == "stopped"
    harness.rt.delete(cid)
    assert not list(Path("/sys/fs/cgroup").glob(f"**/freight-test/{cid}"))


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["nosuch"], 127, 'exec: "nosuch": executable file not found in $PATH'),
        (["/x"], 127, 'exec: "/x": stat /x: no such file or directory'),
        (["/etc/notexec"], 126, 'exec: "/etc/notexec": permission denied'),
        (["/etc"], 126, 'exec: "/etc": permission denied'),
    ],
)
def test_exec_errors(harness: Harness, args: list[str], code: int, text: str) -> None:
    with pytest.raises(ExecError) as e:
        harness.create(args)
    assert e.value.exit_code == code
    assert text in str(e.value)


def test_created_then_started(freight: Harness) -> None:
    cid, pid, r = freight.create(["echo", "hi"])
    assert freight.rt.state(cid).status == "created"
    assert freight.rt.state(cid).pid == pid
    freight.rt.start(cid)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"hi\n"
    os.waitpid(pid, 0)
    freight.rt.delete(cid)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "freight.runtime", "--root", str(root), *args]
    if args[0] == "create":
        # The container inherits create's stdio (as with runc): a pipe would stay
        # open, so the output goes to a file.
        with open(root.parent / "create.out", "w+") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
            out.seek(0)
            return subprocess.CompletedProcess(cmd, proc.returncode, "", out.read())
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_cli_lifecycle(freight: Harness, tmp_path: Path) -> None:
    bundle, cid = make_bundle(tmp_path, ["sleep", "100"])
    freight.ids.append(cid)
    root = tmp_path / "cli-state"
    created = cli(root, "create", "--bundle", str(bundle), "--pid-file", str(tmp_path / "pid"), cid)
    assert created.returncode == 0, created.stderr
    state = json.loads(cli(root, "state", cid).stdout)
    assert state["status"] == "created" and state["pid"] == int((tmp_path / "pid").read_text())
    assert cli(root, "start", cid).returncode == 0
    assert json.loads(cli(root, "state", cid).stdout)["status"] == "running"
    assert cli(root, "delete", cid).returncode == 1  # running: refused without --force
    assert cli(root, "kill", cid, "KILL").returncode == 0
    deadline = time.monotonic() + 5
    while json.loads(cli(root, "state", cid).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cli(root, "delete", cid).returncode == 0
    assert cli(root, "state", cid).returncode == 1
