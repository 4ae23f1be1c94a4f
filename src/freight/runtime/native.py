"""freight's own OCI runtime: create/start/state/kill/delete on a bundle, exec into it.

`create` forks from the calling process (no new interpreter: start latency is
a headline number) and returns once the container init is set up and
blocked on the exec fifo; `start` opens the fifo and the init execs. See
`freight.runtime.sync` for the processes involved and `freight.runtime.state`
for what is kept on disk between commands.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from freight.errors import Conflict, ExecError
from freight.linux import userns
from freight.oci.runtime_spec import Process, Spec
from freight.runtime import console, enter, init, rootfs, seccompspec, sync
from freight.runtime.cgroups import DEFAULT_ROOT, Cgroup, open_cgroup
from freight.runtime.config import (
    ContainerConfig,
    ProcessConfig,
    convert,
    process_config,
    seccomp_filter,
)
from freight.runtime.state import Record, RuntimeState, StateDir, proc_start_time


def _plan(cfg: ContainerConfig, cgroup: Cgroup) -> rootfs.RootfsPlan:
    return rootfs.RootfsPlan(
        rootfs=cfg.rootfs,
        mounts=cfg.mounts,
        propagation=cfg.propagation,
        devices=cfg.devices,
        cwd=cfg.process.cwd,
        readonly=cfg.readonly,
        masked_paths=cfg.masked_paths,
        readonly_paths=cfg.readonly_paths,
        cgroup_binds=cgroup.mount_binds(),
        cgroup_links=cgroup.mount_links(),
    )


def _kill_all(cgroup: Cgroup, timeout: float = 5.0) -> None:
    """SIGKILL everything in the cgroup and wait until it is empty (zombies leave it)."""
    deadline = time.monotonic() + timeout
    while (pids := cgroup.procs()) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


class FreightRuntime:
    """The in-process runtime; `root` holds one state dir per container."""

    name = "freight"

    def __init__(self, root: Path, cgroup_root: Path = DEFAULT_ROOT) -> None:
        self.states = StateDir(root)
        self.cgroup_root = cgroup_root

    def create(
        self, container_id: str, bundle: Path, stdin_fd: int, stdout_fd: int, stderr_fd: int
    ) -> tuple[int, int | None]:
        """Set the container up; return its init's host pid, blocked before exec.

        With `process.terminal` in the spec the stdio fds are ignored: the init
        gets a new PTY and its master is returned as the second item.
        """
        bundle = Path(bundle).resolve()
        cfg = convert(container_id, bundle, Spec.from_json((bundle / "config.json").read_bytes()))
        self._compile_seccomp(cfg.process)
        self.states.make(container_id)
        cgroup = open_cgroup(cfg.cgroups_path, self.cgroup_root)
        stdio = None if cfg.process.terminal else (stdin_fd, stdout_fd, stderr_fd)
        try:
            cgroup.create()
            cgroup.set(cfg.resources)
            pid, master = self._spawn(cfg, cgroup, stdio)
        except BaseException:
            self._discard(container_id, cgroup)
            raise
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        start = proc_start_time(pid) or 0
        record = Record(
            container_id, pid, start, str(bundle), cfg.cgroups_path, created, cfg.annotations
        )
        self.states.save(record)
        return pid, master

    def _compile_seccomp(self, p: ProcessConfig) -> None:
        """Compile (or take from the cache) the filter before forking: the init only loads."""
        if p.seccomp is not None:
            p.seccomp_program = seccompspec.program(
                p.seccomp, self.states.root.parent / "seccomp-cache"
            )

    def _discard(self, container_id: str, cgroup: Cgroup) -> None:
        with contextlib.suppress(OSError):
            _kill_all(cgroup)
            cgroup.destroy()
        self.states.remove(container_id)

    def _spawn(
        self, cfg: ContainerConfig, cgroup: Cgroup, stdio: tuple[int, int, int] | None
    ) -> tuple[int, int | None]:
        plan = _plan(cfg, cgroup)
        fifo_fd = os.open(self.states.fifo(cfg.id), os.O_PATH | os.O_CLOEXEC)
        try:
            with _Pipes(cfg.process.terminal, cfg.idmap is not None) as pipes:
                child = os.fork()
                if child == 0:
                    init.setup_child(cfg, plan, cgroup, stdio, pipes.child(fifo_fd))
                pipes.forked()
                try:
                    pid = self._wait_ready(sync.Reader(pipes.read_fd), pipes, child, cfg)
                finally:
                    os.waitpid(child, 0)
                return pid, pipes.master()
        finally:
            os.close(fifo_fd)

    def _wait_ready(
        self, reader: sync.Reader, pipes: _Pipes, child: int, cfg: ContainerConfig
    ) -> int:
        pid = 0
        ready = False  # the init's READY can overtake the setup child's PID on a busy host
        while (msg := reader.next()) is not None:
            if msg.type == sync.USERMAP and cfg.idmap is not None:
                # The setup child is in its new user namespace: map it from out here.
                userns.write_maps(child, cfg.idmap)
                os.write(pipes.map_w, b"1")
            elif msg.type == sync.PID:
                pid = msg.pid
            elif msg.type == sync.READY:
                ready = True
            elif msg.type == sync.ERROR:
                raise ExecError(msg.message, msg.exit_code)
            if pid and ready:
                return pid
        raise ExecError("container init exited before it was ready", 125)

    def start(self, container_id: str) -> None:
        rec = self.states.load(container_id)
        status = self.states.status(rec)
        if status != "created":
            raise Conflict(f"cannot start a container in the {status} state")
        fifo = self.states.fifo(container_id)
        # Non-blocking open so a dead init cannot hang us; poll for its byte.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            while not select.select([fd], [], [], 0.05)[0]:
                if proc_start_time(rec.pid) != rec.pid_start:
                    raise Conflict("container init exited before start")
            os.read(fd, 1)
        finally:
            os.close(fd)
        fifo.unlink()

    def state(self, container_id: str) -> RuntimeState:
        rec = self.states.load(container_id)
        status = self.states.status(rec)
        pid = 0 if status == "stopped" else rec.pid
        return RuntimeState(rec.id, status, pid, rec.bundle, rec.annotations)

    def kill(self, container_id: str, sig: int) -> None:
        rec = self.states.load(container_id)
        if self.states.status(rec) == "stopped":
            raise Conflict("container not running")
        os.kill(rec.pid, sig)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Remove a stopped (or created) container; `force` kills a running one first."""
        rec = self.states.load(container_id)
        status = self.states.status(rec)
        if status == "running" and not force:
            raise Conflict(f"cannot delete container {container_id} that is not stopped: running")
        cgroup = open_cgroup(rec.cgroups_path, self.cgroup_root)
        if status != "stopped":
            with contextlib.suppress(ProcessLookupError):
                os.kill(rec.pid, signal.SIGKILL)
        _kill_all(cgroup)
        cgroup.destroy()
        self.states.remove(container_id)

    def oom_killed(self, container_id: str) -> bool:
        rec = self.states.load(container_id)
        return open_cgroup(rec.cgroups_path, self.cgroup_root).oom_killed()

    def exec(
        self,
        container_id: str,
        process: Process,
        stdin_fd: int,
        stdout_fd: int,
        stderr_fd: int,
    ) -> tuple[int, int | None]:
        """Run `process` inside the running container; (host pid, PTY master or None).

        See `freight.runtime.enter`. The process is already exec'd when this
        returns; with `process.terminal` the stdio fds are ignored.
        """
        p = process_config(process)
        rec = self.states.load(container_id)
        # As runc: an exec runs under its container's seccomp filter.
        p.seccomp = seccomp_filter(Spec.from_json((Path(rec.bundle) / "config.json").read_bytes()))
        self._compile_seccomp(p)
        namespaces = self._init_namespaces(rec)
        stdio = None if p.terminal else (stdin_fd, stdout_fd, stderr_fd)
        cgroup = open_cgroup(rec.cgroups_path, self.cgroup_root)
        try:
            with _Pipes(p.terminal) as pipes:
                child = os.fork()
                if child == 0:
                    enter.setup_child(p, namespaces, cgroup, stdio, pipes.child())
                pipes.forked()
                try:
                    pid = _wait_exec(sync.Reader(pipes.read_fd))
                finally:
                    os.waitpid(child, 0)
                return pid, pipes.master()
        finally:
            enter.close_all(namespaces)

    def _init_namespaces(self, rec: Record) -> list[tuple[int, int]]:
        """The init's namespace fds, opened while it provably is still our init."""
        not_running = Conflict(f"cannot exec in a stopped container: {rec.id}")
        if self.states.status(rec) == "stopped":
            raise not_running
        try:
            namespaces = enter.open_namespaces(rec.pid)
        except FileNotFoundError:
            raise not_running from None
        if proc_start_time(rec.pid) != rec.pid_start:  # the pid was reused meanwhile
            enter.close_all(namespaces)
            raise not_running
        return namespaces


