"""The mount flags of ``run``/``create``: ``-v``, ``--mount``, ``--tmpfs``, ``--volumes-from``.

Owns: turning them into the create request as docker's CLI does:
``-v /ctr`` → ``Config.Volumes``; ``-v src:/ctr[:opts]`` → ``HostConfig.Binds``
(a relative host path such as ``./data`` made absolute first); ``--mount`` CSV
→ ``HostConfig.Mounts`` (mount.Mount JSON); ``--tmpfs /p[:opts]`` →
``HostConfig.Tmpfs``; ``--volumes-from`` → ``HostConfig.VolumesFrom``.
Whether sources exist is for the daemon to say.
"""

from __future__ import annotations

import os

from freight.cli.units import ram_in_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_TRUE = ("", "1", "true", "True", "TRUE", "t", "T")
_FALSE = ("0", "false", "False", "FALSE", "f", "F")


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def parse_mount_csv(text: str) -> dict[str, Any]:
    """``type=bind,source=/a,target=/b,readonly`` → docker's mount.Mount JSON."""
    mount: dict[str, Any] = {"Type": "volume"}
    fields = [f for f in text.split(",") if f]
    if not fields:
        raise ValueError("value is empty")
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        _apply(mount, key, value, field)
    return mount


def _apply(mount: dict[str, Any], key: str, value: str, field: str) -> None:
    if key == "type":
        mount["Type"] = value
    elif key in ("source", "src"):
        mount["Source"] = value
    elif key in ("target", "dst", "destination"):
        mount["Target"] = value
    elif key in ("readonly", "ro"):
        mount["ReadOnly"] = _bool(key, value)
    elif key == "consistency":
        mount["Consistency"] = value
    elif key == "bind-propagation":
        mount.setdefault("BindOptions", {})["Propagation"] = value
    elif key == "bind-nonrecursive":
        mount.setdefault("BindOptions", {})["NonRecursive"] = _bool(key, value)
    elif key == "bind-create-mountpoint":
        mount.setdefault("BindOptions", {})["CreateMountpoint"] = _bool(key, value)
    elif key == "volume-nocopy":
        mount.setdefault("VolumeOptions", {})["NoCopy"] = _bool(key, value)
    elif key == "volume-label":
        k, _, v = value.partition("=")
        mount.setdefault("VolumeOptions", {}).setdefault("Labels", {})[k] = v
    elif key == "volume-driver":
        mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = value
    elif key == "volume-opt":
        k, eq, v = value.partition("=")
        if not eq:
            raise ValueError(f"invalid value for {key}: {value}")
        config = mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})
        config.setdefault("Options", {})[k] = v
    elif key == "tmpfs-size":
        mount.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value)
    elif key == "tmpfs-mode":
        try:
            mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
        except ValueError:
            raise ValueError(f"invalid value for {key}: {value}") from None
    else:
        raise ValueError(f"unexpected key '{key}' in '{field}'")


def _absolute_source(spec: str) -> str:
    """docker's CLI makes a relative host path (``./d``, ``../d``, ``.``) absolute."""
    source, sep, rest = spec.partition(":")
    if sep and (source in (".", "..") or source.startswith(("./", "../"))):
        return os.path.abspath(source) + sep + rest
    return spec


def apply_mount_flags(opts: dict[str, Any], config: dict[str, Any], host: dict[str, Any]) -> None:
    """Fill ``Config.Volumes`` and the HostConfig mount keys from the flags."""
    binds, volumes = [], {}
    for spec in opts.get("volume") or []:
        spec = _absolute_source(spec)
        if ":" in spec:
            binds.append(spec)
        else:
            volumes[spec] = {}
    if binds:
        host["Binds"] = binds
    if volumes:
        config["Volumes"] = volumes
    if opts.get("mount"):
        host["Mounts"] = opts["mount"]
    if opts.get("tmpfs"):
        tmpfs = {}
        for spec in opts["tmpfs"]:
            path, _, options = spec.partition(":")
            tmpfs[path] = options
        host["Tmpfs"] = tmpfs
    if opts.get("volumes_from"):
        host["VolumesFrom"] = opts["volumes_from"]
