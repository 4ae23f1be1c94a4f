"""The same Runtime interface, backed by the `runc` binary.

Used to compare against the reference runtime on the same bundles
(`--runtime runc`). runc keeps its state under `<root>/runc`; each create
writes runc's JSON log to `<root>/runc-log/<id>.json` so a failure can be
reported with runc's own words, which Docker clients map to exit codes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

from freight.errors import Conflict, ExecError, FreightError, NotFound
from freight.oci.runtime_spec import Spec
from freight.runtime.cgroups import open_cgroup
from freight.runtime.state import RuntimeState


def exit_code_for(message: str) -> int:
    """Docker's mapping of an OCI runtime error to the `docker run` exit code."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def _last_error(log: Path) -> str:
    message = ""
    with contextlib.suppress(OSError):
        for line in log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", "")
    return message


class RuncRuntime:
    name = "runc"

    def __init__(self, root: Path, binary: str = "runc") -> None:
        self.root = root
        self.binary = shutil.which(binary) or binary

    def _base(self) -> list[str]:
        return [self.binary, "--root", str(self.root / "runc")]

    def _run(self, *args: str) -> str:
        proc = subprocess.run([*self._base(), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            message = proc.stderr.strip()
            if "does not exist" in message or "not exist" in message:
                raise NotFound(message)
            raise Conflict(message) if "not stopped" in message else FreightError(message)
        return proc.stdout

    def create(
        self, container_id: str, bundle: Path, stdin_fd: int, stdout_fd: int, stderr_fd: int
    ) -> int:
        logs = self.root / "runc-log"
        logs.mkdir(parents=True, exist_ok=True)
        log, pid_file = logs / f"{container_id}.json", logs / f"{container_id}.pid"
        args = ["--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle)]
        args += ["--pid-file", str(pid_file), container_id]
        # runc hands its own stdio to the container init: pass the container's.
        proc = subprocess.run(
            [*self._base(), *args], stdin=stdin_fd, stdout=stdout_fd, stderr=stderr_fd
        )
        try:
            if proc.returncode != 0:
                message = _last_error(log) or f"runc create exited with {proc.returncode}"
                raise ExecError(message, exit_code_for(message))
            return int(pid_file.read_text())
        finally:
            pid_file.unlink(missing_ok=True)
            log.unlink(missing_ok=True)

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def state(self, container_id: str) -> RuntimeState:
        raw = json.loads(self._run("state", container_id))
        return RuntimeState.from_dict(raw)

    def kill(self, container_id: str, sig: int) -> None:
        self._run("kill", container_id, str(sig))

    def delete(self, container_id: str, force: bool = False) -> None:
        self._run("delete", *(["--force"] if force else []), container_id)

    def oom_killed(self, container_id: str) -> bool:
        bundle = Path(self.state(container_id).bundle)
        spec = Spec.from_json((bundle / "config.json").read_bytes())
        path = spec.linux.cgroups_path if spec.linux else None
        return bool(path) and open_cgroup(path).oom_killed()
