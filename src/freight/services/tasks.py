"""Tasks: a container's running process, held by its shim.

The daemon never parents a container directly. For each start it launches a
shim (`python -m freight.shim`, a new session, so it outlives freightd) and
reads one JSON line from the shim's ready pipe: the container's pid, or why it
could not start. It then watches the shim with a pidfd: the shim exits only
after the container has exited, its output is drained into the log and
`exit.json` is written, so "shim gone" means "exit status final".

After a daemon restart `restore` finds the shims again from their pid files.

Exec-root layout of one task (built in `TaskPaths`)::

    <exec-root>/containers/<id>/
        config.json      OCI runtime spec (the bundle)
        rootfs/          the container's root, an overlay mounted by the daemon
        shim.pid         written by the shim
        exit.json        {"exit_code", "finished_at", "oom_killed"}, written by the shim
        shim.log         the shim's own stderr
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freight.errors import ExecError, Internal
from freight.linux import cgroupwarm
from freight.services.clock import now_rfc3339 as _now

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    finished_at: str
    oom_killed: bool = False


@dataclass(frozen=True)
class TaskPaths:
    bundle: Path

    @classmethod
    def of(cls, exec_root: Path, container_id: str) -> TaskPaths:
        return cls(exec_root / "containers" / container_id)

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def config(self) -> Path:
        return self.bundle / "config.json"

    @property
    def shim_pid(self) -> Path:
        return self.bundle / "shim.pid"

    @property
    def exit_file(self) -> Path:
        return self.bundle / "exit.json"

    def exec_dir(self, exec_id: str) -> Path:
        return self.bundle / "execs" / exec_id


ExitCallback = Callable[[str, ExitStatus], None]


@dataclass(frozen=True)
class StdioOptions:
    """How the process's stdio is set up by its shim."""

    stdin: bool = False  # a stdin pipe (Docker's OpenStdin), else /dev/null
    tty: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)

    def shim_args(self) -> list[str]:
        args = ["--stdin"] if self.stdin else []
        if self.tty:
            args.append("--tty")
            if self.console_size and all(self.console_size):
                args += ["--console-size", f"{self.console_size[0]}x{self.console_size[1]}"]
        return args


@dataclass
class Launch:
    """A shim that was spawned and has not reported ready yet."""

    key: str  # what exits are reported under: a container id or "<cid>/<exec id>"
    state_dir: Path
    shim: subprocess.Popen | int
    ready_fd: int
    client: socket.socket | None = None  # our end of the shim's primary client (--client-fd)

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.shim if isinstance(self.shim, subprocess.Popen) else None

    @property
    def shim_pid(self) -> int:
        return self.shim.pid if isinstance(self.shim, subprocess.Popen) else int(self.shim)


