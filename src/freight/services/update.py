"""`update`: change an existing container's resources, restart policy, published ports
and mounts, running or not, all or nothing.

Resources and the restart policy are docker's `POST /containers/{id}/update`
(a zero / empty / absent field leaves the setting as it is). Ports and mounts
are freight's own: docker can change neither without re-creating the
container; here the container keeps its id, name and writable layer.

    request ──verify──► new HostSettings / mounts / PortBindings (nothing touched yet)
        │  stopped: store them; the next start uses them
        │  running: cgroup writes ─► ports ─► unmounts ─► mounts   (each undone on a
        │           later failure, newest first; linux.cgrouplimits restores its own)
        └──► store, `update` event

Errors use dockerd's words: verification failures plain (400), conflicts with
the stored settings and kernel refusals as "Cannot update container <id>: …".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from freight.errors import Conflict, FreightError, InvalidArgument, NotFound
from freight.linux import cgrouplimits, livemount
from freight.network import portspec
from freight.oci.runtime_spec import Resources
from freight.services import containermounts, restarts, specgen
from freight.services.model import Container, HostSettings, MountPoint

log = logging.getLogger(__name__)

MIN_MEMORY = 6 * 1024 * 1024
_CPU_ONLINE = Path("/sys/devices/system/cpu/online")
_NODES_ONLINE = Path("/sys/devices/system/node/online")


@dataclass
class ResourceUpdate:
    """docker's UpdateConfig: 0, "" and None leave a setting unchanged."""

    cpu_shares: int = 0
    nano_cpus: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    memory: int = 0
    memory_reservation: int = 0
    memory_swap: int = 0
    pids_limit: int | None = None
    blkio_weight: int = 0
    restart_policy: dict[str, Any] | None = None


@dataclass
class UpdateRequest:
    resources: ResourceUpdate = field(default_factory=ResourceUpdate)
    # freight's extension: the bindings of these container ports become these
    # (HostConfig.PortBindings' shape), then the listed "port/proto" keys go.
    port_bindings: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    remove_ports: list[str] = field(default_factory=list)
    # HostConfig.Binds / HostConfig.Mounts entries to add; destinations to remove first.
    binds: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    remove_mounts: list[str] = field(default_factory=list)

    @property
    def changes_ports(self) -> bool:
        return bool(self.port_bindings or self.remove_ports)

    @property
    def changes_mounts(self) -> bool:
        return bool(self.binds or self.mounts or self.remove_mounts)


# verification (pure) ---------------------------------------------------------------------


def verify(r: ResourceUpdate, ncpu: int, cpus: str, mems: str) -> list[str]:
    """dockerd's verifyContainerSettings for an update, with its messages; warnings."""
    if r.memory and r.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if r.memory > 0 and r.memory_swap > 0 and r.memory_swap < r.memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if r.memory_reservation and r.memory_reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if r.memory > 0 and r.memory_reservation > 0 and r.memory < r.memory_reservation:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    if r.nano_cpus > 0 and r.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if r.nano_cpus > 0 and r.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if r.nano_cpus < 0 or r.nano_cpus > ncpu * 1_000_000_000:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )
    if r.cpu_period and not 1000 <= r.cpu_period <= 1_000_000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second "
            "(i.e. 1000000)"
        )
    if 0 < r.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.blkio_weight and not 10 <= r.blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    _check_cpuset(r.cpuset_cpus, cpus, "cpus", "CPUs")
    _check_cpuset(r.cpuset_mems, mems, "mems", "memory nodes")
    if r.restart_policy is not None:
        check_restart_policy(r.restart_policy)
    return []


def _check_cpuset(requested: str, available: str, what: str, things: str) -> None:
    if not requested:
        return
    try:
        wanted = parse_cpuset(requested)
    except ValueError:
        raise InvalidArgument(f"Invalid value {requested} for cpuset {what}") from None
    if not wanted <= parse_cpuset(available):
        raise InvalidArgument(
            f"Requested {things} are not available - requested {requested}, available: {available}"
        )


def parse_cpuset(text: str) -> set[int]:
    """Linux list format: "0-2,4" → {0, 1, 2, 4}; ValueError when malformed."""
    out: set[int] = set()
    for part in text.strip().split(","):
        start_s, dash, end_s = part.partition("-")
        start, end = int(start_s), int(end_s) if dash else int(start_s)
        if start < 0 or end < start:
            raise ValueError(text)
        out.update(range(start, end + 1))
    return out


