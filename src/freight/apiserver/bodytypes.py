"""The JSON types of a POST /containers/create body, checked before it is read.

dockerd decodes the body into Go structs, so a field of the wrong JSON type is a
400 with encoding/json's words ("json: cannot unmarshal number into Go struct
field Config.Env of type []string"). The parser after this check converts
fields with list()/dict()/int(), which on a wrong type would raise
TypeError/ValueError (a 500); so the types are checked here first, field by
field, with Go's message naming the field. `null` is always accepted (Go keeps
the zero value). Unknown fields are ignored, as Go does.
"""

from __future__ import annotations

from typing import Any

from freight.errors import InvalidArgument

STR, BOOL, INT = "string", "bool", "int64"
STRS, STRMAP, OBJ, OBJS, INTS = "[]string", "map[string]string", "object", "[]object", "[]int"
STRSLICE = "strslice.StrSlice"  # a string or a list of strings

CONFIG: dict[str, str] = {
    "Hostname": STR, "Domainname": STR, "User": STR, "AttachStdin": BOOL, "AttachStdout": BOOL,
    "AttachStderr": BOOL, "ExposedPorts": OBJ, "Tty": BOOL, "OpenStdin": BOOL,
    "StdinOnce": BOOL, "Env": STRS, "Cmd": STRSLICE, "Healthcheck": OBJ, "ArgsEscaped": BOOL,
    "Image": STR, "Volumes": OBJ, "WorkingDir": STR, "Entrypoint": STRSLICE,
    "NetworkDisabled": BOOL, "MacAddress": STR, "OnBuild": STRS, "Labels": STRMAP,
    "StopSignal": STR, "StopTimeout": INT, "Shell": STRS, "HostConfig": OBJ,
    "NetworkingConfig": OBJ,
}  # fmt: skip

HOST_CONFIG: dict[str, str] = {
    "Binds": STRS, "ContainerIDFile": STR, "LogConfig": OBJ, "NetworkMode": STR,
    "PortBindings": OBJ, "RestartPolicy": OBJ, "AutoRemove": BOOL, "VolumeDriver": STR,
    "VolumesFrom": STRS, "CapAdd": STRS, "CapDrop": STRS, "CgroupnsMode": STR, "Dns": STRS,
    "DnsOptions": STRS, "DnsSearch": STRS, "ExtraHosts": STRS, "GroupAdd": STRS,
    "IpcMode": STR, "Cgroup": STR, "Links": STRS, "OomScoreAdj": INT, "PidMode": STR,
    "Privileged": BOOL, "PublishAllPorts": BOOL, "ReadonlyRootfs": BOOL, "SecurityOpt": STRS,
    "StorageOpt": STRMAP, "Tmpfs": STRMAP, "UTSMode": STR, "UsernsMode": STR, "ShmSize": INT,
    "Sysctls": STRMAP, "Runtime": STR, "Isolation": STR, "CpuShares": INT, "Memory": INT,
    "NanoCpus": INT, "CgroupParent": STR, "BlkioWeight": INT, "CpuPeriod": INT,
    "CpuQuota": INT, "CpuRealtimePeriod": INT, "CpuRealtimeRuntime": INT, "CpusetCpus": STR,
    "CpusetMems": STR, "Devices": OBJS, "DeviceCgroupRules": STRS, "MemoryReservation": INT,
    "MemorySwap": INT, "MemorySwappiness": INT, "OomKillDisable": BOOL, "PidsLimit": INT,
    "Ulimits": OBJS, "Mounts": OBJS, "MaskedPaths": STRS, "ReadonlyPaths": STRS,
    "Init": BOOL, "ConsoleSize": INTS, "KernelMemory": INT, "CpuCount": INT,
    "CpuPercent": INT,
}  # fmt: skip

LOG_CONFIG = {"Type": STR, "Config": STRMAP}
RESTART_POLICY = {"Name": STR, "MaximumRetryCount": INT}
NETWORKING_CONFIG = {"EndpointsConfig": OBJ}


def _json_kind(value: Any) -> str:
    """encode/json's name for a JSON value in its error messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}" if isinstance(value, float) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fits(value: Any, kind: str) -> bool:
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if kind == STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == INTS:
        return isinstance(value, list) and all(_fits(v, INT) for v in value)
    if kind == STRSLICE:
        return isinstance(value, str) or _fits(value, STRS)
    if kind == STRMAP:
        return isinstance(value, dict) and all(isinstance(v, str | None) for v in value.values())
    if kind == OBJS:
        return isinstance(value, list) and all(isinstance(v, dict | None) for v in value)
    return isinstance(value, dict)  # OBJ


def check_fields(doc: dict[str, Any], table: dict[str, str], struct: str) -> None:
    """InvalidArgument in Go's words for the first field of `doc` that has the wrong type."""
    for key, kind in table.items():
        value = doc.get(key)
        if value is not None and not _fits(value, kind):
            raise InvalidArgument(
                f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                f"{struct}.{key} of type {kind}"
            )


def check_create(body: Any) -> None:
    """The field types of a create body (Config + HostConfig + NetworkingConfig)."""
    if not isinstance(body, dict):
        raise InvalidArgument(
            f"json: cannot unmarshal {_json_kind(body)} into Go value of type "
            "container.CreateRequest"
        )
    check_fields(body, CONFIG, "Config")
    host = body.get("HostConfig") or {}
    check_fields(host, HOST_CONFIG, "HostConfig")
    for key, table in (("LogConfig", LOG_CONFIG), ("RestartPolicy", RESTART_POLICY)):
        check_fields(host.get(key) or {}, table, f"HostConfig.{key}")
    check_fields(body.get("NetworkingConfig") or {}, NETWORKING_CONFIG, "NetworkingConfig")
