"""Docker's privilege and isolation options of a container: checked at create, applied to the spec.

Owns the HostConfig keys that decide what a container may do to its host:
SecurityOpt (seccomp, no-new-privileges), Privileged, Devices, Sysctls,
Ulimits, OomScoreAdj, ShmSize and the namespace modes IpcMode, PidMode,
UTSMode, CgroupnsMode. They stay in `HostSettings.extra` as the API gave them;
`validate()` rejects bad values at create with Docker's messages (so nothing
is half applied), and specgen asks the functions below for their OCI form.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight.errors import Conflict, InvalidArgument
from freight.linux import syscalls
from freight.services import seccompprofile
from freight.services.model import Container, HostSettings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Sysctls that are namespaced (moby opts.ValidateSysctl): the rest would change the host.
NAMESPACED_SYSCTLS = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}  # fmt: skip
NAMESPACED_SYSCTL_PREFIXES = ("net.", "fs.mqueue.")

ULIMITS = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip

DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# Skipped when --privileged copies the host's /dev (as moby's HostDevices).
_SKIPPED_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


@dataclass(frozen=True)
class SecurityOptions:
    seccomp: str | None = None  # "unconfined", "builtin" or a profile's JSON
    no_new_privileges: bool = False


def parse_security_opts(opts: list[str]) -> SecurityOptions:
    """SecurityOpt entries, with moby's messages (label/apparmor are accepted, unused)."""
    seccomp, nnp = None, False
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":
            continue
        sep = "=" if "=" in opt else ":"
        key, found, value = opt.partition(sep)
        if not found:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        if key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges":
            if value.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            nnp = value.lower() in ("1", "t", "true")
        elif key not in ("label", "apparmor"):
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return SecurityOptions(seccomp, nnp)


def security_options(host: HostSettings) -> SecurityOptions:
    return parse_security_opts(host.security_opt)


# namespace modes -----------------------------------------------------------------


def _mode(host: HostSettings, key: str) -> str:
    value = host.extra.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid HostConfig.{key}: must be a string")
    return value


def ipc_mode(host: HostSettings) -> str:
    return _mode(host, "IpcMode") or "private"


def pid_mode(host: HostSettings) -> str:
    return _mode(host, "PidMode")


def uts_mode(host: HostSettings) -> str:
    return _mode(host, "UTSMode")


def cgroupns_mode(host: HostSettings, cgroup2: bool) -> str:
    # Docker's default: a private cgroup namespace on cgroup v2 hosts, the host's on v1.
    return _mode(host, "CgroupnsMode") or ("private" if cgroup2 else "host")


def container_ref(mode: str) -> str | None:
    """The donor of "container:<name|id>", else None."""
    return mode.partition(":")[2] if mode.startswith("container:") else None


def _check_modes(host: HostSettings) -> None:
    ipc = ipc_mode(host)
    if ipc not in ("none", "private", "shareable", "host") and not container_ref(ipc):
        raise InvalidArgument(f"invalid IPC mode: {ipc}")
    pid = pid_mode(host)
    if pid not in ("", "host") and not container_ref(pid):
        raise InvalidArgument(f"invalid PID mode: {pid}")
    uts = uts_mode(host)
    if uts not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {uts}")
    cgroupns = _mode(host, "CgroupnsMode")
    if cgroupns not in ("", "host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {cgroupns}")


# sysctls, ulimits, oom score, shm -----------------------------------------------


def sysctls(host: HostSettings) -> dict[str, str]:
    raw = host.extra.get("Sysctls") or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid HostConfig.Sysctls: must be an object")
    return {str(k): str(v) for k, v in raw.items()}


def is_namespaced_sysctl(key: str) -> bool:
    return key in NAMESPACED_SYSCTLS or key.startswith(NAMESPACED_SYSCTL_PREFIXES)


