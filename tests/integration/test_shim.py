"""The shim end to end: ready line, json-file log, exit.json, cleanup; freight and runc."""

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
from runtime_fixtures import cleanup_cgroups, make_bundle, skip_unless_root

pytestmark = pytest.mark.root

RUNTIMES = [
    "freight",
    pytest.param(
        "runc",
        marks=pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    ),
]


class Shim:
    def __init__(self, tmp: Path, runtime: str, args: list[str]) -> None:
        self.bundle, self.id = make_bundle(tmp, args)
        self.state_dir = tmp / "shims" / self.id
        self.log = tmp / "log.json"
        r, w = os.pipe()
        cmd = [sys.executable, "-m", "freight.shim", "--id", self.id, "--bundle", str(self.bundle)]
        cmd += ["--state-dir", str(self.state_dir), "--log-path", str(self.log)]
        cmd += ["--runtime", runtime, "--runtime-root", str(tmp / "rt"), "--ready-fd", str(w)]
        self.proc = subprocess.Popen(
            cmd, pass_fds=[w], start_new_session=True, stdin=subprocess.DEVNULL
        )
        os.close(w)
        with os.fdopen(r, "rb") as f:
            self.ready = json.loads(f.readline())

    def finish(self) -> dict:
        assert self.proc.wait(timeout=20) == 0
        return json.loads((self.state_dir / "exit.json").read_text())

    def log_entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def shims(tmp_path: Path) -> Iterator[list[Shim]]:
    skip_unless_root()
    started: list[Shim] = []
    yield started
    for shim in started:
        if shim.proc.poll() is None:
            shim.proc.kill()
            shim.proc.wait()
        cleanup_cgroups(shim.id)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_logs_and_exit_code(shims: list[Shim], tmp_path: Path, runtime: str) -> None:
    script = "echo hello; echo oops >&2; printf partial; exit 3"
    shim = Shim(tmp_path, runtime, ["sh", "-c", script])
    shims.append(shim)
    assert shim.ready["pid"] > 0
    assert int((shim.state_dir / "shim.pid").read_text()) == shim.proc.pid
    result = shim.finish()
    assert result["exit_code"] == 3 and result["oom_killed"] is False
    entries = shim.log_entries()
    by_stream = {s: [e["log"] for e in entries if e["stream"] == s] for s in ("stdout", "stderr")}
    assert by_stream == {"stdout": ["hello\n", "partial"], "stderr": ["oops\n"]}
    assert all(e["time"].endswith("Z") for e in entries)
    assert not list(Path("/sys/fs/cgroup").glob(f"**/freight-test/{shim.id}"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_signal_death_is_128_plus_signal(shims: list[Shim], tmp_path: Path, runtime: str) -> None:
    shim = Shim(tmp_path, runtime, ["sleep", "100"])
    shims.append(shim)
    os.kill(shim.ready["pid"], signal.SIGKILL)
    assert shim.finish()["exit_code"] == 137


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_command_not_found_reported_on_ready_fd(
    shims: list[Shim], tmp_path: Path, runtime: str
) -> None:
    shim = Shim(tmp_path, runtime, ["nosuch"])
    shims.append(shim)
    assert shim.ready["exit_code"] == 127
    assert 'exec: "nosuch": executable file not found in $PATH' in shim.ready["error"]
    assert shim.proc.wait(timeout=10) == 1
    assert not (shim.state_dir / "exit.json").exists()


def test_shim_survives_closed_ready_fd_reader(shims: list[Shim], tmp_path: Path) -> None:
    # The reader (the daemon) is gone once Shim() returns; the container still runs to the end.
    shim = Shim(tmp_path, "freight", ["sh", "-c", "sleep 0.2; echo late"])
    shims.append(shim)
    assert shim.finish()["exit_code"] == 0
    assert shim.log_entries()[0]["log"] == "late\n"
