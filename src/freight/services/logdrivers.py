"""Log drivers on the daemon's side: which exist, their options, where their files are.

A container's driver and options are settled at create (`resolve`: the
daemon's default driver and options fill what the request leaves unset, as
dockerd's mergeAndVerifyLogConfig) and checked with Docker's messages. At
start, `shim_config` turns them into the JSON the shim's
`freight.shim.logwriters.open_log` takes: sizes in bytes, templates expanded.

Files, under the container's directory ``<data-root>/containers/<id>/``::

    <id>-json.log[.N[.gz]]       json-file (rotated with max-size/max-file/compress)
    local-logs/container.log*    local (Docker's format; 20m × 5, compressed, by default)
    container-cached.log*        syslog/journald read cache (local format; 20m × 1)

The none driver keeps nothing and `logs` is refused with dockerd's words.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.errors import InvalidArgument, NotImplementedYet
from freight.services.model import Container

DRIVERS = ("json-file", "local", "none", "syslog", "journald")
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
DEFAULT_SYSLOG = "unix:///dev/log"
NOT_READABLE = "configured logging driver does not support reading"

_ATTR_OPTS = ("labels", "labels-regex", "env", "env-regex", "tag")
_ROTATE_OPTS = ("max-size", "max-file", "compress")
_CACHE_OPTS = ("cache-disabled", "cache-max-size", "cache-max-file", "cache-compress")
OPTIONS = {
    "json-file": _ROTATE_OPTS + _ATTR_OPTS,
    "local": _ROTATE_OPTS,
    "none": (),
    "syslog": ("syslog-address", "syslog-facility", "syslog-format", "syslog-tls-ca-cert",
               "syslog-tls-cert", "syslog-tls-key", "syslog-tls-skip-verify")
    + _ATTR_OPTS + _CACHE_OPTS,
    "journald": _ATTR_OPTS + _CACHE_OPTS,
}  # fmt: skip
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}  # fmt: skip
SYSLOG_FORMATS = ("", "rfc3164", "rfc5424", "rfc5424micro")
LOCAL_DEFAULTS = {"max-size": 20 * 1024 * 1024, "max-file": 5, "compress": True}
CACHE_DEFAULTS = {"max-size": 20 * 1024 * 1024, "max-file": 1, "compress": True}
_DECIMAL = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass
class LogDefaults:
    """The daemon's --log-driver and --log-opt (reloaded on SIGHUP)."""

    driver: str = "json-file"
    opts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogFiles:
    """Where `logs` reads a container: the live file (rotated ones beside it) and its format."""

    path: Path
    format: str  # "json" | "local"