def _check_sysctls(host: HostSettings) -> None:
    for key, value in sysctls(host).items():
        if not is_namespaced_sysctl(key) or "/" in key or ".." in key:
            raise InvalidArgument(f"sysctl '{key}={value}' is not allowed")
        if key.startswith("net.") and host.network_mode == "host":
            raise InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')
        if not key.startswith("net.") and ipc_mode(host) == "host":
            raise InvalidArgument(
                f'sysctl "{key}" is not allowed as it conflicts with the "ipc" setting (host)'
            )


def rlimits(host: HostSettings) -> list[dict[str, Any]]:
    """HostConfig.Ulimits ([{Name, Soft, Hard}]) as OCI rlimits."""
    out = []
    for entry in host.extra.get("Ulimits") or []:
        if not isinstance(entry, dict):
            raise InvalidArgument("invalid HostConfig.Ulimits: entries must be objects")
        name, soft, hard = entry.get("Name"), entry.get("Soft"), entry.get("Hard")
        if name not in ULIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        if not isinstance(soft, int) or not isinstance(hard, int):
            raise InvalidArgument(
                f"invalid ulimit argument: {name}: Soft and Hard must be integers"
            )
        if soft > hard:
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
        # -1 is unlimited (RLIM_INFINITY, all ones as an unsigned 64-bit number).
        out.append(
            {"type": f"RLIMIT_{name.upper()}", "soft": soft % (1 << 64), "hard": hard % (1 << 64)}
        )
    return out


def oom_score_adj(host: HostSettings) -> int | None:
    value = host.extra.get("OomScoreAdj")
    if value in (None, 0):
        return None
    if not isinstance(value, int) or not -1000 <= value <= 1000:
        raise InvalidArgument(f"Invalid value {value}, range for oom score adj is [-1000, 1000]")
    return value


def shm_size(host: HostSettings) -> int:
    value = host.extra.get("ShmSize") or 0
    if not isinstance(value, int):
        raise InvalidArgument("invalid HostConfig.ShmSize: must be an integer")
    if value < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    return value or DEFAULT_SHM_SIZE


# devices -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceNode:
    """A device to create in the container (path inside) with its cgroup permissions."""

    path: str
    type: str  # "c" | "b"
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int
    permissions: str  # "rwm" letters

    def oci_device(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "major": self.major, "minor": self.minor,
                "fileMode": self.file_mode, "uid": self.uid, "gid": self.gid}  # fmt: skip

    def oci_rule(self) -> dict[str, Any]:
        return {"allow": True, "type": self.type, "major": self.major, "minor": self.minor,
                "access": self.permissions}  # fmt: skip


