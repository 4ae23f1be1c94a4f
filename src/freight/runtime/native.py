"""freight's own OCI runtime: create/start/state/kill/delete on a bundle.

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
import time
from datetime import UTC, datetime
from pathlib import Path

from freight.errors import Conflict, ExecError
from freight.oci.runtime_spec import Spec
from freight.runtime import init, rootfs, sync
from freight.runtime.cgroups import DEFAULT_ROOT, Cgroup, open_cgroup
from freight.runtime.config import ContainerConfig, convert
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
    ) -> int:
        """Set the container up and return its init's host pid, blocked before exec."""
        bundle = Path(bundle).resolve()
        cfg = convert(container_id, bundle, Spec.from_json((bundle / "config.json").read_bytes()))
        self.states.make(container_id)
        cgroup = open_cgroup(cfg.cgroups_path, self.cgroup_root)
        try:
            cgroup.create()
            cgroup.set(cfg.resources)
            pid = self._spawn(cfg, cgroup, (stdin_fd, stdout_fd, stderr_fd))
        except BaseException:
            self._discard(container_id, cgroup)
            raise
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        start = proc_start_time(pid) or 0
        record = Record(
            container_id, pid, start, str(bundle), cfg.cgroups_path, created, cfg.annotations
        )
        self.states.save(record)
        return pid

    def _discard(self, container_id: str, cgroup: Cgroup) -> None:
        with contextlib.suppress(OSError):
            _kill_all(cgroup)
            cgroup.destroy()
        self.states.remove(container_id)

    def _spawn(self, cfg: ContainerConfig, cgroup: Cgroup, stdio: tuple[int, int, int]) -> int:
        plan = _plan(cfg, cgroup)
        fifo_fd = os.open(self.states.fifo(cfg.id), os.O_PATH | os.O_CLOEXEC)
        read_fd, write_fd = os.pipe()
        try:
            child = os.fork()
            if child == 0:
                os.close(read_fd)
                init.setup_child(cfg, plan, cgroup, stdio, write_fd, fifo_fd)
            os.close(write_fd)
            try:
                return self._wait_ready(sync.Reader(read_fd))
            finally:
                os.waitpid(child, 0)
        finally:
            os.close(read_fd)
            os.close(fifo_fd)

    def _wait_ready(self, reader: sync.Reader) -> int:
        pid = 0
        while (msg := reader.next()) is not None:
            if msg.type == sync.PID:
                pid = msg.pid
            elif msg.type == sync.READY and pid:
                return pid
            elif msg.type == sync.ERROR:
                raise ExecError(msg.message, msg.exit_code)
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
