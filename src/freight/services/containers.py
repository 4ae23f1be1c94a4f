"""The container state machine: create, start, stop, kill, restart, wait, remove, logs.

    create ──► created ──start──► running ──(process exits)──► exited ──start──► running
                 │                   │ stop/kill                  │
                 └───────── remove ◄─┴────── (AutoRemove) ◄───────┘

A container is a stored record (metadata DB); its task (the running process)
is held by a shim (see tasks.py). State changes for one container are
serialised by a per-container lock; the record is written after each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as signals
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from freight.errors import (
    AlreadyExists,
    Conflict,
    ExecError,
    FreightError,
    InvalidArgument,
    NotFound,
)
from freight.linux.freezer import Freezer
from freight.metadata.store import ContainerRow, MetadataStore
from freight.services import health, hostsecurity, logdrivers, mounting, restarts, specgen
from freight.services import logs as logfile
from freight.services.clock import now_rfc3339, parse_rfc3339
from freight.services.containermounts import ContainerMounts
from freight.services.events import EventBus
from freight.services.images import ImageService
from freight.services.model import Container, ContainerConfig, ContainerState, HostSettings
from freight.services.names import random_name, validate_name
from freight.services.shimio import send_resize
from freight.services.tasks import ExitStatus, ForkServer, StdioOptions, TaskManager
from freight.services.usergroup import resolve_user
from freight.services.userns import Remap, container_map, mount_rootfs, settle
from freight.services.volumes import VolumeService

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT_S = 10
MIN_MEMORY = 6 * 1024 * 1024
SNAPSHOT_PREFIX = "container-"
# "none" keeps no log (attach still works; `logs` is refused, as dockerd).
LOG_DRIVERS = logdrivers.DRIVERS
START_FAILED = 128  # exit code of a container whose start failed outside the process (dockerd: 128)
# Unified cgroups (v2) here: a container then gets a private cgroup namespace by default.
CGROUP2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()


@dataclass
class CreateRequest:
    name: str
    config: ContainerConfig
    host: HostSettings
    # NetworkingConfig.EndpointsConfig: network name -> services.networks.EndpointRequest
    endpoints: dict = field(default_factory=dict)
    # False for build steps: the image's VOLUMEs stay plain directories of the
    # step's layer (as BuildKit), instead of anonymous volumes.
    image_volumes: bool = True


@dataclass
class _Waiters:
    """Futures resolved at the next exit / at removal."""

    exit: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    removed: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    launched: list[asyncio.Future[None]] = field(default_factory=list)  # shim spawned


def _resolve(futures: list[asyncio.Future], value: object) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(value)
    futures.clear()


class ContainerService:
    def __init__(
        self,
        meta: MetadataStore,
        images: ImageService,
        data_root: Path,
        exec_root: Path,
        runtimes: tuple[str, ...] = ("freight",),
        cgroup_parent: str = "freight",
        forkserver: ForkServer | None = None,
        volumes: VolumeService | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.meta = meta
        # One bus per daemon (wiring.py); container events go out through `self.events.container`.
        self.events = events or EventBus()
        self.images = images
        self.data_root = data_root
        self.exec_root = exec_root
        self.runtimes = runtimes
        self.cgroup_parent = cgroup_parent
        self.on_removed: list[Callable[[str], None]] = []  # called with the id after removal
        # Called with the container as its task starts / as its exit is recorded (health checks).
        self.on_started: list[Callable[[Container], None]] = []
        self.on_exited: list[Callable[[Container], None]] = []
        self.network = None  # services.networks.NetworkService, set by the daemon's wiring
        self.log_defaults = logdrivers.LogDefaults()  # --log-driver/--log-opt (SIGHUP reloads)
        self.seccomp_profile: str | None = None  # freightd --seccomp-profile (specgen)
        self.init_binary = specgen.find_init_binary()
        self.userns_remap: Remap | None = None  # freightd --userns-remap (wiring)
        self.tasks = TaskManager(exec_root, exec_root / "runtime", self._task_exited, forkserver)
        self.restarts = restarts.RestartSupervisor(self)  # restart policies and back-off
        self._containers: dict[str, Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, _Waiters] = {}
        self.mounts = ContainerMounts(
            volumes or VolumeService(data_root / "volumes"), self.list, self.get
        )
        for row in meta.containers():
            c = Container.from_record(row.record)
            self._containers[c.id] = c

    # lookup -----------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """By full id, name (with or without '/'), or unique id prefix, like Docker."""
        if ref in self._containers:
            return self._containers[ref]
        name = ref.lstrip("/")
        for c in self._containers.values():
            if c.name == name:
                return c
        matches = [c for c in self._containers.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def list(self) -> list[Container]:
        return sorted(self._containers.values(), key=lambda c: c.created, reverse=True)

    def log_path(self, c: Container) -> Path:
        return Path(c.log_path)

    # create -----------------------------------------------------------------

    async def create(self, req: CreateRequest) -> tuple[Container, list[str]]:
        image = self.images.get(req.config.image)
        name = validate_name(req.name) if req.name else self._unused_random_name()
        self._check_name_free(name)
        req.host.log_type, req.host.log_opts = logdrivers.resolve(
            req.host.log_type, req.host.log_opts, self.log_defaults
        )
        warnings = validate_host(req.host, self.runtimes)
        restarts.validate_host(req.host)
        health.validate_config(req.config.healthcheck)
        warnings += hostsecurity.validate(req.host, req.config.hostname)
        others = [m for c in self._containers.values() if (m := container_map(c.host.extra))]
        settle(req.host, self.userns_remap, others)  # the id maps, kept in its HostConfig
        if self.network is not None:
            self.network.validate(req.host, req.endpoints)  # a bad network fails the create
        cid = secrets.token_hex(32)
        config = merge_image_config(req.config, self.images.default_config(image.id))
        image_check = health.from_oci(self.images.config(image.id).config.healthcheck)
        config.healthcheck = health.merge_config(req.config.healthcheck, image_check)
        path, args = command_of(config)
        if not path:
            raise InvalidArgument("no command specified")
        volumes = config.volumes if req.image_volumes else req.config.volumes
        mounts = self.mounts.plan(req.host.extra, volumes)  # creates volumes
        files = self._files_dir(cid)
        c = Container(
            id=cid,
            name=name,
            created=now_rfc3339(),
            image_id=image.id,
            config=config,
            host=req.host,
            path=path,
            args=args,
            log_path=str(files / f"{cid}-json.log"),
            snapshot_key=SNAPSHOT_PREFIX + cid,
            mounts=mounts,
        )
        try:
            await asyncio.to_thread(self.images.prepare_rootfs, image.id, c.snapshot_key)
        except BaseException:
            self.mounts.remove_anonymous(mounts)
            raise
        files.mkdir(parents=True, exist_ok=True)
        Path(c.log_path).touch(0o640)  # attach opens it before the shim writes
        try:
            self.meta.add_container(ContainerRow(cid, name, image.id, c.to_record()))
        except AlreadyExists:
            self.images.remove_rootfs(c.snapshot_key)
            shutil.rmtree(files, ignore_errors=True)
            self.mounts.remove_anonymous(mounts)
            self._check_name_free(name)
            raise
        self._containers[cid] = c
        if self.network is not None:
            self.network.register(c, req.endpoints)
        self.events.container(c, "create")
        return c, warnings

    def _unused_random_name(self) -> str:
        taken = {c.name for c in self._containers.values()}
        while (name := random_name()) in taken:
            pass
        return name

    def _check_name_free(self, name: str) -> None:
        for c in self._containers.values():
            if c.name == name:
                raise AlreadyExists(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{c.id}". You have to remove (or rename) that container to be able to '
                    "reuse that name."
                )

    def _files_dir(self, cid: str) -> Path:
        return self.data_root / "containers" / cid

    # start ------------------------------------------------------------------

    async def start(self, ref: str) -> bool:
        """Start the container; False when it was running already (HTTP 304)."""
        c = self.get(ref)
        async with self._lock(c.id):
            if c.state.status == "paused":
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.state.running:
                return False
            if c.state.status == "removing":
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            self.tasks.expect_migration()
            self.restarts.started_by_user(c)
            await self._start_task(c)
            self.events.container(c, "start")
            return True

    async def restart_task(self, c: Container) -> None:
        """The restart policy's start, after its back-off (services.restarts)."""
        async with self._lock(c.id):
            if c.state.status != "restarting":
                return  # stopped or removed meanwhile
            try:
                await self._start_task(c)
            except Exception as e:  # as dockerd: a failed restart is not retried
                log.warning("restart of %s failed: %s", c.id[:12], e)
                self.stopped_restarting(c)
                return
            self.events.container(c, "start")

    def stopped_restarting(self, c: Container) -> None:
        """A restart that will not happen (cancelled, or its start failed): "exited"."""
        c.state = replace(c.state, status="exited", pid=0)
        self._save(c)
        self._wake_exit_waiters(c.id, ExitStatus(c.state.exit_code, c.state.finished_at))

    async def _start_task(self, c: Container) -> None:
        paths = self.tasks.paths(c.id)
        try:
            await asyncio.to_thread(self._prepare_bundle, c)
            waiters = self._waiters.setdefault(c.id, _Waiters())
            launch = await self.tasks.launch_container(
                c.id,
                logdrivers.shim_config(c, self._files_dir(c.id), c.config.image),
                c.host.runtime,
                stdio_options(c),
                bool(waiters.launched),
            )
            _resolve(waiters.launched, None)
            pid = await self.tasks.container_ready(launch)
        except Exception as e:
            # Record why, and end the streams of clients attached before the start
            # (126/127 from the runtime; anything else is dockerd's 128).
            await asyncio.to_thread(self._teardown_bundle, c)
            code = e.exit_code if isinstance(e, ExecError) else START_FAILED
            c.state = replace(c.state, exit_code=code, error=str(e))
            self._save(c)
            self._wake_exit_waiters(c.id, ExitStatus(code, now_rfc3339()))
            if c.host.auto_remove:  # as dockerd: `run --rm` waits for the removal
                asyncio.get_running_loop().create_task(self._auto_remove(c.id))
            raise
        except BaseException:
            await asyncio.to_thread(self._teardown_bundle, c)
            raise
        started = ContainerState(status="running", pid=pid, started_at=now_rfc3339())
        c.state = replace(started, health=c.state.health)  # the health log outlives a run
        for hook in self.on_started:
            hook(c)
        self._save(c)
        log.info("started %s (pid %d, bundle %s)", c.id[:12], pid, paths.bundle)

    def _prepare_bundle(self, c: Container) -> None:
        """Mount the rootfs, write the container's /etc files and the OCI spec."""
        paths = self.tasks.paths(c.id)
        paths.rootfs.mkdir(parents=True, exist_ok=True)
        idmap = container_map(c.host.extra)
        if not os.path.ismount(paths.rootfs):
            rootfs_mounts = self.images.rootfs_mounts(c.snapshot_key)
            if idmap is None:
                mounting.mount_all(rootfs_mounts, paths.rootfs)
            else:  # the layers seen through the container root's idmap (services.userns)
                scratch = self.exec_root / "idmap" / c.id[:12]
                mount_rootfs(rootfs_mounts, paths.rootfs, idmap, scratch)
        files = self._files_dir(c.id)
        write_etc_files(files, c)
        hostsecurity.prepare_shm(c.host, files)  # --ipc shareable: /dev/shm on the host
        user = resolve_user(paths.rootfs, c.config.user, c.host.extra.get("GroupAdd") or [])
        volume_mounts = self.mounts.prepare(c, paths.rootfs)  # volumes, copy-up, -v dirs
        spec = specgen.generate(
            specgen.SpecInputs(
                c,
                paths.rootfs,
                user,
                files,
                self.cgroup_parent,
                self.init_binary,
                mounts=volume_mounts,
                joins=hostsecurity.namespace_joins(c.host, self.get, self._files_dir),
                cgroup2=CGROUP2,
                idmap=idmap,
                seccomp_default=self.seccomp_profile,
            )
        )
        if self.network is not None:
            specgen.set_network(spec, self.network.setup(c, files))
        paths.config.write_text(json.dumps(spec, indent=1))
        self._volume_events(c, "mount")

    def _volume_events(self, c: Container, action: str) -> None:
        """dockerd's `volume mount` for each volume a starting container mounts."""
        for mp in c.mounts:
            if mp.type == "volume" and mp.name:
                self.events.publish(
                    "volume",
                    action,
                    mp.name,
                    {
                        "driver": mp.driver or "local",
                        "container": c.id,
                        "destination": mp.destination,
                        "read/write": "true" if mp.rw else "false",
                        "propagation": mp.propagation,
                    },
                )

    def _teardown_bundle(self, c: Container) -> None:
        paths = self.tasks.paths(c.id)
        if os.path.ismount(paths.rootfs):
            mounting.unmount(paths.rootfs)
        shutil.rmtree(paths.bundle, ignore_errors=True)
        hostsecurity.release_shm(self._files_dir(c.id))
        self.mounts.release(c)
        if self.network is not None:
            self.network.teardown(c.id)

    # exit -------------------------------------------------------------------

    def _task_exited(self, cid: str, status: ExitStatus) -> None:
        c = self._containers.get(cid)
        if c is None:
            return
        restarting = self.restarts.exited(c, status)  # counts RestartCount, waits the back-off
        c.state = replace(
            c.state,
            status="restarting" if restarting else "exited",
            pid=0,
            exit_code=status.exit_code,
            oom_killed=status.oom_killed,
            finished_at=status.finished_at,
        )
        for hook in self.on_exited:
            hook(c)
        # Saved first: the bundle holds exit.json, the only other record of the status,
        # so a daemon killed in between still knows it (restore tears the rest down).
        self._save(c)
        if status.oom_killed:
            self.events.container(c, "oom")  # before die, as dockerd
        self.events.container(c, "die", _die_attributes(c))
        self._teardown_bundle(c)
        self._wake_exit_waiters(cid, status)
        if c.host.auto_remove and not restarting:
            asyncio.get_running_loop().create_task(self._auto_remove(cid))

    def _wake_exit_waiters(self, cid: str, status: ExitStatus) -> None:
        waiters = self._waiters.setdefault(cid, _Waiters())
        for fut in waiters.exit:
            if not fut.done():
                fut.set_result(status)
        waiters.exit.clear()

    async def _auto_remove(self, cid: str) -> None:
        try:
            # As docker: --rm takes the container's anonymous volumes too.
            await self.remove(cid, force=True, volumes=True)
        except FreightError as e:
            log.warning("auto-remove of %s failed: %s", cid[:12], e)

    def restore(self) -> None:
        """After a daemon start: re-attach to running tasks, settle the dead ones."""
        self.restarts.hold()  # restart policies apply once start-up is done (resume_at_start)
        for c in list(self._containers.values()):
            if c.state.status == "restarting":  # the daemon went away during a back-off
                c.state.status = "exited"
                self._save(c)
            if c.state.status == "removing":
                c.state.status = "dead"
                self._save(c)
            if not c.state.running:
                if c.state.status in ("exited", "dead") and self.tasks.paths(c.id).bundle.exists():
                    self._teardown_bundle(c)  # the daemon died while settling an exit
                continue
            status = self.tasks.restore(c.id)
            if status is not None:
                self._task_exited(c.id, status)
            else:
                self.mounts.restore(c)

    async def shutdown(self, timeout: float) -> None:
        """Daemon stop without live restore: stop every running container.

        All at once, each with its stop signal then SIGKILL after its stop
        timeout (dockerd's shutdownContainer); `timeout` bounds the whole (after
        it, SIGKILL for the rest). Not a user's stop: restart policies still see
        the containers as stopped by the daemon. `--rm` ones are removed too.
        """
        await self.restarts.begin_shutdown()  # these exits neither restart nor count as a user's
        running = [c for c in self._containers.values() if c.state.running]
        if not running:
            return
        log.info("stopping %d running container(s)", len(running))
        removed = [self.wait_future(c.id, "removed") for c in running if c.host.auto_remove]
        stops = [asyncio.ensure_future(self._stop_for_shutdown(c)) for c in running]
        _, late = await asyncio.wait(stops, timeout=max(timeout, 1))
        for c in running:
            if c.state.running:
                self._signal(c, signals.SIGKILL)
        if late:
            await asyncio.wait(late, timeout=5)
        if removed:
            await asyncio.wait(removed, timeout=5)

    async def stop_for_daemon(self, c: Container) -> None:
        """Stop the task for the daemon's own reasons (an unhealthy container to
        restart): the stop signal, SIGKILL after the stop timeout; not a user's stop."""
        if c.state.status == "running":
            await self._stop_for_shutdown(c)

    async def _stop_for_shutdown(self, c: Container) -> None:
        wait = self._exit_future(c.id)
        timeout = c.config.stop_timeout
        timeout = DEFAULT_STOP_TIMEOUT_S if timeout is None or timeout < 0 else timeout
        self._signal(c, parse_signal(c.config.stop_signal or "SIGTERM"))
        try:
            await asyncio.wait_for(asyncio.shield(wait), timeout)
        except TimeoutError:
            self._signal(c, signals.SIGKILL)
            await wait

    # stop / kill ------------------------------------------------------------

    async def kill(self, ref: str, sig: str = "SIGKILL") -> None:
        c = self.get(ref)
        if not c.state.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        signum = parse_signal(sig)
        if await self.restarts.cancel(c):  # it was waiting to restart: nothing to signal
            return
        self._signal(c, signum)
        self._save(c)  # the user's kill (services.restarts) survives a daemon restart

    def _signal(self, c: Container, signum: int) -> None:
        self.events.container(c, "kill", {"signal": str(signum)})
        with contextlib.suppress(ProcessLookupError):
            if c.state.pid > 0:  # never 0, our own process group: "restarting" has no pid
                os.kill(c.state.pid, signum)
        # As dockerd: a paused container is thawed after a fatal signal, which it
        # then receives (a v1-frozen task cannot even die of SIGKILL).
        if c.state.status == "paused" and self._fatal(c, signum):
            self._thaw(c)

    def _fatal(self, c: Container, signum: int) -> bool:
        if signum == signals.SIGKILL or not c.config.stop_signal:
            return True
        with contextlib.suppress(InvalidArgument):
            return signum == parse_signal(c.config.stop_signal)
        return False

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> bool:
        """Stop signal, then SIGKILL after the timeout; False if not running (304)."""
        c = self.get(ref)
        if not c.state.running:
            return False
        stop_signal = parse_signal(sig or c.config.stop_signal or "SIGTERM")
        if await self.restarts.cancel(c):  # it was waiting to restart: it stays stopped
            self.events.container(c, "stop")
            return True
        wait = self._exit_future(c.id)
        if timeout is None:
            timeout = c.config.stop_timeout
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT_S
        self._signal(c, stop_signal)
        if timeout < 0:
            await wait
            self.events.container(c, "stop")
            return True
        try:
            await asyncio.wait_for(asyncio.shield(wait), timeout)
        except TimeoutError:
            self._signal(c, signals.SIGKILL)
            await wait
        self.events.container(c, "stop")
        return True

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        await self.stop(ref, timeout, sig)
        await self.start(ref)
        self.events.container(self.get(ref), "restart")

    # wait -------------------------------------------------------------------

    def _exit_future(self, cid: str) -> asyncio.Future[ExitStatus]:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(cid, _Waiters()).exit.append(fut)
        return fut

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[ExitStatus]:
        """A future with the exit status for Docker's wait conditions.

        Registered synchronously so a caller can send HTTP headers and only
        then start the container without missing its exit.
        """
        c = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        loop = asyncio.get_running_loop()
        if condition == "removed":
            fut = loop.create_future()
            self._waiters.setdefault(c.id, _Waiters()).removed.append(fut)
            return fut
        if condition in ("not-running", "") and not c.state.running:
            fut = loop.create_future()
            fut.set_result(ExitStatus(c.state.exit_code, c.state.finished_at))
            return fut
        return self._exit_future(c.id)

    def launched_future(self, ref: str) -> asyncio.Future[None]:
        """Resolved once the container's shim is up (its stdio socket can be
        reached); at once if it runs already. Registering one before start makes
        the process wait for the attach, so no output is missed."""
        c = self.get(ref)
        fut = asyncio.get_running_loop().create_future()
        if c.state.running:
            fut.set_result(None)
        else:
            self._waiters.setdefault(c.id, _Waiters()).launched.append(fut)
        return fut

    def cancel_launched(self, ref: str, fut: asyncio.Future[None]) -> None:
        """An attach that went away before start no longer holds the process back."""
        waiters = self._waiters.get(ref)
        if waiters and fut in waiters.launched:
            waiters.launched.remove(fut)

    # stdio ------------------------------------------------------------------

    def stdio_socket(self, c: Container) -> Path:
        return self.tasks.paths(c.id).bundle / "attach.sock"

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.config.tty:
            await send_resize(self.stdio_socket(c), height, width)
        self.events.container(c, "resize", {"height": str(height), "width": str(width)})

    # remove -----------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if c.state.running:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {c.id}. "
                    "Stop the container before attempting removal or force remove"
                )
            await self.kill_and_wait(c)
        async with self._lock(c.id):
            if c.id not in self._containers:
                return
            c.state.status = "removing"
            await asyncio.to_thread(self._delete_files, c)
            self.meta.delete_container(c.id)
            del self._containers[c.id]
            self._locks.pop(c.id, None)
        self.events.container(c, "destroy")
        if volumes:
            await asyncio.to_thread(self.mounts.remove_anonymous, c.mounts)
        for hook in self.on_removed:
            hook(c.id)
        waiters = self._waiters.pop(c.id, _Waiters())
        status = ExitStatus(c.state.exit_code, c.state.finished_at)
        for fut in waiters.removed + waiters.exit:
            if not fut.done():
                fut.set_result(status)

    async def kill_and_wait(self, c: Container) -> None:
        if await self.restarts.cancel(c):
            return
        wait = self._exit_future(c.id)
        self._signal(c, signals.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait, 10)

    def _delete_files(self, c: Container) -> None:
        self._teardown_bundle(c)
        self.images.remove_rootfs(c.snapshot_key)
        shutil.rmtree(self._files_dir(c.id), ignore_errors=True)

    # logs -------------------------------------------------------------------

    def check_logs_readable(self, c: Container) -> None:
        logdrivers.check_readable(c, self._files_dir(c.id))

    async def logs(self, ref: str, query: logfile.LogQuery) -> AsyncIterator[logfile.LogEntry]:
        c = self.get(ref)
        files = logdrivers.log_files(c, self._files_dir(c.id))
        if files is None:
            return
        snap = await asyncio.to_thread(logfile.read_snapshot, files, query, query.follow)
        for e in snap.entries:
            yield e
        if snap.handle is not None and c.state.running:
            stopped = lambda: not c.state.running  # noqa: E731
            async for e in logfile.follow(snap.handle, snap.offset, query, stopped, files):
                yield e
        elif snap.handle is not None:
            snap.handle.close()

    # pause / unpause / rename ---------------------------------------------

    def cgroup_path(self, c: Container) -> str:
        """The container's cgroup (its spec's cgroupsPath), for stats, top and the freezer."""
        return f"/{self.cgroup_parent}/{c.id}"

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._lock(c.id):
            if not c.state.running:
                raise Conflict(f"Container {c.id} is not running")
            if c.state.status == "paused":
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status == "restarting":
                raise Conflict(
                    f"Container {c.id} is restarting, wait until the container is running"
                )
            freezer = Freezer.of(self.cgroup_path(c))
            if freezer is None:
                raise Conflict(
                    f"Cannot pause container {c.id}: the container has no cgroup freezer"
                )
            await asyncio.to_thread(freezer.freeze)
            c.state.status = "paused"
            self._save(c)
        self.events.container(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._lock(c.id):
            if c.state.status != "paused":
                raise Conflict(f"Container {c.id} is not paused")
            self._thaw(c)

    def _thaw(self, c: Container) -> None:
        freezer = Freezer.of(self.cgroup_path(c))
        with contextlib.suppress(OSError):  # the cgroup is gone with the container
            if freezer is not None:
                freezer.thaw()
        c.state.status = "running"
        self._save(c)
        self.events.container(c, "unpause")

    def rename(self, ref: str, new_name: str) -> None:
        """Docker's rename: the name only (hostname and id stay); DNS follows the name."""
        if not ref or not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        c = self.get(ref)
        wanted = new_name if new_name.startswith("/") else "/" + new_name
        if wanted == "/" + c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        try:
            name = validate_name(wanted)
            self._check_name_free(name)
        except FreightError as e:
            raise type(e)(f"Error when allocating new name: {e}") from None
        old, c.name = c.name, name
        self._save(c)
        self.events.container(c, "rename", {"oldName": "/" + old})

    # bookkeeping ------------------------------------------------------------

    def lock(self, cid: str) -> asyncio.Lock:
        """The container's lock: held by start and remove, and by `cp` on a
        stopped container while its rootfs is mounted for the copy."""
        return self._lock(cid)

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    def save(self, c: Container) -> None:
        """Store a record changed in place (services.update changes its settings)."""
        self._save(c)

    def _save(self, c: Container) -> None:
        if c.id in self._containers:
            self.meta.update_container(ContainerRow(c.id, c.name, c.image_id, c.to_record()))


# pure helpers ---------------------------------------------------------------


def _die_attributes(c: Container) -> dict[str, str]:
    """`die`'s exitCode, and execDuration (whole seconds it ran) as dockerd adds it."""
    attrs = {"exitCode": str(c.state.exit_code)}
    try:
        ran = parse_rfc3339(c.state.finished_at) - parse_rfc3339(c.state.started_at)
        attrs["execDuration"] = str(max(0, int(ran)))
    except (ValueError, TypeError):
        pass
    return attrs


def merge_image_config(req: ContainerConfig, image: ContainerConfig) -> ContainerConfig:
    """Fill what the request leaves unset from the image, as Docker's create does."""
    env_names = {e.split("=", 1)[0] for e in req.env}
    env = [e for e in image.env if e.split("=", 1)[0] not in env_names] + req.env
    cmd = req.cmd
    if not cmd and req.entrypoint is None:
        cmd = image.cmd
    return replace(
        req,
        env=env,
        cmd=cmd,
        entrypoint=req.entrypoint if req.entrypoint is not None else image.entrypoint,
        working_dir=req.working_dir or image.working_dir,
        user=req.user or image.user,
        labels={**image.labels, **req.labels},
        stop_signal=req.stop_signal or image.stop_signal,
        exposed_ports={**image.exposed_ports, **req.exposed_ports},
        volumes={**image.volumes, **req.volumes},
    )


def stdio_options(c: Container) -> StdioOptions:
    size = c.host.extra.get("ConsoleSize") or None
    console = (int(size[0]), int(size[1])) if size and len(size) == 2 else None
    return StdioOptions(stdin=c.config.open_stdin, tty=c.config.tty, console_size=console)


def command_of(config: ContainerConfig) -> tuple[str, list[str]]:
    argv = [*(config.entrypoint or []), *(config.cmd or [])]
    return (argv[0], argv[1:]) if argv else ("", [])


def validate_host(host: HostSettings, runtimes: tuple[str, ...]) -> list[str]:
    """Docker's checks of resource settings, with its messages; returns warnings."""
    if host.log_type not in LOG_DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{host.log_type}' is registered")
    if host.memory and host.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if host.memory_swap > 0 and not host.memory:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if host.memory_swap > 0 and host.memory_swap < host.memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if host.nano_cpus and (host.cpu_quota or host.cpu_period):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    ncpu = os.cpu_count() or 1
    if host.nano_cpus < 0 or host.nano_cpus > ncpu * 1_000_000_000:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpu:.2f}, as there are only {ncpu} CPUs available"
        )
    if host.runtime not in runtimes:
        raise InvalidArgument(f"Unknown runtime specified {host.runtime}")
    return []


