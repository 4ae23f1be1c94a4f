"""Docker's container model + the image's config → an OCI runtime spec.

One of the two translators in freight (the other is the runtime's reading of
the spec). Everything Docker decides for a container by default lives here:
the 14 default capabilities, the masked and read-only /proc paths, the
standard mounts of /dev, /proc and /sys, and the cgroup resource mapping.
The output is OCI runtime config.json (validated against the schema in tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.linux.capabilities import CAP_NUMBERS
from freight.linux.userns import IdMap
from freight.services import hostsecurity, seccompprofile, userns
from freight.services.model import Container, ExecConfig
from freight.services.usergroup import ExecUser

OCI_VERSION = "1.0.2"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set (moby oci/caps/defaults.go), in its order.
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip

# Every capability the kernel of this era knows (--privileged), in kernel order.
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]  # fmt: skip

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]  # fmt: skip

READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

CPU_PERIOD_US = 100_000

# The device cgroup of an unprivileged container: nothing but runc's default nodes
# (null, zero, full, random, urandom, tty, ptmx, pts, tun), and mknod of any node
# (a node made is still unusable without its rw rule).
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2),
                           (136, -1), (10, 200))),
]  # fmt: skip


@dataclass(frozen=True)
class SpecInputs:
    """What the spec is made of, resolved by the container service beforehand."""

    container: Container
    rootfs: Path
    user: ExecUser
    files_dir: Path  # holds hostname, hosts, resolv.conf for bind mounts
    cgroup_parent: str = "freight"
    init_binary: Path | None = None  # --init: a static reaper bound at /sbin/docker-init
    # Volumes, binds and tmpfs of the container (services.containermounts), parents first.
    mounts: list[dict[str, Any]] = field(default_factory=list)
    # Namespaces joined from another container (--ipc/--pid container:X): type → path.
    joins: dict[str, str] = field(default_factory=dict)
    cgroup2: bool = False  # the host's cgroups are unified (decides the cgroupns default)
    idmap: IdMap | None = None  # a user namespace with these maps (services.userns)
    # freightd --seccomp-profile (the profile's JSON, or unconfined): for containers
    # that choose none; None: Docker's default profile.
    seccomp_default: str | None = None


INIT_PATH = "/sbin/docker-init"


def generate(inputs: SpecInputs) -> dict[str, Any]:
    c = inputs.container
    process = _process(c, inputs.user)
    # A user's mount at /dev/shm or /etc/hosts replaces Docker's default one, as in moby.
    taken = {m["destination"] for m in inputs.mounts}
    defaults = _mounts(inputs.files_dir, c, inputs.joins)
    if inputs.idmap is not None:
        defaults = [userns.sysfs_in_userns(m) for m in defaults]
    mounts = [m for m in defaults if m["destination"] not in taken]
    mounts += inputs.mounts
    if c.host.extra.get("Init") and inputs.init_binary is not None:
        # As Docker: the reaper is PID 1 and runs the command as its child.
        process["args"] = [INIT_PATH, "--", *process["args"]]
        mounts.append(
            {"destination": INIT_PATH, "type": "bind", "source": str(inputs.init_binary),
             "options": ["bind", "ro"]}
        )  # fmt: skip
    spec = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(inputs.rootfs), "readonly": c.host.readonly_rootfs},
        "hostname": container_hostname(c),
        "mounts": mounts,
        "linux": _linux(c, inputs),
        "annotations": {"org.freight.container.name": c.name},
    }
    if hostsecurity.uts_mode(c.host) == "host":
        del spec["hostname"]  # the host's UTS namespace keeps the host's name
    return spec


def container_hostname(c: Container) -> str:
    if hostsecurity.uts_mode(c.host) == "host":
        return os.uname().nodename
    return c.config.hostname or c.id[:12]


def process_env(c: Container, user: ExecUser) -> list[str]:
    """The env of the container's process: HOSTNAME, PATH and HOME added like Docker."""
    env = [f"HOSTNAME={container_hostname(c)}"]
    names = {e.split("=", 1)[0] for e in c.config.env}
    if "PATH" not in names:
        env.append(DEFAULT_PATH_ENV)
    env += c.config.env
    if "HOME" not in names:
        env.append(f"HOME={user.home or '/'}")
    return env


