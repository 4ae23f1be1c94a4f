"""The same Runtime interface, backed by the `runc` binary.

Used to compare against the reference runtime on the same bundles
(`--runtime runc`). runc keeps its state under `<root>/runc`; each create
and exec writes runc's JSON log to `<root>/runc-log/<id>.<tag>.json` so a
failure can be reported with runc's own words, which Docker clients map to
exit codes. A terminal comes back through `--console-socket`, a listening
socket in a temp dir that runc connects to and sends the PTY master over.
Execs run with `--detach`, as containerd runs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from freight.errors import Conflict, ExecError, FreightError, NotFound
from freight.linux import unixsock
from freight.oci.runtime_spec import Process, Spec
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


@contextlib.contextmanager
def _console_socket() -> Iterator[tuple[str, socket.socket]]:
    """A listening socket for `--console-socket`, in a short temp dir (sun_path is 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="freight-console-")
    path = os.path.join(directory, "console.sock")
    try:
        with unixsock.listen(path) as sock:
            yield path, sock
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _receive_console(listener: socket.socket) -> int:
    """The master runc sent before it exited: its connection is already queued."""
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        raise ExecError("runc did not send the console", 125) from None
    with conn:
        conn.setblocking(True)
        _, fd = unixsock.recv_fd(conn.fileno())
    if fd is None:
        raise ExecError("runc did not send the console", 125)
    return fd


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
    ) -> tuple[int, int | None]:
        spec = Spec.from_json((Path(bundle) / "config.json").read_bytes())
        terminal = bool(spec.process and spec.process.terminal)
        args = ["create", "--bundle", str(bundle)]
        pid, master = self._launch(container_id, args, terminal, (stdin_fd, stdout_fd, stderr_fd))
        return pid, master

    def exec(
        self, container_id: str, process: Process, stdin_fd: int, stdout_fd: int, stderr_fd: int
    ) -> tuple[int, int | None]:
        """`runc exec --detach`: runc exits once the process runs; the caller's subreaper reaps it."""
        logs = self._logs()
        process_file = logs / f"{container_id}.{uuid.uuid4().hex[:8]}.process.json"
        process_file.write_bytes(process.to_json())
        args = ["exec", "--detach", "--process", str(process_file)]
        try:
            return self._launch(
                container_id, args, process.terminal, (stdin_fd, stdout_fd, stderr_fd)
            )
        finally:
            process_file.unlink(missing_ok=True)

    def _logs(self) -> Path:
        logs = self.root / "runc-log"
        logs.mkdir(parents=True, exist_ok=True)
        return logs

    def _launch(
        self, container_id: str, args: list[str], terminal: bool, stdio: tuple[int, int, int]
    ) -> tuple[int, int | None]:
        """Run `runc create|exec`: (pid from --pid-file, master from --console-socket)."""
        logs = self._logs()
        tag = uuid.uuid4().hex[:8]
        log, pid_file = logs / f"{container_id}.{tag}.json", logs / f"{container_id}.{tag}.pid"
        cmd = [*self._base(), "--log", str(log), "--log-format", "json", *args]
        with contextlib.ExitStack() as stack:
            console: socket.socket | None = None
            if terminal:
                path, console = stack.enter_context(_console_socket())
                cmd += ["--console-socket", path]
                # runc gives the PTY to the process; our stdio must not reach it.
                devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                stack.callback(os.close, devnull)
                stdio = (devnull, devnull, devnull)
            cmd += ["--pid-file", str(pid_file), container_id]
            # runc hands its own stdio to the process: pass the process's.
            proc = subprocess.run(cmd, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
            try:
                if proc.returncode != 0:
                    message = _last_error(log) or f"runc {args[0]} exited with {proc.returncode}"
                    if "stopped" in message or "not running" in message:
                        raise Conflict(message)
                    raise ExecError(message, exit_code_for(message))
                pid = int(pid_file.read_text())
            finally:
                pid_file.unlink(missing_ok=True)
                log.unlink(missing_ok=True)
            return pid, _receive_console(console) if console is not None else None

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
