"""The privilege and isolation options of ``run``/``create`` and what they send.

Owns: ``--privileged``, ``--security-opt`` (a ``seccomp=FILE`` profile is read
and sent as its compacted JSON, as docker's CLI does), ``--device``,
``--group-add``, ``--sysctl``, ``--ulimit``, ``--oom-score-adj``,
``--shm-size``, ``--ipc``, ``--pid``, ``--uts``, ``--cgroupns``, ``--userns``,
``--uidmap``/``--gidmap`` (sent as HostConfig.FreightIDMappings). Values are
checked with docker's messages when parsed; the daemon checks them again.
"""

from __future__ import annotations

from freight.cli.flags import Flag
from freight.cli.session import CliError
from freight.cli.units import ram_in_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SYSCTLS = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}  # fmt: skip
_ULIMITS = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip


def _sysctl(text: str) -> str:
    key, sep, _ = text.partition("=")
    if sep and (key in _SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
        return text
    raise ValueError(f"sysctl '{text}' is not allowed")


def _ulimit(text: str) -> dict[str, Any]:
    name, sep, values = text.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    soft_text, _, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {text}") from None
    if soft > hard:
        raise ValueError(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return {"Name": name, "Soft": soft, "Hard": hard}


def _device_mode(text: str) -> bool:
    return bool(text) and all(c in "rwm" for c in text) and len(set(text)) == len(text)


def _device(text: str) -> dict[str, str]:
    """docker's parseDevice: SRC[:DST][:PERMS]."""
    parts = text.split(":")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    elif len(parts) != 1:
        raise ValueError(f"invalid device specification: {text}")
    if not _device_mode(perms):
        raise ValueError(f"bad mode specified: {perms}")
    for path in (src, dst or src):
        if not path.startswith("/"):
            raise ValueError(f"bad format for path: {path}")
    return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms}


def _idmap(text: str) -> str:
    """podman's --uidmap/--gidmap CONTAINER:HOST:SIZE (the daemon checks the ranges)."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or int(parts[2]) == 0:
        raise ValueError(f"invalid mapping {text!r}: want CONTAINER_ID:HOST_ID:SIZE")
    return text


def security_flags() -> list[Flag]:
    return [
        Flag("cgroupns", "", "string", "Cgroup namespace to use (host|private)"),
        Flag("device", "", "list", "Add a host device to the container", convert=_device),
        Flag("group-add", "", "list", "Add additional groups to join"),
        Flag("ipc", "", "string", "IPC mode to use"),
        Flag("oom-score-adj", "", "int", "Tune host's OOM preferences (-1000 to 1000)"),
        Flag("pid", "", "string", "PID namespace to use"),
        Flag("privileged", "", help="Give extended privileges to this container"),
        Flag("shm-size", "", "string", "Size of /dev/shm", type_name="bytes", convert=ram_in_bytes),
        Flag("sysctl", "", "list", "Sysctl options", type_name="map", convert=_sysctl),
        Flag("ulimit", "", "list", "Ulimit options", type_name="ulimit", convert=_ulimit),
        Flag("uts", "", "string", "UTS namespace to use"),
        Flag("userns", "", "string", "User namespace to use (host, auto[:size=N])"),
        Flag(
            "uidmap",
            "",
            "list",
            "UID map CONTAINER:HOST:SIZE of the user namespace",
            convert=_idmap,
        ),
        Flag(
            "gidmap",
            "",
            "list",
            "GID map CONTAINER:HOST:SIZE of the user namespace",
            convert=_idmap,
        ),
    ]


def _check_modes(opts: dict[str, Any]) -> None:
    """docker's own checks of the namespace flags, before anything is sent."""
    ipc = opts.get("ipc") or ""
    if ipc not in ("", "none", "private", "shareable", "host") and not (
        ipc.startswith("container:") and ipc[10:]
    ):
        raise CliError("--ipc: invalid IPC mode")
    pid = opts.get("pid") or ""
    if pid not in ("", "host") and not (pid.startswith("container:") and pid[10:]):
        raise CliError("--pid: invalid PID mode")
    if (opts.get("uts") or "") not in ("", "host"):
        raise CliError("--uts: invalid UTS mode")
    if (opts.get("cgroupns") or "") not in ("", "host", "private"):
        raise CliError("--cgroupns: invalid CGROUP mode")
    userns = opts.get("userns") or ""
    if userns not in ("", "host", "private") and not userns.startswith("auto"):
        raise CliError("--userns: invalid USER mode")


def security_opts(values: list[str]) -> list[str]:
    """docker's parseSecurityOpts: a seccomp profile file is sent as its compacted JSON."""
    out = []
    for opt in values:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if (not sep or not value) and key != "no-new-privileges":
            raise CliError(f'Invalid --security-opt: "{opt}"')
        if key == "seccomp" and value not in ("builtin", "unconfined"):
            opt = f"seccomp={_read_profile(value)}"
        out.append(opt)
    return out


def _read_profile(path: str) -> str:
    import json  # only here: `run` must not import json on its hot path

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CliError(f"opening seccomp profile ({path}) failed: {e}") from None
    try:
        return json.dumps(json.loads(raw), separators=(",", ":"))
    except ValueError as e:
        raise CliError(f"compacting json for seccomp profile ({path}) failed: {e}") from None


def apply_security_flags(opts: dict[str, Any], host: dict[str, Any]) -> None:
    """Put the options above into the HostConfig of a create request."""
    _check_modes(opts)
    if opts.get("security_opt"):
        host["SecurityOpt"] = security_opts(opts["security_opt"])
    if opts.get("privileged"):
        host["Privileged"] = True
    if opts.get("device"):
        host["Devices"] = opts["device"]
    if opts.get("group_add"):
        host["GroupAdd"] = opts["group_add"]
    if opts.get("sysctl"):
        host["Sysctls"] = dict(item.split("=", 1) for item in opts["sysctl"])
    if opts.get("ulimit"):
        host["Ulimits"] = opts["ulimit"]
    if opts.get("oom_score_adj") is not None:
        host["OomScoreAdj"] = opts["oom_score_adj"]
    if opts.get("shm_size") is not None:
        host["ShmSize"] = opts["shm_size"]
    for flag, key in (("ipc", "IpcMode"), ("pid", "PidMode"), ("uts", "UTSMode")):
        if opts.get(flag):
            host[key] = opts[flag]
    if opts.get("cgroupns"):
        host["CgroupnsMode"] = opts["cgroupns"]
    if opts.get("userns"):
        host["UsernsMode"] = opts["userns"]
    if opts.get("uidmap") or opts.get("gidmap"):
        # freight's extension of HostConfig (services.userns); podman's flags
        host["FreightIDMappings"] = {
            "UIDMaps": opts.get("uidmap") or [],
            "GIDMaps": opts.get("gidmap") or [],
        }