class TaskManager:
    """Starts shims and reports each task's exit through a callback."""

    def __init__(
        self,
        exec_root: Path,
        runtime_root: Path,
        on_exit: ExitCallback,
        forkserver: ForkServer | None = None,
    ) -> None:
        self.exec_root = exec_root
        self.forkserver = forkserver
        self.runtime_root = runtime_root
        self._on_exit = on_exit
        self._watched: dict[str, int] = {}  # key -> pidfd
        self._cgroup_warmer = cgroupwarm.Warmer()

    def expect_migration(self) -> None:
        """A process will join a cgroup soon (a start, an exec): warm the kernel's lock now."""
        self._cgroup_warmer.warm_soon()

    def paths(self, container_id: str) -> TaskPaths:
        return TaskPaths.of(self.exec_root, container_id)

    async def launch_container(
        self,
        container_id: str,
        log: Path | dict | None,
        runtime: str,
        stdio: StdioOptions,
        wait_attach: bool,
    ) -> Launch:
        """Spawn the container's shim; with `wait_attach` the process starts only
        once a client is on the stdio socket (so an attach misses no output).

        `log`: a json-file path, or a log driver's config (services.logdrivers.shim_config).
        """
        paths = self.paths(container_id)
        args = [
            *self._common_args(container_id, paths.bundle, runtime),
            "--state-dir", str(paths.bundle), *stdio.shim_args(),
        ]  # fmt: skip
        if isinstance(log, dict):
            args += ["--log-config", json.dumps(log)]
        elif log is not None:  # None: the "none" log driver
            args += ["--log-path", str(log)]
        if wait_attach:
            args.append("--wait-attach")
        return await self.launch(container_id, paths.bundle, args)

    async def container_ready(self, launch: Launch) -> int:
        return await self.ready(launch, self._on_exit)

    async def launch_exec(
        self,
        container_id: str,
        exec_id: str,
        process_file: Path,
        runtime: str,
        stdio: StdioOptions,
        wait_attach: bool,
    ) -> Launch:
        """Spawn an exec's shim; with `wait_attach` it starts the process only
        once a client is on its stdio socket."""
        paths = self.paths(container_id)
        state_dir = paths.exec_dir(exec_id)
        state_dir.mkdir(parents=True, exist_ok=True)
        args = [
            *self._common_args(container_id, paths.bundle, runtime),
            "--state-dir", str(state_dir), "--exec-id", exec_id,
            "--process", str(process_file), *stdio.shim_args(),
        ]  # fmt: skip
        if not wait_attach:
            return await self.launch(f"{container_id}/{exec_id}", state_dir, args)
        args.append("--wait-attach")
        return await self.launch(f"{container_id}/{exec_id}", state_dir, args, with_client=True)

    def _common_args(self, container_id: str, bundle: Path, runtime: str) -> list[str]:
        return [
            "--id", container_id, "--bundle", str(bundle),
            "--runtime", runtime, "--runtime-root", str(self.runtime_root),
        ]  # fmt: skip

    async def launch(
        self, key: str, state_dir: Path, args: list[str], with_client: bool = False
    ) -> Launch:
        """Spawn a shim; `with_client` hands it a connected socket as its primary client
        (`Launch.client` is our end), so nobody polls for its attach.sock."""
        (state_dir / "exit.json").unlink(missing_ok=True)
        ready_r, ready_w = os.pipe()
        ours, theirs = socket.socketpair() if with_client else (None, None)
        passed = [ready_w] if theirs is None else [ready_w, theirs.fileno()]
        try:
            shim = await asyncio.to_thread(self._spawn_shim, state_dir, args, passed)
        except BaseException:
            os.close(ready_r)
            if ours is not None:
                ours.close()
            raise
        finally:
            os.close(ready_w)
            if theirs is not None:
                theirs.close()
        return Launch(key, state_dir, shim, ready_r, ours)

    async def ready(self, launch: Launch, on_exit: ExitCallback) -> int:
        """Wait for the shim's ready line; watch it on success, raise ExecError otherwise."""
        try:
            line = await asyncio.wait_for(_read_line(launch.ready_fd), READY_TIMEOUT_S)
        finally:
            os.close(launch.ready_fd)
        reply = _parse_ready(line, launch.state_dir)
        if "error" in reply:
            if launch.proc is not None:
                await asyncio.to_thread(launch.proc.wait)
            raise ExecError(reply["error"], int(reply.get("exit_code", 125)))
        self._watch(launch.key, launch.state_dir, launch.shim_pid, launch.proc, on_exit)
        return int(reply["pid"])

    def _spawn_shim(
        self, state_dir: Path, args: list[str], fds: list[int]
    ) -> subprocess.Popen | int:
        """Fork the shim from the forkserver; a fresh interpreter if there is none.

        `fds`: the ready pipe's write end, then maybe the client socket.
        """
        if self.forkserver is not None:
            try:
                return self.forkserver.spawn(args, fds)
            except OSError as e:
                log.warning("shim forkserver unavailable (%s); starting the shim directly", e)
        fd_args = ["--ready-fd", str(fds[0])] + (["--client-fd", str(fds[1])] if fds[1:] else [])
        args = [sys.executable, "-m", "freight.shim", *args, *fd_args]
        with open(state_dir / "shim.log", "ab") as shim_log:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=shim_log,
                stderr=shim_log,
                pass_fds=tuple(fds),
                start_new_session=True,
                cwd=state_dir,
            )

    def restore(self, container_id: str) -> ExitStatus | None:
        """Re-attach to a running shim after a daemon restart.

        Returns the exit status when the task ended while the daemon was away,
        None when it is still running (and now watched again).
        """
        paths = self.paths(container_id)
        pid = _read_pid(paths.shim_pid)
        if pid and _is_shim(pid, paths.bundle):
            self._watch(container_id, paths.bundle, pid, None, self._on_exit)
            return None
        return read_exit(paths.exit_file) or ExitStatus(255, _now(), False)

    def _watch(
        self,
        key: str,
        state_dir: Path,
        pid: int,
        proc: subprocess.Popen | None,
        on_exit: ExitCallback,
    ) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            # Gone already (a fast process; its forkserver reaped the shim): report it
            # on the next loop turn as the pidfd path does, so the caller records the
            # start first and the exit after it (else the exit is overwritten by
            # "running", and whoever follows the container waits forever).
            loop = asyncio.get_running_loop()
            loop.call_soon(self._report_exit, key, state_dir, proc, on_exit)
            return
        self._watched[key] = pidfd

        def exited() -> None:
            asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)
            self._watched.pop(key, None)
            self._report_exit(key, state_dir, proc, on_exit)

        asyncio.get_running_loop().add_reader(pidfd, exited)

    def _report_exit(
        self, key: str, state_dir: Path, proc: subprocess.Popen | None, on_exit: ExitCallback
    ) -> None:
        if proc is not None:
            proc.wait()  # reap our child; it has exited already
        status = read_exit(state_dir / "exit.json") or ExitStatus(255, _now(), False)
        try:
            on_exit(key, status)
        except Exception:
            log.exception("handling exit of %s", key)

    def close(self) -> None:
        """Stop watching (the shims keep running: live restore)."""
        loop = asyncio.get_event_loop()
        for pidfd in self._watched.values():
            loop.remove_reader(pidfd)
            os.close(pidfd)
        self._watched.clear()