def check_restart_policy(policy: dict[str, Any]) -> None:
    """dockerd's validateRestartPolicy, through the restart supervisor's model; an
    empty name leaves the policy as it is (as dockerd's update)."""
    if policy.get("Name"):
        restarts.RestartPolicy.of(policy).validate()


def current_swap(h: HostSettings) -> int:
    """The memory+swap limit as docker stores it: twice the memory when unset."""
    if h.memory_swap:
        return h.memory_swap
    return 2 * h.memory if h.memory > 0 else 0


def merge(c: Container, r: ResourceUpdate) -> HostSettings:
    """The container's settings after the update (moby's UpdateContainer), its
    conflicts worded as dockerd's."""
    h = c.host
    fail = lambda msg: Conflict(f"Cannot update container {c.id}: {msg}")  # noqa: E731
    if r.nano_cpus > 0 and h.cpu_period > 0:
        raise fail("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")  # fmt: skip
    if r.nano_cpus > 0 and h.cpu_quota > 0:
        raise fail("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")  # fmt: skip
    if r.cpu_period > 0 and h.nano_cpus > 0:
        raise fail("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")  # fmt: skip
    if r.cpu_quota > 0 and h.nano_cpus > 0:
        raise fail("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")  # fmt: skip
    new = replace(h, extra=dict(h.extra))
    if r.memory:
        swap = current_swap(h)
        if 0 < swap < r.memory and r.memory_swap == 0:
            raise fail(
                "Memory limit should be smaller than already set memoryswap limit, "
                "update the memoryswap at the same time"
            )
        # Beyond dockerd, which refuses here too: a container created without a
        # limit gets what `run -m` gives, swap as much as memory (2x in all).
        new.memory_swap = swap if swap else 2 * r.memory
        new.memory = r.memory
    for attr in ("memory_swap", "memory_reservation", "cpu_shares", "nano_cpus"):
        if getattr(r, attr):
            setattr(new, attr, getattr(r, attr))
    if new.memory > 0 and 0 < new.memory_swap < new.memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if r.cpu_period:
        new.cpu_period = r.cpu_period
    if r.cpu_quota:
        new.cpu_quota = r.cpu_quota
    if r.pids_limit is not None:
        new.pids_limit = r.pids_limit if r.pids_limit > 0 else -1
    for key, value in (
        ("CpusetCpus", r.cpuset_cpus),
        ("CpusetMems", r.cpuset_mems),
        ("BlkioWeight", r.blkio_weight),
    ):
        if value:
            new.extra[key] = value
    if r.restart_policy is not None and r.restart_policy.get("Name"):
        if h.auto_remove and r.restart_policy["Name"] != "no":
            raise fail(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        new.restart_policy = restarts.RestartPolicy.of(r.restart_policy).to_json()
        new.extra["RestartPolicy"] = dict(new.restart_policy)
    _echo_resources(new)
    return new


def _echo_resources(h: HostSettings) -> None:
    """HostConfig in inspect echoes `extra` over the typed fields: keep them equal."""
    for key, value in (
        ("Memory", h.memory), ("MemorySwap", h.memory_swap),
        ("MemoryReservation", h.memory_reservation), ("NanoCpus", h.nano_cpus),
        ("CpuShares", h.cpu_shares), ("CpuQuota", h.cpu_quota), ("CpuPeriod", h.cpu_period),
        ("PidsLimit", h.pids_limit),
    ):  # fmt: skip
        h.extra[key] = value


def limits_of(c: Container, host: HostSettings) -> Resources:
    """The OCI resources `host` means for this container (specgen's mapping)."""
    return Resources.from_dict(specgen.resources(replace(c, host=host)))


# ports (pure) ----------------------------------------------------------------------------------


def new_port_bindings(
    current: dict[str, Any] | None, add: dict[str, list[dict[str, str]]], remove: list[str]
) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings after an update: `add`'s ports replaced, `remove`'s gone."""
    out = {key: list(v or []) for key, v in (current or {}).items()}
    for key in remove:
        port, proto = portspec.split_proto(key)
        full = f"{port}/{proto}"
        if full not in out:
            raise InvalidArgument(f"port {full} is not published")
        del out[full]
    for key, entries in add.items():
        port, proto = portspec.split_proto(key)
        out[f"{port}/{proto}"] = [dict(e) for e in entries or [{}]]
    portspec.from_api(out)  # validates every entry, with docker's wording
    return out


# mounts (pure) -------------------------------------------------------------------------------


@dataclass
class MountPlan:
    keep: list[MountPoint]
    removed: list[MountPoint]
    added: list[MountPoint]  # settled by ContainerMounts.plan (volumes exist)
    extra: dict[str, Any]  # HostConfig Binds / Mounts / Tmpfs after the change


def plan_mounts(
    c: Container, req: UpdateRequest, settle: Callable[[dict[str, Any]], list[MountPoint]]
) -> MountPlan:
    """Which mount points go, which come (`settle` parses and creates volumes)."""
    by_dest = {m.destination: m for m in c.mounts}
    removed = []
    for dest in req.remove_mounts:
        norm = os.path.normpath(dest) if dest.startswith("/") else dest
        if norm not in by_dest:
            raise NotFound(f"no mount at {dest} in container {c.id}")
        removed.append(by_dest.pop(norm))
    added = settle({"Binds": req.binds, "Mounts": req.mounts}) if req.binds or req.mounts else []
    for m in added:
        if m.destination in by_dest:
            raise InvalidArgument(f"Duplicate mount point: {m.destination}")
    extra = dict(c.host.extra)
    gone = {m.destination for m in removed} | {m.destination for m in added}
    binds = [b for b in extra.get("Binds") or [] if _bind_dest(b) not in gone]
    mounts = [m for m in extra.get("Mounts") or [] if _norm(m.get("Target", "")) not in gone]
    tmpfs = {k: v for k, v in (extra.get("Tmpfs") or {}).items() if _norm(k) not in gone}
    for key, value in (("Binds", binds + req.binds), ("Mounts", mounts + req.mounts)):
        extra[key] = value or None
    if "Tmpfs" in extra:
        extra["Tmpfs"] = tmpfs or None
    return MountPlan(list(by_dest.values()), removed, added, extra)


def _bind_dest(spec: str) -> str:
    parts = spec.split(":")
    return _norm(parts[1] if len(parts) >= 2 else parts[0])


def _norm(path: str) -> str:
    return os.path.normpath(path) if path.startswith("/") else path


# the service -------------------------------------------------------------------------------------


class UpdateService:
    """Applies `UpdateRequest`s through a ContainerService (duck-typed: containers.py
    imports nothing of this)."""

    def __init__(self, containers: Any, cgroup_root: Path = cgrouplimits.DEFAULT_ROOT) -> None:
        self.containers = containers
        self.cgroup_root = cgroup_root

    async def update(self, ref: str, req: UpdateRequest) -> list[str]:
        c = self.containers.get(ref)
        warnings = verify(req.resources, os.cpu_count() or 1, *_online())
        async with self.containers.lock(c.id):
            if c.state.status in ("removing", "dead"):
                raise Conflict(
                    f"Cannot update container {c.id}: container is marked for removal "
                    'and cannot be "update"'
                )
            host = merge(c, req.resources)
            bindings = c.host.extra.get("PortBindings")
            if req.changes_ports:
                bindings = new_port_bindings(bindings, req.port_bindings, req.remove_ports)
                host.extra["PortBindings"] = bindings
            mplan = None
            if req.changes_mounts:
                mplan = await asyncio.to_thread(
                    plan_mounts, c, req, lambda extra: self.containers.mounts.plan(extra, {})
                )
                host.extra.update(mplan.extra)
            try:
                # As dockerd: a container between restarts gets the settings at its next start.
                if c.state.status in ("running", "paused") and c.state.pid:
                    await asyncio.to_thread(self._apply_live, c, host, req, mplan)
            except BaseException:
                if mplan is not None:
                    self.containers.mounts.remove_anonymous(mplan.added)
                raise
            self._store(c, host, req, mplan)
        self.containers.events.container(c, "update")
        return warnings

    def _store(
        self, c: Container, host: HostSettings, req: UpdateRequest, mplan: MountPlan | None
    ) -> None:
        if req.changes_ports:
            exposed = dict(c.config.exposed_ports)
            for key in host.extra.get("PortBindings") or {}:
                exposed.setdefault(key, {})  # as `run -p`: a published port is exposed
            image_ports = self._image_ports(c)
            for key in req.remove_ports:
                port, proto = portspec.split_proto(key)
                if f"{port}/{proto}" not in image_ports:
                    exposed.pop(f"{port}/{proto}", None)
            c.config = replace(c.config, exposed_ports=exposed)
        if mplan is not None:
            c.mounts = mplan.keep + mplan.added
        c.host = host
        self.containers.save(c)

    def _image_ports(self, c: Container) -> dict[str, Any]:
        try:
            return self.containers.images.default_config(c.image_id).exposed_ports
        except FreightError:
            return {}

    # live -----------------------------------------------------------------------------

    def _apply_live(
        self, c: Container, host: HostSettings, req: UpdateRequest, mplan: MountPlan | None
    ) -> None:
        undo: list[Callable[[], None]] = []
        try:
            self._write_limits(c, host, undo)
            if req.changes_ports:
                self._republish(c, host, undo)
            if mplan is not None:
                self._remount(c, mplan, undo)
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except (OSError, FreightError) as e:
                    log.warning("undoing part of the update of %s: %s", c.id[:12], e)
            raise

    def _write_limits(self, c: Container, host: HostSettings, undo: list) -> None:
        if _same_limits(c.host, host):
            return
        path = f"/{self.containers.cgroup_parent}/{c.id}"
        unified = cgrouplimits.is_unified(self.cgroup_root)
        dir_of = cgrouplimits.dirs_of(path, self.cgroup_root)

        def write(h: HostSettings) -> None:
            cgrouplimits.apply(cgrouplimits.plan(limits_of(c, h), unified, dir_of), dir_of)

        try:
            write(host)
        except FreightError as e:
            raise _cannot(c, e) from None
        # Undone by writing the old limits again (a later step failed).
        undo.append(lambda: write(c.host))

    def _republish(self, c: Container, host: HostSettings, undo: list) -> None:
        net = self.containers.network
        if net is None:
            raise Conflict("networking is not enabled in this daemon")
        old = portspec.from_api(c.host.extra.get("PortBindings"))
        new = portspec.from_api(host.extra.get("PortBindings"))
        try:
            net.republish(c, new)
        except FreightError as e:
            raise _cannot(c, e) from None
        undo.append(lambda: net.republish(c, old))

    def _remount(self, c: Container, plan: MountPlan, undo: list) -> None:
        pid = c.state.pid
        for m in plan.removed:
            livemount.detach(pid, m.destination)
            self._release(c, m)
            undo.append(lambda m=m: self._attach(c, m))
        for m in plan.added:
            self._attach(c, m)
            undo.append(lambda m=m: (livemount.detach(pid, m.destination), self._release(c, m)))

    def _attach(self, c: Container, m: MountPoint) -> None:
        if m.type == "tmpfs":
            raise Conflict(
                f"Cannot update container {c.id}: a tmpfs mount ({m.destination}) cannot be "
                "added to a running container: stop the container first"
            )
        source = self._source(c, m)
        try:
            livemount.attach(
                c.state.pid,
                livemount.LiveMount(source, m.destination, not m.rw, m.propagation or "rprivate"),
            )
        except OSError as e:
            if m.type == "volume" and m.name:
                self.containers.mounts.volumes.release(m.name, c.id)
            raise Conflict(
                f"Cannot update container {c.id}: cannot mount {source} at {m.destination} "
                f"in the running container ({e.strerror}); stop the container first to "
                "change its mounts"
            ) from None

    def _source(self, c: Container, m: MountPoint) -> str:
        if m.type == "volume":
            source = self.containers.mounts.volumes.acquire(m.name, c.id)
            if m.copy_data:
                rootfs = self.containers.tasks.paths(c.id).rootfs
                containermounts.copy_up(rootfs, m.destination, Path(source))
                m.copy_data = False
            return str(source)
        if m.create_source and not os.path.exists(m.source):
            os.makedirs(m.source, 0o755, exist_ok=True)  # as `-v`: a missing directory is made
        if not os.path.exists(m.source):
            raise InvalidArgument(f"bind source path does not exist: {m.source}")
        return m.source

    def _release(self, c: Container, m: MountPoint) -> None:
        if m.type == "volume" and m.name:
            with contextlib.suppress(FreightError):
                self.containers.mounts.volumes.release(m.name, c.id)


def _same_limits(a: HostSettings, b: HostSettings) -> bool:
    keys = ("CpusetCpus", "CpusetMems", "BlkioWeight")
    fields = ("memory", "memory_swap", "memory_reservation", "nano_cpus", "cpu_shares")
    more = ("cpu_quota", "cpu_period", "pids_limit")
    return all(getattr(a, f) == getattr(b, f) for f in fields + more) and all(
        a.extra.get(k) == b.extra.get(k) for k in keys
    )


def _cannot(c: Container, e: FreightError) -> FreightError:
    """dockerd's "Cannot update container <id>: …", keeping the error's kind."""
    return type(e)(f"Cannot update container {c.id}: {e}")


def _online() -> tuple[str, str]:
    """The host's online CPUs and memory nodes in list format ("0-1", "0")."""
    out = []
    for path, default in ((_CPU_ONLINE, f"0-{(os.cpu_count() or 1) - 1}"), (_NODES_ONLINE, "0")):
        try:
            out.append(path.read_text().strip() or default)
        except OSError:
            out.append(default)
    return out[0], out[1]
