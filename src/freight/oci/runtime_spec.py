"""The OCI runtime configuration (a bundle's config.json) as typed dataclasses.

Owns the wire shape only: exact OCI keys in, exact OCI keys out. The subset
freight emits and consumes is modelled field by field; keys outside it (hooks,
seccomp, …) are kept in `extra` dicts so a spec survives a round trip
unchanged. Turning a spec into something a runtime can act on (validation,
flag parsing) is the runtime's job, not this module's.

Shape (schema: specs/oci-runtime/config-schema.json)::

    Spec ─┬─ process: Process ─┬─ user: User   (also alone: `exec --process FILE`)
          │                    ├─ consoleSize: ConsoleSize
          │                    ├─ capabilities: Capabilities
          │                    └─ rlimits: [Rlimit]
          ├─ root: Root
          ├─ mounts: [Mount]
          └─ linux: Linux ─┬─ namespaces: [Namespace]
                           ├─ resources: Resources ─ memory / cpu / pids / devices
                           └─ devices: [Device]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

OCI_VERSION = "1.0.2"

JSON = dict[str, Any]


def _compact(d: JSON) -> JSON:
    """Drop unset (None) values so the output only carries what was given."""
    return {k: v for k, v in d.items() if v is not None}


def _split_extra(d: JSON, known: tuple[str, ...]) -> JSON:
    return {k: v for k, v in d.items() if k not in known}


@dataclass
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: JSON) -> User:
        return cls(
            d.get("uid", 0), d.get("gid", 0), d.get("umask"), list(d.get("additionalGids") or [])
        )

    def to_dict(self) -> JSON:
        return _compact(
            {
                "uid": self.uid,
                "gid": self.gid,
                "umask": self.umask,
                "additionalGids": self.additional_gids or None,
            }
        )


CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


@dataclass
class Capabilities:
    """Capability names as OCI writes them ("CAP_CHOWN"), one list per set."""

    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: JSON) -> Capabilities:
        return cls(*(list(d.get(name) or []) for name in CAP_SETS))

    def to_dict(self) -> JSON:
        return {name: getattr(self, name) for name in CAP_SETS}


@dataclass
class Rlimit:
    type: str
    hard: int
    soft: int

    @classmethod
    def from_dict(cls, d: JSON) -> Rlimit:
        return cls(d["type"], d["hard"], d["soft"])

    def to_dict(self) -> JSON:
        return {"type": self.type, "hard": self.hard, "soft": self.soft}


@dataclass
class ConsoleSize:
    """The terminal's first window size (process.consoleSize; only with `terminal`)."""

    height: int
    width: int

    @classmethod
    def from_dict(cls, d: JSON) -> ConsoleSize:
        return cls(int(d.get("height", 0)), int(d.get("width", 0)))

    def to_dict(self) -> JSON:
        return {"height": self.height, "width": self.width}


_PROCESS_KEYS = (
    "terminal",
    "consoleSize",
    "user",
    "args",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "oomScoreAdj",
)


@dataclass
class Process:
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] = field(default_factory=list)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: JSON) -> Process:
        caps, size = d.get("capabilities"), d.get("consoleSize")
        return cls(
            args=list(d.get("args") or []),
            env=list(d.get("env") or []),
            cwd=d.get("cwd", "/"),
            terminal=bool(d.get("terminal", False)),
            console_size=ConsoleSize.from_dict(size) if size else None,
            user=User.from_dict(d.get("user") or {}),
            capabilities=Capabilities.from_dict(caps) if caps is not None else None,
            rlimits=[Rlimit.from_dict(r) for r in d.get("rlimits") or []],
            no_new_privileges=bool(d.get("noNewPrivileges", False)),
            oom_score_adj=d.get("oomScoreAdj"),
            extra=_split_extra(d, _PROCESS_KEYS),
        )

    @classmethod
    def from_json(cls, data: bytes) -> Process:
        """A process alone (`runc exec --process FILE`)."""
        return cls.from_dict(json.loads(data))

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    def to_dict(self) -> JSON:
        out = _compact(
            {
                "terminal": self.terminal,
                "consoleSize": self.console_size.to_dict() if self.console_size else None,
                "user": self.user.to_dict(),
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
                "capabilities": self.capabilities.to_dict() if self.capabilities else None,
                "rlimits": [r.to_dict() for r in self.rlimits] or None,
                "noNewPrivileges": self.no_new_privileges or None,
                "oomScoreAdj": self.oom_score_adj,
            }
        )
        return {**out, **self.extra}