def _wait_exec(reader: sync.Reader) -> int:
    """Read until EOF (the execve closed the pipe): the pid, or the error that came last."""
    pid, ready, error = 0, False, None
    while (msg := reader.next()) is not None:
        if msg.type == sync.PID:
            pid = msg.pid
        elif msg.type == sync.READY:
            ready = True
        elif msg.type == sync.ERROR:
            error = ExecError(msg.message, msg.exit_code)
    if error is not None:
        raise error
    if not (pid and ready):
        raise ExecError("the exec'd process died before it was ready", 125)
    return pid


class _Pipes:
    """The sync pipe, with a terminal the console socketpair, with a user namespace the
    pipe that says its maps are written: one unit to clean up."""

    def __init__(self, terminal: bool, userns: bool = False) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.map_r, self.map_w = os.pipe() if userns else (-1, -1)
        self.console: tuple[int, int] | None = None
        if terminal:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console = (parent.detach(), child.detach())

    def __enter__(self) -> _Pipes:
        return self

    def child(self, fifo_fd: int = -1) -> init.Channels:
        """What the forked child keeps (call in the child)."""
        os.close(self.read_fd)
        console_fd = -1
        if self.console is not None:
            os.close(self.console[0])
            console_fd = self.console[1]
        if self.map_w >= 0:
            os.close(self.map_w)
        return init.Channels(self.write_fd, fifo_fd, console_fd, self.map_r)

    def forked(self) -> None:
        """Drop the child's ends in the parent, so EOF means the children are done."""
        os.close(self.write_fd)
        self.write_fd = -1
        if self.map_r >= 0:
            os.close(self.map_r)
            self.map_r = -1
        if self.console is not None:
            os.close(self.console[1])
            self.console = (self.console[0], -1)

    def master(self) -> int | None:
        if self.console is None:
            return None
        try:
            return console.receive_master(self.console[0])
        except OSError as e:
            raise ExecError(f"setting up the terminal: {e}", 125) from None

    def __exit__(self, *exc: object) -> None:
        fds = [self.read_fd, self.write_fd, self.map_r, self.map_w, *(self.console or ())]
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
