"""Runtime.exec and terminals through the runtime library and CLI, on freight and runc."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_fixtures import Harness, become_subreaper, exit_code, make_bundle, skip_unless_root

from freight.errors import Conflict, ExecError
from freight.linux import pty
from freight.oci.runtime_spec import ConsoleSize, Process, Spec, User
from freight.runtime.api import open_runtime

pytestmark = pytest.mark.root

RUNTIMES = [
    "freight",
    pytest.param(
        "runc",
        marks=pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    ),
]
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


@pytest.fixture(params=RUNTIMES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    skip_unless_root()
    become_subreaper()
    h = Harness(open_runtime(request.param, tmp_path / "state"), tmp_path)
    yield h
    h.cleanup()


def running(h: Harness, **kw: object) -> tuple[str, int]:
    cid, pid, r = h.create(["sleep", "100"], **kw)
    os.close(r)
    h.rt.start(cid)
    return cid, pid


def wait(pid: int) -> int:
    """Reap `pid` (reparented to us, the subreaper), and any other orphan on the way."""
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            return exit_code(status)


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the PTY's slave side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(fd)
    return out


def exec_piped(h: Harness, cid: str, process: Process) -> tuple[str, int]:
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        pid, master = h.rt.exec(cid, process, null, w, w)
    finally:
        os.close(w)
        os.close(null)
    assert master is None
    return read_all(r).decode(), wait(pid)


def test_exec_joins_every_namespace(harness: Harness) -> None:
    cid, init_pid = running(harness, hostname="inside")
    script = "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/self/ns/net"
    out, code = exec_piped(harness, cid, Process(args=["sh", "-c", script], env=ENV))
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["inside", "sleep 100 "]
    assert lines[2] == os.readlink(f"/proc/{init_pid}/ns/net")
    for ns in ("mnt", "pid", "uts", "ipc", "net"):  # the init's, not ours
        assert os.readlink(f"/proc/{init_pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")


def test_exec_user_caps_env_and_cwd(harness: Harness) -> None:
    cid, _ = running(harness)
    process = Process(
        args=["sh", "-c", "id; pwd; echo $GREETING; grep -E '^Cap(Eff|Bnd)' /proc/self/status"],
        env=[*ENV, "GREETING=hello"],
        cwd="/tmp",
        user=User(uid=65534, gid=65534, additional_gids=[10]),
    )
    out, code = exec_piped(harness, cid, process)
    assert code == 0
    assert out.split("\n")[:3] == [
        "uid=65534(nobody) gid=65534(nogroup) groups=10",
        "/tmp",
        "hello",
    ]
    # No capabilities asked for: an unprivileged user keeps none; the bounding set is the spec's.
    assert "CapEff:\t0000000000000000" in out


def test_exec_joins_the_container_cgroup(harness: Harness) -> None:
    cid, init_pid = running(harness)
    out, _ = exec_piped(harness, cid, Process(args=["cat", "/proc/self/cgroup"], env=ENV))
    theirs = Path(f"/proc/{init_pid}/cgroup").read_text()
    mine = {line.split(":", 1)[1] for line in out.splitlines()}
    assert mine == {line.split(":", 1)[1] for line in theirs.splitlines()}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nosuch"], 127, 'exec: "nosuch": executable file not found in $PATH'),
        (["/etc/notexec"], 126, 'exec: "/etc/notexec": permission denied'),
    ],
)
def test_exec_errors(harness: Harness, args: list[str], code: int, message: str) -> None:
    cid, _ = running(harness)
    with pytest.raises(ExecError) as info:
        exec_piped(harness, cid, Process(args=args, env=ENV))
    assert info.value.exit_code == code and message in str(info.value)


def test_exec_into_a_stopped_container(harness: Harness) -> None:
    cid, init_pid = running(harness)
    os.kill(init_pid, signal.SIGKILL)
    wait(init_pid)
    with pytest.raises(Conflict):
        exec_piped(harness, cid, Process(args=["true"], env=ENV))


def test_exec_with_a_terminal(harness: Harness) -> None:
    cid, _ = running(harness)
    process = Process(
        args=["sh", "-c", "tty; stty size; ls -ln $(tty)"],
        env=ENV,
        terminal=True,
        console_size=ConsoleSize(30, 90),
        user=User(uid=65534, gid=65534),
    )
    pid, master = harness.rt.exec(cid, process, -1, -1, -1)
    assert master is not None
    out = read_all(master).decode().splitlines()
    assert wait(pid) == 0
    assert out[:2] == ["/dev/pts/0", "30 90"]
    assert out[2].split()[:4] == ["crw--w----", "1", "65534", "5"]


def test_create_with_a_terminal(harness: Harness) -> None:
    bundle, cid = make_bundle(harness.tmp, ["sh", "-c", "tty; stty size; ls -l /dev/console"])
    spec = Spec.from_json((bundle / "config.json").read_bytes())
    spec.process.terminal = True
    (bundle / "config.json").write_bytes(spec.to_json())
    harness.ids.append(cid)
    pid, master = harness.rt.create(cid, bundle, -1, -1, -1)
    assert master is not None
    pty.set_size(master, 40, 120)  # before start, as the shim does
    harness.rt.start(cid)
    out = read_all(master).decode().splitlines()
    assert wait(pid) == 0
    assert out[:2] == ["/dev/pts/0", "40 120"]
    assert out[2].startswith("crw--w----") and "136," in out[2]  # a pts bound on /dev/console


def test_cli_exec(tmp_path: Path) -> None:
    skip_unless_root()
    become_subreaper()
    h = Harness(open_runtime("freight", tmp_path / "state"), tmp_path)
    try:
        cid, _ = running(h, hostname="clibox")
        pfile = tmp_path / "process.json"
        pfile.write_bytes(Process(args=["sh", "-c", "hostname; exit 5"], env=ENV).to_json())
        cmd = [sys.executable, "-m", "freight.runtime", "--root", str(tmp_path / "state")]
        proc = subprocess.run([*cmd, "exec", "--process", str(pfile), cid], capture_output=True)
        assert (proc.returncode, proc.stdout) == (5, b"clibox\n")
        tty = subprocess.run([*cmd, "exec", "--tty", "-p", str(pfile), cid], capture_output=True)
        assert tty.returncode == 1 and b"--console-socket" in tty.stderr
        state = json.loads(subprocess.run([*cmd, "state", cid], capture_output=True).stdout)
        assert state["status"] == "running"
    finally:
        h.cleanup()