def parse_signal(sig: str | int) -> int:
    """'SIGTERM', 'TERM', 'term', '15' → 15, with Docker's error for anything else."""
    text = str(sig).strip()
    if text.isdigit():
        num = int(text)
        if 0 < num < signals.NSIG:
            return num
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if hasattr(signals.Signals, name):
            return int(signals.Signals[name])
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            return _realtime_signal(name)
    raise InvalidArgument(f"Invalid signal: {sig}")


def _realtime_signal(name: str) -> int:
    base, _, offset = name.replace("SIGRTMIN", "MIN").replace("SIGRTMAX", "MAX").partition("+")
    if "-" in base:
        base, _, offset = base.partition("-")
        return int(signals.SIGRTMAX) - int(offset)
    start = int(signals.SIGRTMIN) if base == "MIN" else int(signals.SIGRTMAX)
    return start + int(offset or 0)


def write_etc_files(files: Path, c: Container) -> None:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf for the container (bind-mounted)."""
    files.mkdir(parents=True, exist_ok=True)
    hostname = c.config.hostname or c.id[:12]
    (files / "hostname").write_text(hostname + "\n")
    (files / "hosts").write_text(
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        f"127.0.1.1\t{hostname}\n"
    )
    (files / "resolv.conf").write_text(container_resolv_conf())


def container_resolv_conf(host_file: Path = Path("/etc/resolv.conf")) -> str:
    """The host's resolv.conf without loopback resolvers, which mean nothing inside."""
    try:
        lines = host_file.read_text().splitlines()
    except OSError:
        lines = []
    kept = [
        line
        for line in lines
        if not (line.startswith("nameserver") and _is_loopback(line.split()[-1]))
    ]
    return "\n".join(kept) + "\n"


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"