def parse_size(text: str, binary: bool) -> int:
    """go-units FromHumanSize (decimal, json-file) or RAMInBytes (binary, local)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not m:
        raise ValueError(text)
    table = _BINARY if binary or m.group(3).startswith("i") else _DECIMAL
    return int(float(m.group(1)) * table[m.group(2)])


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise ValueError(text)


def resolve(log_type: str, opts: dict[str, str], defaults: LogDefaults) -> tuple[str, dict]:
    """The driver and options a new container gets; InvalidArgument when they are wrong."""
    if not log_type:
        log_type, opts = defaults.driver, {**defaults.opts, **opts}
    elif log_type == defaults.driver:
        opts = {**defaults.opts, **opts}
    validate(log_type, opts)
    return log_type, opts


def validate(log_type: str, opts: dict[str, str]) -> None:
    if log_type not in DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{log_type}' is registered")
    for key in opts:
        if key not in OPTIONS[log_type]:
            raise InvalidArgument(f"unknown log opt '{key}' for {log_type} log driver")
    if log_type in ("json-file", "local"):
        rotation(log_type, opts)
    if log_type == "syslog":
        _syslog_options(opts)
    if log_type == "journald" and not JOURNAL_SOCKET.exists():
        raise InvalidArgument(
            f"failed to initialize logging driver: journald is not enabled on this host "
            f"({JOURNAL_SOCKET} does not exist)"
        )
    if log_type in ("syslog", "journald"):
        _cache_rotation(opts)


def rotation(log_type: str, opts: dict[str, str], prefix: str = "") -> tuple[int, int, bool]:
    """(max size in bytes, 0: unlimited; max files; compress), with dockerd's checks."""
    defaults = LOCAL_DEFAULTS if log_type == "local" else CACHE_DEFAULTS if prefix else {}
    binary = log_type == "local" or bool(prefix)
    size = int(defaults.get("max-size", 0))
    if (text := opts.get(prefix + "max-size")) is not None:
        try:
            size = parse_size(text, binary)
        except ValueError:
            raise InvalidArgument(f"invalid {prefix}max-size: {text}") from None
        if size <= 0:
            raise InvalidArgument(f"{prefix}max-size must be a positive number")
    files = int(defaults.get("max-file", 1))
    if (text := opts.get(prefix + "max-file")) is not None:
        try:
            files = int(text)
        except ValueError:
            raise InvalidArgument(f"invalid {prefix}max-file: {text}") from None
        if files < 1:
            raise InvalidArgument(f"{prefix}max-file cannot be less than 1")
    compress = bool(defaults.get("compress", False))
    if (text := opts.get(prefix + "compress")) is not None:
        try:
            compress = _parse_bool(text)
        except ValueError:
            raise InvalidArgument(f"invalid {prefix}compress: {text}") from None
        if compress and not prefix and log_type == "json-file" and (files == 1 or not size):
            raise InvalidArgument(
                "compress cannot be true when max-file is less than 2 or max-size is not set"
            )
    if log_type == "local" and not size:
        raise InvalidArgument("max-size must be a positive number")
    return size, files, compress and files > 1


def _cache_rotation(opts: dict[str, str]) -> tuple[int, int, bool] | None:
    if _parse_bool(opts.get("cache-disabled", "false")):
        return None
    return rotation("cache", opts, prefix="cache-")


def _syslog_options(opts: dict[str, str]) -> dict[str, Any]:
    address = opts.get("syslog-address") or DEFAULT_SYSLOG
    scheme, sep, rest = address.partition("://")
    if not sep:
        raise InvalidArgument(f"syslog-address should be in form proto://address, got {address}")
    if scheme not in ("unix", "unixgram", "udp", "tcp"):
        raise InvalidArgument(f"unsupported scheme: '{scheme}'")
    if scheme in ("udp", "tcp") and ":" not in rest:
        rest += ":514"
    facility = opts.get("syslog-facility") or "daemon"
    if facility.isdigit() and 0 <= int(facility) <= 23:
        number = int(facility)
    elif facility in FACILITIES:
        number = FACILITIES[facility]
    else:
        raise InvalidArgument("invalid syslog facility")
    fmt = opts.get("syslog-format", "")
    if fmt not in SYSLOG_FORMATS:
        raise InvalidArgument(f"Invalid syslog format: {fmt}")
    if any(k.startswith("syslog-tls") for k in opts):
        raise InvalidArgument("syslog-tls-* options are not supported by freight (no TLS syslog)")
    return {"address": f"{scheme}://{rest}", "facility": number, "format": fmt}


# files ----------------------------------------------------------------------


def log_files(c: Container, files_dir: Path) -> LogFiles | None:
    """What `logs` reads; None for the none driver (and a syslog/journald without cache)."""
    driver = c.host.log_type
    if driver == "json-file":
        return LogFiles(Path(c.log_path), "json")
    if driver == "local":
        return LogFiles(files_dir / "local-logs" / "container.log", "local")
    if driver in ("syslog", "journald") and _cache_rotation(c.host.log_opts) is not None:
        return LogFiles(files_dir / "container-cached.log", "local")
    return None


def check_readable(c: Container, files_dir: Path) -> LogFiles:
    files = log_files(c, files_dir)
    if files is None:
        raise NotImplementedYet(NOT_READABLE)
    return files