def exec_process(c: Container, e: ExecConfig, user: ExecUser) -> dict[str, Any]:
    """The OCI `process` of an exec: the container's settings, the exec's overrides."""
    process = _process(c, user, privileged=e.privileged)
    env = process["env"]
    names = {entry.split("=", 1)[0] for entry in e.env}
    process.update(
        terminal=e.tty,
        args=e.cmd,
        env=[entry for entry in env if entry.split("=", 1)[0] not in names] + e.env,
        cwd=e.working_dir or c.config.working_dir or "/",
    )
    return process


def _process(c: Container, user: ExecUser, privileged: bool = False) -> dict[str, Any]:
    if privileged or c.host.privileged:
        caps = host_capabilities()
    else:
        caps = capabilities(c.host.cap_add, c.host.cap_drop)
    # Docker gives a non-root user the bounding set only: its effective and
    # permitted sets are empty, as after any setuid to a non-zero uid.
    is_root = user.uid == 0
    return {
        "terminal": c.config.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "args": [c.path, *c.args],
        "env": process_env(c, user),
        "cwd": c.config.working_dir or "/",
        "capabilities": {
            "bounding": caps,
            "effective": caps if is_root else [],
            "permitted": caps if is_root else [],
        },
        "noNewPrivileges": hostsecurity.security_options(c.host).no_new_privileges,
        "rlimits": hostsecurity.rlimits(c.host),
        **_oom_score(c),
    }


def _oom_score(c: Container) -> dict[str, int]:
    score = hostsecurity.oom_score_adj(c.host)
    return {} if score is None else {"oomScoreAdj": score}


def find_init_binary() -> Path | None:
    """A static init for --init: Debian's tini (tini-static) or catatonit."""
    for candidate in (
        "/usr/bin/tini-static",
        "/usr/bin/catatonit",
        "/usr/libexec/podman/catatonit",
    ):
        if Path(candidate).exists():
            return Path(candidate)
    return None


def host_capabilities(status: Path = Path("/proc/self/status")) -> list[str]:
    """Every capability the daemon's bounding set allows (what --privileged gets):
    a host may lack some (this one has no CAP_SYS_RESOURCE), and asking for
    one the kernel withholds would fail the start."""
    bounding = 0
    for line in status.read_text().splitlines():
        if line.startswith("CapBnd:"):
            bounding = int(line.split()[1], 16)
    return [cap for cap in ALL_CAPS if bounding >> CAP_NUMBERS.get(cap, 63) & 1]


def capabilities(add: list[str], drop: list[str]) -> list[str]:
    """Docker's default set adjusted by --cap-add/--cap-drop (ALL understood)."""

    def norm(name: str) -> str:
        name = name.upper()
        return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name

    adds, drops = {norm(a) for a in add}, {norm(d) for d in drop}
    caps = [] if "ALL" in drops else [c for c in DEFAULT_CAPS if c not in drops]
    caps += sorted(a for a in adds - {"ALL"} if a not in caps)
    return caps


def _shm_mount(c: Container, joins: dict[str, str], files_dir: Path) -> list[dict[str, Any]]:
    """/dev/shm by IPC mode: its own tmpfs, the host's, the donor's, or none."""
    mode = hostsecurity.ipc_mode(c.host)
    if mode == "none":
        return []
    if mode == "host":
        source = "/dev/shm"
    elif hostsecurity.container_ref(mode):
        source = joins["shm"]
    elif mode == "shareable":
        source = str(hostsecurity.shared_shm_dir(files_dir))
    else:
        size = hostsecurity.shm_size(c.host)
        return [{"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={size}"]}]  # fmt: skip
    return [{"destination": "/dev/shm", "type": "bind", "source": source,
             "options": ["rbind", "rprivate"]}]  # fmt: skip


def _mounts(files_dir: Path, c: Container, joins: dict[str, str]) -> list[dict[str, Any]]:
    # A privileged container may write /sys and its cgroups, as with Docker.
    ro = [] if c.host.privileged else ["ro"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": [*ro, "nosuid", "noexec", "nodev", "relatime"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        *_shm_mount(c, joins, files_dir),
    ]  # fmt: skip
    for name in ("resolv.conf", "hostname", "hosts"):
        mounts.append(
            {
                "destination": f"/etc/{name}",
                "type": "bind",
                "source": str(files_dir / name),
                "options": ["rbind", "rprivate"],
            }
        )
    return mounts


