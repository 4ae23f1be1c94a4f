"""Shims forked from the forkserver: same behaviour as a spawned shim, shared memory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from runtime_fixtures import cleanup_cgroups, make_bundle, skip_unless_root

from freight.services.tasks import ForkServer

pytestmark = pytest.mark.root


@pytest.fixture
def forkserver(tmp_path: Path):
    skip_unless_root()
    server = ForkServer(tmp_path)
    server.start()
    yield server
    server.stop()


def spawn(server: ForkServer, tmp: Path, args: list[str]) -> tuple[str, Path, int, dict]:
    bundle, cid = make_bundle(tmp, args)
    r, w = os.pipe()
    shim_args = ["--id", cid, "--bundle", str(bundle), "--state-dir", str(bundle),
                 "--log-path", str(tmp / f"{cid}.log"), "--runtime", "freight",
                 "--runtime-root", str(tmp / "rt")]  # fmt: skip
    try:
        pid = server.spawn(shim_args, [w])
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        ready = json.loads(f.readline())
    return cid, bundle, pid, ready


def wait_gone(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"shim {pid} did not exit"
        time.sleep(0.02)


def test_forked_shim_runs_logs_and_records_exit(forkserver, tmp_path):
    cid, bundle, pid, ready = spawn(
        forkserver, tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 7"]
    )
    try:
        assert "pid" in ready, ready
        assert os.readlink(f"/proc/{pid}/cwd") == str(bundle)  # how the daemon recognises it
        wait_gone(pid)
        assert json.loads((bundle / "exit.json").read_text())["exit_code"] == 7
        entries = [json.loads(line) for line in (tmp_path / f"{cid}.log").read_text().splitlines()]
        assert {(e["stream"], e["log"]) for e in entries} == {
            ("stdout", "out\n"),
            ("stderr", "err\n"),
        }
    finally:
        cleanup_cgroups(cid)


def test_forked_shim_reports_a_missing_command(forkserver, tmp_path):
    cid, _, pid, ready = spawn(forkserver, tmp_path, ["nosuchcommand"])
    try:
        assert ready["exit_code"] == 127
        assert 'exec: "nosuchcommand": executable file not found in $PATH' in ready["error"]
        wait_gone(pid)
    finally:
        cleanup_cgroups(cid)


def test_forked_shims_share_pages_with_the_forkserver(forkserver, tmp_path):
    started = [spawn(forkserver, tmp_path, ["sleep", "30"]) for _ in range(3)]
    try:
        time.sleep(0.3)
        for _, _, pid, ready in started:
            assert "pid" in ready
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
            # Most of the interpreter is shared: private memory is a fraction of RSS.
            assert fields["Private_Dirty"] < fields["Rss"] / 2, fields
    finally:
        for cid, _, pid, ready in started:
            if "pid" in ready:
                os.kill(ready["pid"], 9)
            wait_gone(pid)
            cleanup_cgroups(cid)