def _node(host_path: str, path: str, permissions: str) -> DeviceNode | None:
    st = os.stat(host_path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return DeviceNode(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                      stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, permissions)  # fmt: skip


def _check_permissions(perms: str) -> None:
    if not perms or any(c not in "rwm" for c in perms) or len(set(perms)) != len(perms):
        raise InvalidArgument(
            f"invalid device permissions: {perms!r}: use a combination of r, w, m"
        )


def mapped_devices(host: HostSettings) -> list[DeviceNode]:
    """HostConfig.Devices resolved on the host: a directory maps every device below it."""
    nodes = []
    for entry in host.extra.get("Devices") or []:
        if not isinstance(entry, dict) or not entry.get("PathOnHost"):
            raise InvalidArgument("invalid HostConfig.Devices: PathOnHost is required")
        src = entry["PathOnHost"]
        dst = entry.get("PathInContainer") or src
        perms = entry.get("CgroupPermissions") or "rwm"
        _check_permissions(perms)
        if not src.startswith("/") or not dst.startswith("/"):
            raise InvalidArgument(f"invalid device mapping {src}:{dst}: paths must be absolute")
        nodes += _resolve_device(src, dst, perms)
    return nodes


def _resolve_device(src: str, dst: str, perms: str) -> list[DeviceNode]:
    what = f"error gathering device information while adding custom device {src!r}"
    try:
        if os.path.isdir(src):
            found = []
            for dirpath, _, files in os.walk(src):
                for name in sorted(files):
                    full = os.path.join(dirpath, name)
                    node = _node(full, dst + full[len(src) :], perms)
                    if node is not None:
                        found.append(node)
            return found
        node = _node(src, dst, perms)
    except OSError as e:
        raise InvalidArgument(f"{what}: {e.strerror.lower() if e.strerror else e}") from None
    if node is None:
        raise InvalidArgument(f"{what}: not a device node")
    return [node]


def host_devices(dev: Path = Path("/dev")) -> list[DeviceNode]:
    """Every device node of the host's /dev (what --privileged containers get)."""
    nodes = []
    for dirpath, dirs, files in os.walk(dev):
        dirs[:] = [d for d in dirs if not (dirpath == str(dev) and d in _SKIPPED_DEV_DIRS)]
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            if full == f"{dev}/console":
                continue  # the container's console is its own terminal
            try:
                node = _node(full, "/dev" + full[len(str(dev)) :], "rwm")
            except OSError:
                continue  # vanished or unreadable: the kernel owns /dev, not us
            if node is not None:
                nodes.append(node)
    return nodes


# the whole check ------------------------------------------------------------------


def validate(host: HostSettings, hostname: str) -> list[str]:
    """Every option above, checked before the container is stored; returns warnings."""
    opts = security_options(host)
    if opts.seccomp not in (None, "", seccompprofile.UNCONFINED, seccompprofile.BUILTIN):
        seccompprofile.load_profile(opts.seccomp)
    _check_modes(host)
    if uts_mode(host) == "host" and hostname:
        raise InvalidArgument("Conflicting options: hostname and the UTS mode")
    _check_sysctls(host)
    rlimits(host)
    oom_score_adj(host)
    shm_size(host)
    mapped_devices(host)
    return []


def namespace_joins(
    host: HostSettings, lookup: Callable[[str], Container], files_dir: Callable[[str], Path]
) -> dict[str, str]:
    """/proc paths of the namespaces --ipc/--pid container:X join, checked at start (moby's
    words); "shm" is the donor's host-side /dev/shm (see `prepare_shm`)."""
    joins = {}
    if donor_ref := container_ref(ipc_mode(host)):
        donor = lookup(donor_ref)
        if not donor.state.running or not donor.state.pid:
            raise Conflict(f"cannot join IPC of a non running container: {donor_ref}")
        if ipc_mode(donor.host) not in ("shareable", "host"):
            raise InvalidArgument(
                "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )
        joins["ipc"] = f"/proc/{donor.state.pid}/ns/ipc"
        if ipc_mode(donor.host) == "shareable":
            joins["shm"] = str(shared_shm_dir(files_dir(donor.id)))
        else:
            joins["shm"] = "/dev/shm"  # the donor shares the host's
    if donor_ref := container_ref(pid_mode(host)):
        donor = lookup(donor_ref)
        if not donor.state.running or not donor.state.pid:
            raise Conflict(f"cannot join PID of a non running container: {donor_ref}")
        joins["pid"] = f"/proc/{donor.state.pid}/ns/pid"
    return joins


# a shareable /dev/shm ------------------------------------------------------------


def shared_shm_dir(files_dir: Path) -> Path:
    return files_dir / "shm"


def prepare_shm(host: HostSettings, files_dir: Path) -> Path | None:
    """The host-side tmpfs of a shareable container's /dev/shm (None for other modes).

    Why on the host, as dockerd: a container joining this one's IPC namespace needs
    the same /dev/shm, and a mount in another mount namespace cannot be bound.
    """
    if ipc_mode(host) != "shareable":
        return None
    path = shared_shm_dir(files_dir)
    path.mkdir(mode=0o700, exist_ok=True)
    if not os.path.ismount(path):
        flags = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC
        syscalls.mount("shm", str(path), "tmpfs", flags, f"mode=1777,size={shm_size(host)}")
    return path


def release_shm(files_dir: Path) -> None:
    path = shared_shm_dir(files_dir)
    if os.path.ismount(path):
        syscalls.umount(str(path), syscalls.MNT_DETACH)