def shim_config(c: Container, files_dir: Path, image_name: str = "") -> dict[str, Any] | None:
    """The shim's --log-config for this container; None: no log at all."""
    driver, opts = c.host.log_type, c.host.log_opts
    if driver == "none":
        return None
    if driver in ("json-file", "local"):
        size, files, compress = rotation(driver, opts)
        target = log_files(c, files_dir)
        assert target is not None
        target.path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "driver": driver, "path": str(target.path),
            "max_size": size, "max_file": files, "compress": compress,
        }  # fmt: skip
        if driver == "json-file":
            config["attrs"] = attributes(c, opts, image_name)
        return config
    tag = expand_tag(opts.get("tag") or "{{.ID}}", c, image_name)
    config = {"driver": driver}
    if driver == "syslog":
        config["syslog"] = {**_syslog_options(opts), "tag": tag}
    else:
        fields = {
            "CONTAINER_ID": c.id[:12], "CONTAINER_ID_FULL": c.id,
            "CONTAINER_NAME": c.name, "CONTAINER_TAG": tag, "IMAGE_NAME": image_name,
            "SYSLOG_IDENTIFIER": tag,
        }  # fmt: skip
        for key, value in attributes(c, opts, image_name).items():
            if key != "tag":
                fields[_journal_key(key)] = value
        config["journald"] = {"socket": str(JOURNAL_SOCKET), "fields": fields}
    cache = _cache_rotation(opts)
    if cache is not None:
        size, files, compress = cache
        config["cache"] = {
            "path": str(files_dir / "container-cached.log"),
            "max_size": size, "max_file": files, "compress": compress,
        }  # fmt: skip
    return config


def _journal_key(key: str) -> str:
    """Journal field names: upper case letters, digits and underscores."""
    return re.sub(r"[^A-Z0-9_]", "_", key.upper()).lstrip("_") or "ATTR"


def expand_tag(template: str, c: Container, image_name: str) -> str:
    """Docker's tag template fields (the common ones; no functions)."""
    values = {
        "ID": c.id[:12], "FullID": c.id, "Name": c.name, "ImageID": c.image_id[7:19],
        "ImageFullID": c.image_id, "ImageName": image_name or c.config.image,
        "DaemonName": "docker",
    }  # fmt: skip

    def field_of(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise InvalidArgument(f"template: tag: can't evaluate field {name}")
        return values[name]

    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", field_of, template)


def attributes(c: Container, opts: dict[str, str], image_name: str = "") -> dict[str, str]:
    """Docker's extra attributes: chosen labels and env vars, and the tag when set."""
    attrs: dict[str, str] = {}
    if opts.get("tag"):
        attrs["tag"] = expand_tag(opts["tag"], c, image_name)
    labels = c.config.labels
    for key in _csv(opts.get("labels", "")):
        if key in labels:
            attrs[key] = labels[key]
    if pattern := opts.get("labels-regex"):
        attrs.update({k: v for k, v in labels.items() if re.search(pattern, k)})
    env = dict(e.split("=", 1) for e in c.config.env if "=" in e)
    for key in _csv(opts.get("env", "")):
        if key in env:
            attrs[key] = env[key]
    if pattern := opts.get("env-regex"):
        attrs.update({k: v for k, v in env.items() if re.search(pattern, k)})
    return attrs


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def rotated_files(path: Path) -> list[Path]:
    """Oldest first: path.N[.gz] … path.1[.gz], then path itself (what exists)."""
    found: dict[int, Path] = {}
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    prefix = path.name + "."
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :].removesuffix(".gz")
        if not rest.isdigit():
            continue  # .tmp files of a compression, anything else
        # both .1 and .1.gz exist while a compression finishes: the plain one is whole
        if int(rest) not in found or not name.endswith(".gz"):
            found[int(rest)] = path.parent / name
    ordered = [found[i] for i in sorted(found, reverse=True)]
    return ordered + ([path] if path.exists() else [])