@dataclass
class Root:
    path: str
    readonly: bool = False

    @classmethod
    def from_dict(cls, d: JSON) -> Root:
        return cls(d["path"], bool(d.get("readonly", False)))

    def to_dict(self) -> JSON:
        return {"path": self.path, "readonly": self.readonly}


@dataclass
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: JSON) -> Mount:
        return cls(d["destination"], d.get("type"), d.get("source"), list(d.get("options") or []))

    def to_dict(self) -> JSON:
        return _compact(
            {
                "destination": self.destination,
                "type": self.type,
                "source": self.source,
                "options": self.options or None,
            }
        )


@dataclass
class Namespace:
    """One of pid, network, mount, ipc, uts, user, cgroup, time; `path` joins an existing one."""

    type: str
    path: str | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> Namespace:
        return cls(d["type"], d.get("path"))

    def to_dict(self) -> JSON:
        return _compact({"type": self.type, "path": self.path})


@dataclass
class Memory:
    limit: int | None = None
    swap: int | None = None  # memory + swap, as in cgroup v1's memsw
    reservation: int | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> Memory:
        return cls(d.get("limit"), d.get("swap"), d.get("reservation"))

    def to_dict(self) -> JSON:
        return _compact({"limit": self.limit, "swap": self.swap, "reservation": self.reservation})


@dataclass
class Cpu:
    shares: int | None = None
    quota: int | None = None
    period: int | None = None
    cpus: str | None = None
    mems: str | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> Cpu:
        return cls(d.get("shares"), d.get("quota"), d.get("period"), d.get("cpus"), d.get("mems"))

    def to_dict(self) -> JSON:
        return _compact(
            {
                "shares": self.shares,
                "quota": self.quota,
                "period": self.period,
                "cpus": self.cpus,
                "mems": self.mems,
            }
        )


@dataclass
class DeviceRule:
    """A device cgroup rule: allow/deny `type` (a, c, b) major:minor with `access` (rwm)."""

    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> DeviceRule:
        return cls(d["allow"], d.get("type"), d.get("major"), d.get("minor"), d.get("access"))

    def to_dict(self) -> JSON:
        return _compact(
            {
                "allow": self.allow,
                "type": self.type,
                "major": self.major,
                "minor": self.minor,
                "access": self.access,
            }
        )


@dataclass
class Resources:
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids_limit: int | None = None
    devices: list[DeviceRule] = field(default_factory=list)
    blkio_weight: int | None = None  # blockIO.weight

    @classmethod
    def from_dict(cls, d: JSON) -> Resources:
        mem, cpu, pids = d.get("memory"), d.get("cpu"), d.get("pids")
        return cls(
            memory=Memory.from_dict(mem) if mem is not None else None,
            cpu=Cpu.from_dict(cpu) if cpu is not None else None,
            pids_limit=pids.get("limit") if pids else None,
            devices=[DeviceRule.from_dict(r) for r in d.get("devices") or []],
            blkio_weight=(d.get("blockIO") or {}).get("weight"),
        )

    def to_dict(self) -> JSON:
        return _compact(
            {
                "memory": self.memory.to_dict() if self.memory else None,
                "cpu": self.cpu.to_dict() if self.cpu else None,
                "pids": {"limit": self.pids_limit} if self.pids_limit is not None else None,
                "devices": [r.to_dict() for r in self.devices] or None,
                "blockIO": {"weight": self.blkio_weight} if self.blkio_weight else None,
            }
        )


