"""The runtime's spec conversion: an OCI `Spec` becomes a validated `ContainerConfig`.

Everything that can be checked before forking is checked here (unknown
namespace, capability or rlimit names, relative cwd, missing args), so the
container init only executes a plan and its errors are about the system,
not the spec. Mount option strings are parsed into MS_* flags here too.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import InvalidArgument
from freight.linux import capabilities, seccomp, syscalls, userns
from freight.linux.mountopts import PROPAGATION, parse_mount_options
from freight.oci.runtime_spec import (
    Capabilities,
    Device,
    Mount,
    Process,
    Resources,
    Rlimit,
    Spec,
)
from freight.runtime.seccompspec import to_filter

NAMESPACE_FLAGS: dict[str, int] = {
    "pid": syscalls.CLONE_NEWPID,
    "network": syscalls.CLONE_NEWNET,
    "mount": syscalls.CLONE_NEWNS,
    "ipc": syscalls.CLONE_NEWIPC,
    "uts": syscalls.CLONE_NEWUTS,
    "cgroup": syscalls.CLONE_NEWCGROUP,
    "user": syscalls.CLONE_NEWUSER,
}

# runc creates these in every container with a tmpfs /dev (libcontainer/specconv).
DEFAULT_DEVICES: tuple[Device, ...] = (
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
)


@dataclass(frozen=True)
class MountOp:
    """One spec mount with its options parsed."""

    destination: str
    type: str
    source: str
    flags: int
    data: str
    propagation: tuple[int, ...] = ()

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & syscalls.MS_BIND)


@dataclass(frozen=True)
class CapSets:
    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int


@dataclass
class ProcessConfig:
    args: list[str]
    env: list[str]
    cwd: str
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    umask: int | None = None
    caps: CapSets | None = None
    rlimits: list[tuple[int, int, int]] = field(default_factory=list)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    # The container's filter (linux.seccomp); an exec gets its container's too.
    seccomp: seccomp.Filter | None = None
    seccomp_program: bytes | None = None  # `seccomp` compiled, set before the fork

    def path_env(self) -> str:
        """The PATH the command is looked up on (runc's default when the env has none)."""
        for item in reversed(self.env):
            if item.startswith("PATH="):
                return item[5:]
        return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ContainerConfig:
    id: str
    bundle: str
    rootfs: str
    readonly: bool
    hostname: str | None
    mounts: list[MountOp]
    process: ProcessConfig
    unshare_flags: int
    join: list[tuple[int, str]]
    cgroups_path: str
    resources: Resources | None
    masked_paths: list[str]
    readonly_paths: list[str]
    devices: list[Device]
    sysctl: dict[str, str]
    propagation: int
    annotations: dict[str, str]
    # linux.uidMappings/gidMappings: the new user namespace's maps (with a "user" namespace).
    idmap: userns.IdMap | None = None


def _mount_op(m: Mount, bundle: str) -> MountOp:
    if not m.destination.startswith("/"):
        raise InvalidArgument(f"mount destination {m.destination!r} is not absolute")
    flags, propagation, data = parse_mount_options(m.options)
    mtype = m.type or ("bind" if flags & syscalls.MS_BIND else "none")
    if mtype == "bind":
        flags |= syscalls.MS_BIND
    source = m.source or mtype
    if flags & syscalls.MS_BIND and not source.startswith("/"):
        source = os.path.join(bundle, source)  # OCI: relative to the bundle
    return MountOp(os.path.normpath(m.destination), mtype, source, flags, data, propagation)


def _capsets(caps: Capabilities | None) -> CapSets | None:
    if caps is None:
        return None
    try:
        masks = [capabilities.to_mask(getattr(caps, n)) for n in ("bounding", "effective")]
        masks += [capabilities.to_mask(getattr(caps, n)) for n in ("permitted", "inheritable")]
        masks.append(capabilities.to_mask(caps.ambient))
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    return CapSets(*masks)


def _rlimits(spec_rlimits: list[Rlimit]) -> list[tuple[int, int, int]]:
    out = []
    for r in spec_rlimits:
        number = getattr(resource, r.type, None)
        if not r.type.startswith("RLIMIT_") or number is None:
            raise InvalidArgument(f"unknown rlimit type {r.type!r}")
        out.append((number, r.soft, r.hard))
    return out


def process_config(p: Process | None) -> ProcessConfig:
    """Validate a spec's process, or an exec's `--process` file."""
    if p is None or not p.args:
        raise InvalidArgument("process.args must not be empty")
    if not p.cwd.startswith("/"):
        raise InvalidArgument(f"cwd {p.cwd!r} is not an absolute path")
    return ProcessConfig(
        args=list(p.args),
        env=list(p.env),
        cwd=p.cwd,
        uid=p.user.uid,
        gid=p.user.gid,
        additional_gids=list(p.user.additional_gids),
        umask=p.user.umask,
        caps=_capsets(p.capabilities),
        rlimits=_rlimits(p.rlimits),
        no_new_privileges=p.no_new_privileges,
        oom_score_adj=p.oom_score_adj,
        terminal=p.terminal,
        console_size=_console_size(p),
    )


def _console_size(p: Process) -> tuple[int, int] | None:
    size = p.console_size
    if not p.terminal or size is None or not (size.height and size.width):
        return None
    if not (0 < size.height < 1 << 16 and 0 < size.width < 1 << 16):
        raise InvalidArgument(f"consoleSize {size.height}x{size.width} is out of range")
    return size.height, size.width


def _namespaces(spec: Spec) -> tuple[int, list[tuple[int, str]]]:
    flags, join = 0, []
    for ns in spec.linux.namespaces if spec.linux else []:
        flag = NAMESPACE_FLAGS.get(ns.type)
        if flag is None:
            raise InvalidArgument(f"namespace type {ns.type!r} is not supported")
        if flag == syscalls.CLONE_NEWUSER and ns.path:
            raise InvalidArgument("joining a user namespace by path is not supported")
        if ns.path:
            join.append((flag, ns.path))
        else:
            flags |= flag
    return flags, join


def convert(container_id: str, bundle: Path, spec: Spec) -> ContainerConfig:
    """Validate `spec` (from `bundle`/config.json) and resolve paths against the bundle."""
    if spec.root is None:
        raise InvalidArgument("root.path is required")
    bundle_s = str(bundle.resolve())
    flags, join = _namespaces(spec)
    if not flags & syscalls.CLONE_NEWNS and not any(f == syscalls.CLONE_NEWNS for f, _ in join):
        raise InvalidArgument("a mount namespace is required")
    if spec.hostname and not flags & syscalls.CLONE_NEWUTS:
        raise InvalidArgument("unable to set hostname without a private UTS namespace")
    linux = spec.linux
    propagation = linux.rootfs_propagation if linux and linux.rootfs_propagation else "rprivate"
    if propagation not in PROPAGATION:
        raise InvalidArgument(f"rootfsPropagation {propagation!r} is not valid")
    process = process_config(spec.process)
    process.seccomp = seccomp_filter(spec)
    idmap = id_mappings(spec, flags)
    return ContainerConfig(
        id=container_id,
        bundle=bundle_s,
        rootfs=os.path.join(bundle_s, spec.root.path),
        readonly=spec.root.readonly,
        hostname=spec.hostname,
        mounts=[_mount_op(m, bundle_s) for m in spec.mounts],
        process=process,
        unshare_flags=flags,
        join=join,
        cgroups_path=(linux.cgroups_path if linux else None) or f"/freight/{container_id}",
        resources=linux.resources if linux else None,
        masked_paths=list(linux.masked_paths) if linux else [],
        readonly_paths=list(linux.readonly_paths) if linux else [],
        devices=list(linux.devices) if linux else [],
        sysctl=dict(linux.sysctl) if linux else {},
        # Applied to "/" recursively: the schema's "private" must not leave shared submounts.
        propagation=PROPAGATION[propagation] | syscalls.MS_REC,
        annotations=dict(spec.annotations),
        idmap=idmap,
    )


def _ranges(raw: object, key: str) -> tuple[userns.IdRange, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument(f"linux.{key} must list at least one mapping with a user namespace")
    try:
        out = tuple(userns.IdRange(m["containerID"], m["hostID"], m["size"]) for m in raw)
    except (KeyError, TypeError) as e:
        raise InvalidArgument(f"linux.{key}: each mapping needs containerID, hostID, size") from e
    for r in out:
        if min(r.inner, r.outer) < 0 or r.size <= 0 or max(r.inner, r.outer) + r.size > 1 << 32:
            raise InvalidArgument(
                f"linux.{key}: mapping {r.inner}:{r.outer}:{r.size} is out of range"
            )
    return out


def id_mappings(spec: Spec, flags: int) -> userns.IdMap | None:
    """The maps of a new user namespace; maps without one are refused (as runc)."""
    extra = spec.linux.extra if spec.linux else {}
    uids, gids = extra.get("uidMappings"), extra.get("gidMappings")
    if not flags & syscalls.CLONE_NEWUSER:
        if uids or gids:
            raise InvalidArgument("user namespace mappings specified, but no user namespace")
        return None
    return userns.IdMap(_ranges(uids, "uidMappings"), _ranges(gids, "gidMappings"))


def seccomp_filter(spec: Spec) -> seccomp.Filter | None:
    """The spec's validated seccomp filter; a spec asking for one where libseccomp
    is missing fails here, never by running the container unconfined."""
    raw = spec.linux.extra.get("seccomp") if spec.linux else None
    f = to_filter(raw)
    if f is not None and not seccomp.available():
        raise InvalidArgument("seccomp: the spec has a filter but libseccomp.so.2 is missing")
    return f
