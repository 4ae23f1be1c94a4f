"""Exec: another process in a running container's namespaces and cgroup.

    create (record) ──start──► running (exec shim, forked like a container's)
                                 └──► exited: ExitCode recorded before the
                                      client's stream is closed

An exec's output exists only on its shim's stdio socket (no log), so an
attached start spawns the shim with --wait-attach, connects, and only then
lets the process run.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import replace

from freight.errors import Conflict, InvalidArgument, NotFound
from freight.services import detachkeys, specgen
from freight.services.containers import ContainerService
from freight.services.events import EventBus
from freight.services.model import Container, Exec, ExecConfig
from freight.services.shimio import ShimStdio, send_resize
from freight.services.tasks import ExitStatus, StdioOptions
from freight.services.usergroup import resolve_user


class ExecService:
    def __init__(self, containers: ContainerService, events: EventBus | None = None) -> None:
        self.containers = containers
        # exec_create/exec_start/exec_die go out as container events, on the daemon's bus.
        self.events = events or containers.events
        self._execs: dict[str, Exec] = {}
        self._ephemeral: set[str] = set()  # health probes: forgotten once they have run
        containers.on_removed.append(self.forget_container)

    def create(self, container_ref: str, cfg: ExecConfig, ephemeral: bool = False) -> Exec:
        """A new exec; an `ephemeral` one (a health probe) leaves no record once it has run."""
        c = self.containers.get(container_ref)
        self._check_running(c)
        if not cfg.cmd:
            raise InvalidArgument("No exec command specified")
        if cfg.detach_keys:
            detachkeys.parse(cfg.detach_keys)
        e = Exec(secrets.token_hex(32), c.id, cfg)
        self._execs[e.id] = e
        if ephemeral:
            self._ephemeral.add(e.id)
        self.events.container(c, "exec_create: " + _event_command(cfg), {"execID": e.id})
        self.containers.tasks.expect_migration()  # the start follows at once, as a rule
        return e

    def get(self, exec_id: str) -> Exec:
        e = self._execs.get(exec_id)
        if e is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return e

    def container_of(self, e: Exec) -> Container:
        return self.containers.get(e.container_id)

    def _check_running(self, c: Container) -> None:
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")

    async def start(self, exec_id: str, attach: bool, tty: bool | None = None) -> ShimStdio | None:
        """Run the exec; attached, return its connected stdio (process started)."""
        e = self.get(exec_id)
        if e.running or e.exit_code is not None:
            raise Conflict(f"Error: Exec command {e.id} has already run")
        c = self.container_of(e)
        self._check_running(c)
        self.containers.tasks.expect_migration()
        cfg = e.config if tty is None else replace(e.config, tty=tty)
        process_file = self._write_process(c, e, cfg)
        stdio_opts = StdioOptions(cfg.attach_stdin and attach, cfg.tty, cfg.console_size)
        tasks = self.containers.tasks
        launch = await tasks.launch_exec(
            c.id, e.id, process_file, c.host.runtime, stdio_opts, wait_attach=attach
        )
        stdio = None
        try:
            if launch.client is not None:
                stdio = await ShimStdio.adopt(launch.client)
            e.running = True
            self.events.container(c, "exec_start: " + _event_command(cfg), {"execID": e.id})
            e.pid = await tasks.ready(launch, lambda _key, status: self._exited_with(e, status))
        except BaseException:
            e.running = False
            if stdio is not None:
                await stdio.close()
            raise
        return stdio

    def _write_process(self, c: Container, e: Exec, cfg: ExecConfig):
        paths = self.containers.tasks.paths(c.id)
        user = resolve_user(paths.rootfs, cfg.user or c.config.user)
        process = specgen.exec_process(c, cfg, user)
        exec_dir = paths.exec_dir(e.id)
        exec_dir.mkdir(parents=True, exist_ok=True)
        process_file = exec_dir / "process.json"
        process_file.write_text(json.dumps(process))
        return process_file

    def _exited_with(self, e: Exec, status: ExitStatus) -> None:
        if e.id in self._ephemeral:  # its shim is gone: nothing will use the record again
            self._forget(e)
        e.running = False
        if e.exit_code is None:
            self._died(e, status.exit_code)
        e.exit_code = status.exit_code

    def record_exit(self, exec_id: str, exit_code: int) -> None:
        """The stdio socket said EXIT: record it now, before the client's stream closes."""
        e = self.get(exec_id)
        if e.exit_code is None:
            self._died(e, exit_code)
            e.exit_code = exit_code
            e.running = False

    def _died(self, e: Exec, exit_code: int) -> None:
        """`exec_die` once per exec, by whichever of the two exit reports comes first."""
        try:
            c = self.container_of(e)
        except NotFound:
            return
        self.events.container(c, "exec_die", {"execID": e.id, "exitCode": str(exit_code)})

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        e = self.get(exec_id)
        if not e.running:
            raise Conflict(f"Exec {exec_id} is not running")
        state_dir = self.containers.tasks.paths(e.container_id).exec_dir(e.id)
        await send_resize(state_dir / "attach.sock", height, width)

    def discard_unstarted(self, e: Exec) -> None:
        """An ephemeral exec whose process never started (no shim will report its exit)."""
        if e.id in self._ephemeral and e.pid == 0:
            self._forget(e)

    def _forget(self, e: Exec) -> None:
        self._execs.pop(e.id, None)
        self._ephemeral.discard(e.id)
        exec_dir = self.containers.tasks.paths(e.container_id).exec_dir(e.id)
        shutil.rmtree(exec_dir, ignore_errors=True)

    def forget_container(self, container_id: str) -> None:
        for eid in [eid for eid, e in self._execs.items() if e.container_id == container_id]:
            self._execs.pop(eid, None)


def _event_command(cfg: ExecConfig) -> str:
    """The command in an exec event's action as dockerd spells it: entrypoint, a
    space, the arguments ("exec_start: true " for an exec without arguments)."""
    return cfg.cmd[0] + " " + " ".join(cfg.cmd[1:])