class ForkServer:
    """The shim forkserver (freight.shim.forkserver): started, asked to fork, stopped."""

    def __init__(self, exec_root: Path) -> None:
        self.socket_path = exec_root / "shim-forkserver.sock"
        self.pid_path = exec_root / "shim-forkserver.pid"
        self.log_path = exec_root / "shim-forkserver.log"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._stop_stale()
        self.socket_path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "freight.shim.forkserver",
                    "--socket",
                    str(self.socket_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not self.socket_path.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise Internal(f"shim forkserver did not start: {_tail(self.log_path)}")
            time.sleep(0.01)

    def spawn(self, args: list[str], fds: list[int]) -> int:
        """Fork a shim with `args`; `fds` are the ready fd and maybe a client socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(READY_TIMEOUT_S)
            conn.connect(str(self.socket_path))
            socket.send_fds(conn, [json.dumps(args).encode()], fds)
            reply = json.loads(conn.makefile("rb").readline() or b"{}")
        if "pid" not in reply:
            raise OSError(f"forkserver refused: {reply.get('error', 'no reply')}")
        return int(reply["pid"])

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    def _stop_stale(self) -> None:
        """A forkserver left by a daemon that was killed: replace it."""
        pid = _read_pid(self.pid_path)
        if not pid:
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if b"freight.shim.forkserver" in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def read_exit(exit_file: Path) -> ExitStatus | None:
    try:
        raw = json.loads(exit_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return ExitStatus(
        int(raw["exit_code"]), raw.get("finished_at", _now()), bool(raw.get("oom_killed"))
    )


async def _read_line(fd: int) -> bytes:
    """Read up to a newline (or EOF) from a pipe without blocking the loop."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    buf = bytearray()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        buf.extend(chunk)
        if (not chunk or b"\n" in chunk) and not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return bytes(buf)


def _parse_ready(line: bytes, state_dir: Path) -> dict:
    try:
        reply = json.loads(line.split(b"\n", 1)[0])
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not ("pid" in reply or "error" in reply):
        tail = _tail(state_dir / "shim.log")
        raise Internal(f"shim failed to start the process: {tail or 'no reply'}")
    return reply


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_shim(pid: int, state_dir: Path) -> bool:
    """Guard against pid reuse: a shim runs in its state directory."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"freight.shim" in cmdline and cwd == str(state_dir)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""