@dataclass
class Device:
    """A device node to create in the container's /dev."""

    path: str
    type: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def from_dict(cls, d: JSON) -> Device:
        return cls(
            d["path"],
            d["type"],
            d.get("major"),
            d.get("minor"),
            d.get("fileMode"),
            d.get("uid"),
            d.get("gid"),
        )

    def to_dict(self) -> JSON:
        return _compact(
            {
                "path": self.path,
                "type": self.type,
                "major": self.major,
                "minor": self.minor,
                "fileMode": self.file_mode,
                "uid": self.uid,
                "gid": self.gid,
            }
        )


_LINUX_KEYS = (
    "namespaces",
    "resources",
    "cgroupsPath",
    "maskedPaths",
    "readonlyPaths",
    "devices",
    "sysctl",
    "rootfsPropagation",
)


@dataclass
class Linux:
    namespaces: list[Namespace] = field(default_factory=list)
    resources: Resources | None = None
    cgroups_path: str | None = None
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    rootfs_propagation: str | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: JSON) -> Linux:
        res = d.get("resources")
        return cls(
            namespaces=[Namespace.from_dict(n) for n in d.get("namespaces") or []],
            resources=Resources.from_dict(res) if res is not None else None,
            cgroups_path=d.get("cgroupsPath"),
            masked_paths=list(d.get("maskedPaths") or []),
            readonly_paths=list(d.get("readonlyPaths") or []),
            devices=[Device.from_dict(x) for x in d.get("devices") or []],
            sysctl=dict(d.get("sysctl") or {}),
            rootfs_propagation=d.get("rootfsPropagation"),
            extra=_split_extra(d, _LINUX_KEYS),
        )

    def to_dict(self) -> JSON:
        out = _compact(
            {
                "namespaces": [n.to_dict() for n in self.namespaces],
                "resources": self.resources.to_dict() if self.resources else None,
                "cgroupsPath": self.cgroups_path,
                "maskedPaths": self.masked_paths or None,
                "readonlyPaths": self.readonly_paths or None,
                "devices": [x.to_dict() for x in self.devices] or None,
                "sysctl": self.sysctl or None,
                "rootfsPropagation": self.rootfs_propagation,
            }
        )
        return {**out, **self.extra}


_SPEC_KEYS = ("ociVersion", "process", "root", "hostname", "mounts", "linux", "annotations")


@dataclass
class Spec:
    """A whole config.json."""

    oci_version: str = OCI_VERSION
    process: Process | None = None
    root: Root | None = None
    hostname: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    linux: Linux | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: JSON) -> Spec:
        proc, root, linux = d.get("process"), d.get("root"), d.get("linux")
        return cls(
            oci_version=d.get("ociVersion", OCI_VERSION),
            process=Process.from_dict(proc) if proc is not None else None,
            root=Root.from_dict(root) if root is not None else None,
            hostname=d.get("hostname"),
            mounts=[Mount.from_dict(m) for m in d.get("mounts") or []],
            linux=Linux.from_dict(linux) if linux is not None else None,
            annotations=dict(d.get("annotations") or {}),
            extra=_split_extra(d, _SPEC_KEYS),
        )

    def to_dict(self) -> JSON:
        out = _compact(
            {
                "ociVersion": self.oci_version,
                "process": self.process.to_dict() if self.process else None,
                "root": self.root.to_dict() if self.root else None,
                "hostname": self.hostname,
                "mounts": [m.to_dict() for m in self.mounts],
                "linux": self.linux.to_dict() if self.linux else None,
                "annotations": self.annotations or None,
            }
        )
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: bytes) -> Spec:
        return cls.from_dict(json.loads(data))

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2).encode()