def _linux(c: Container, inputs: SpecInputs) -> dict[str, Any]:
    h = c.host
    res = resources(c)
    mapped = hostsecurity.host_devices() if h.privileged else hostsecurity.mapped_devices(h)
    if h.privileged:
        res["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        res["devices"] = DEFAULT_DEVICE_RULES + [d.oci_rule() for d in mapped]
    linux: dict[str, Any] = {
        "namespaces": namespaces(c, inputs.joins, inputs.cgroup2),
        "resources": res,
        "cgroupsPath": f"/{inputs.cgroup_parent}/{c.id}",
    }
    if mapped:
        linux["devices"] = [d.oci_device() for d in mapped]
    if sysctl := hostsecurity.sysctls(h):
        linux["sysctl"] = sysctl
    if inputs.idmap is not None:
        linux["namespaces"].append({"type": "user"})
        linux.update(userns.spec_fields(inputs.idmap))
    if not h.privileged:  # Docker: --privileged sees /proc unmasked and writable
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS
    choice = hostsecurity.security_options(h).seccomp or inputs.seccomp_default
    bounding = host_capabilities() if h.privileged else capabilities(h.cap_add, h.cap_drop)
    profile = seccompprofile.container_seccomp(choice, h.privileged, bounding)
    if profile is not None:
        linux["seccomp"] = profile
    return linux


def namespaces(c: Container, joins: dict[str, str], cgroup2: bool) -> list[dict[str, str]]:
    """The container's namespaces: new ones, joined ones (container:X), none for host."""
    h = c.host
    modes = {
        "pid": hostsecurity.pid_mode(h),
        "uts": hostsecurity.uts_mode(h),
        "ipc": hostsecurity.ipc_mode(h),
        "cgroup": "private" if hostsecurity.cgroupns_mode(h, cgroup2) == "private" else "host",
    }
    out: list[dict[str, str]] = []
    for kind in ("pid", "mount", "uts", "ipc", "network", "cgroup"):
        mode = modes.get(kind, "")
        if kind in joins:
            out.append({"type": kind, "path": joins[kind]})
        elif mode != "host":
            out.append({"type": kind})
    return out


def resources(c: Container) -> dict[str, Any]:
    """cgroup limits in OCI terms; memory.swap is memory+swap, as in cgroup v1."""
    h = c.host
    res: dict[str, Any] = {}
    memory: dict[str, int] = {}
    if h.memory > 0:
        memory["limit"] = h.memory
        # Docker: no --memory-swap means swap as large as memory (limit ×2).
        memory["swap"] = h.memory_swap if h.memory_swap != 0 else 2 * h.memory
    if h.memory_reservation > 0:
        memory["reservation"] = h.memory_reservation
    if memory:
        res["memory"] = memory
    cpu: dict[str, int] = {}
    if h.nano_cpus > 0:
        cpu["period"] = CPU_PERIOD_US
        cpu["quota"] = h.nano_cpus * CPU_PERIOD_US // 1_000_000_000
    elif h.cpu_quota > 0:
        cpu["quota"] = h.cpu_quota
        cpu["period"] = h.cpu_period or CPU_PERIOD_US
    if h.cpu_shares > 0:
        cpu["shares"] = h.cpu_shares
    cpuset: dict[str, str] = {
        oci: str(h.extra[key])
        for key, oci in (("CpusetCpus", "cpus"), ("CpusetMems", "mems"))
        if h.extra.get(key)
    }
    if cpu or cpuset:
        res["cpu"] = {**cpu, **cpuset}
    if h.pids_limit is not None and h.pids_limit != 0:
        res["pids"] = {"limit": h.pids_limit}
    if h.extra.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(h.extra["BlkioWeight"])}
    return res


def set_network(spec: dict[str, Any], netns: str | None) -> None:
    """Point the spec's network namespace at `netns`: a path to join (a namespace the
    network service made), "" for a new private one, None for the host's."""
    namespaces = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
    if netns is not None:
        namespaces.append({"type": "network", "path": netns} if netns else {"type": "network"})
    spec["linux"]["namespaces"] = namespaces
