"""freightd's settings: command-line flags after dockerd's, and a JSON config
file like daemon.json. A flag given on the command line wins over the file;
a key set in both the file and a flag is an error, as in dockerd.

`from_args` is also what SIGHUP runs again (daemon.reload): the same flags,
the file read anew.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import InvalidArgument

DEFAULT_HOST = "unix:///run/freight/freight.sock"
DEFAULT_DATA_ROOT = "/var/lib/freight"
DEFAULT_EXEC_ROOT = "/run/freight"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")

# daemon.json key -> attribute
FILE_KEYS = {
    "hosts": "hosts",
    "data-root": "data_root",
    "exec-root": "exec_root",
    "pidfile": "pidfile",
    "log-level": "log_level",
    "debug": "debug",
    "default-runtime": "default_runtime",
    "cgroup-parent": "cgroup_parent",
    "bridge": "bridge",
    "bip": "bip",
    "default-address-pools": "default_address_pools",
    "dns": "dns",
    "insecure-registries": "insecure_registries",
    "registry-mirrors": "registry_mirrors",
    "max-concurrent-downloads": "max_concurrent_downloads",
    # remote access (daemon.listeners)
    "tls": "tls",
    "tlsverify": "tlsverify",
    "tlscacert": "tlscacert",
    "tlscert": "tlscert",
    "tlskey": "tlskey",
    "group": "group",
    # lifecycle (daemon.main, daemon.reload)
    "live-restore": "live_restore",
    "shutdown-timeout": "shutdown_timeout",
    "log-driver": "log_driver",
    "log-opts": "log_opts",
    "seccomp-profile": "seccomp_profile",
    "userns-remap": "userns_remap",
}


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    exec_root: Path = Path(DEFAULT_EXEC_ROOT)
    pidfile: Path | None = None
    log_level: str = "info"
    debug: bool = False  # -D / "debug": true: log level debug, whatever log-level says
    default_runtime: str = "freight"
    cgroup_parent: str = "freight"
    bridge: str = "freight0"  # the default network's bridge (created if missing)
    bip: str = ""  # its gateway address and prefix; empty: a free subnet from the pools
    default_address_pools: list[str] = field(default_factory=list)  # base=CIDR,size=N
    dns: list[str] = field(default_factory=list)  # DNS servers for containers (and upstreams)
    insecure_registries: list[str] = field(default_factory=list)  # hosts or CIDRs
    registry_mirrors: list[str] = field(default_factory=list)  # URLs, for docker.io
    max_concurrent_downloads: int = 3
    # Remote access, see daemon.listeners: None = not given (tls=False given is the
    # explicit opt-in to plain TCP).
    tls: bool | None = None
    tlsverify: bool | None = None
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    group: str | None = None  # of the unix socket; None: "freight" if it exists, else root
    # Containers keep running while the daemon is down (stop, restart, upgrade);
    # without it a stop stops them (their stop signal, then SIGKILL).
    live_restore: bool = False
    shutdown_timeout: int = 15  # dockerd's default; seconds for the containers to stop
    log_driver: str = "json-file"  # default of new containers
    log_opts: dict[str, str] = field(default_factory=dict)
    seccomp_profile: str | None = None  # a profile file for every container; None: Docker's
    userns_remap: str = ""  # default, USER[:GROUP] or UID[:GID] (services.userns); "": none

    @property
    def pid_path(self) -> Path:
        return self.pidfile or self.exec_root / "freightd.pid"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="freightd", description="The freight container engine daemon")
    p.add_argument("-H", "--host", action="append", dest="hosts", metavar="HOST",
                   help=f"daemon socket(s) to listen on (default {DEFAULT_HOST}); tcp://ADDR:PORT too")  # fmt: skip
    p.add_argument("--data-root", help=f"root of persistent state (default {DEFAULT_DATA_ROOT})")
    p.add_argument("--exec-root", help=f"root of runtime state (default {DEFAULT_EXEC_ROOT})")
    p.add_argument("-p", "--pidfile", help="path of the pid file (default EXEC_ROOT/freightd.pid)")
    p.add_argument("--config-file", help="daemon configuration file (JSON, like daemon.json)")
    p.add_argument("-l", "--log-level", choices=LOG_LEVELS, help="logging level (default info)")
    p.add_argument("-D", "--debug", action="store_const", const=True,
                   help="debug logging (as --log-level debug)")  # fmt: skip
    p.add_argument("--default-runtime", help="runtime for containers: freight or runc")
    p.add_argument("--cgroup-parent", help="parent cgroup of all containers (default freight)")
    p.add_argument("-b", "--bridge", help="bridge of the default network (default freight0)")
    p.add_argument("--bip", help="the default bridge's address and prefix, e.g. 10.99.0.1/24")
    p.add_argument("--default-address-pool", action="append", dest="default_address_pools",
                   metavar="base=CIDR,size=N", help="address pool for new networks (repeatable)")  # fmt: skip
    p.add_argument("--dns", action="append", help="DNS server for containers (repeatable)")
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries",
                   metavar="HOST", help="registry reached over HTTP or unverified TLS (repeatable)")  # fmt: skip
    p.add_argument("--registry-mirror", action="append", dest="registry_mirrors", metavar="URL",
                   help="preferred Docker registry mirror (repeatable)")  # fmt: skip
    p.add_argument("--max-concurrent-downloads", type=int, metavar="N",
                   help="maximum concurrent layer downloads per pull (default 3)")  # fmt: skip
    _remote_flags(p)
    _lifecycle_flags(p)
    p.add_argument("-v", "--version", action="store_true", help="print version and exit")
    return p


def _remote_flags(p: argparse.ArgumentParser) -> None:
    from freight.daemon.listeners import parse_bool

    p.add_argument("--tls", nargs="?", const=True, type=parse_bool, metavar="BOOL",
                   help="serve tcp:// hosts over TLS; --tls=false explicitly allows plain TCP")  # fmt: skip
    p.add_argument("--tlsverify", nargs="?", const=True, type=parse_bool, metavar="BOOL",
                   help="TLS and require client certificates signed by --tlscacert")  # fmt: skip
    p.add_argument(
        "--tlscacert", help="CA that signs client certificates (default ~/.docker/ca.pem)"
    )
    p.add_argument("--tlscert", help="server certificate (default ~/.docker/cert.pem)")
    p.add_argument("--tlskey", help="server key (default ~/.docker/key.pem)")
    p.add_argument("-G", "--group",
                   help="group of the unix socket (default freight if it exists, else root)")  # fmt: skip


def _lifecycle_flags(p: argparse.ArgumentParser) -> None:
    from freight.daemon.listeners import parse_bool

    p.add_argument("--live-restore", nargs="?", const=True, type=parse_bool, metavar="BOOL",
                   help="keep containers running while the daemon is down")  # fmt: skip
    p.add_argument("--shutdown-timeout", type=int, metavar="SECONDS",
                   help="time for containers to stop when the daemon stops (default 15)")  # fmt: skip
    p.add_argument("--log-driver", help="default log driver of containers (default json-file)")
    p.add_argument("--log-opt", action="append", dest="log_opts", metavar="KEY=VALUE",
                   help="default log driver option (repeatable)")  # fmt: skip
    p.add_argument("--seccomp-profile", metavar="PATH",
                   help="seccomp profile of containers (default: Docker's default profile)")  # fmt: skip
    p.add_argument("--userns-remap", metavar="default|USER[:GROUP]|UID[:GID]",
                   help="run containers in a user namespace on the user's /etc/subuid, /etc/subgid ids")  # fmt: skip


def load(argv: list[str]) -> tuple[DaemonConfig, argparse.Namespace]:
    args = parser().parse_args(argv)
    return from_args(args), args


def from_args(args: argparse.Namespace) -> DaemonConfig:
    """The settings of parsed flags plus the config file (read now)."""
    cfg = DaemonConfig()
    from_file = _read_file(Path(args.config_file)) if args.config_file else {}
    for key, attr in FILE_KEYS.items():
        flag_value = getattr(args, attr, None)
        if key in from_file and flag_value is not None:
            raise InvalidArgument(
                f"the following directives are specified both as a flag and in the "
                f"configuration file: {key}: (from flag: {flag_value}, from file: {from_file[key]})"
            )
        value = flag_value if flag_value is not None else from_file.get(key)
        if value is not None:
            setattr(cfg, attr, _coerce(attr, value))
    _check(cfg)
    return cfg


def _read_file(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InvalidArgument(
            f"unable to configure the freight daemon with file {path}: no such file"
        ) from e
    except ValueError as e:
        raise InvalidArgument(
            f"unable to configure the freight daemon with file {path}: {e}"
        ) from e
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{path}: the configuration must be a JSON object")
    unknown = sorted(set(raw) - set(FILE_KEYS))
    if unknown:
        raise InvalidArgument(f"{path}: unknown configuration keys: {', '.join(unknown)}")
    return raw


def _check(cfg: DaemonConfig) -> None:
    if cfg.log_level not in LOG_LEVELS:
        raise InvalidArgument(f"invalid log-level {cfg.log_level!r}: want one of {LOG_LEVELS}")
    if not isinstance(cfg.debug, bool):
        raise InvalidArgument(f"debug: want true or false, not {cfg.debug!r}")
    if cfg.debug:
        cfg.log_level = "debug"  # dockerd: --debug wins over --log-level
    if not isinstance(cfg.live_restore, bool):
        raise InvalidArgument(f"live-restore: want true or false, not {cfg.live_restore!r}")
    for name in ("shutdown_timeout", "max_concurrent_downloads"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgument(f"{name.replace('_', '-')}: want a number >= 0, not {value!r}")
    for name in ("insecure_registries", "registry_mirrors"):
        value = getattr(cfg, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"{name.replace('_', '-')}: want a list of strings")


def _coerce(attr: str, value: object) -> object:
    if attr == "log_opts":
        return _log_opts(value)
    if attr in ("data_root", "exec_root", "pidfile"):
        return Path(str(value)).absolute()
    if attr == "group":
        return str(value)
    if attr == "hosts":
        return [str(h) for h in value] if isinstance(value, list) else [str(value)]
    if attr == "default_address_pools" and isinstance(value, list):
        # daemon.json has [{"base": CIDR, "size": N}], the flag base=CIDR,size=N.
        return [p if isinstance(p, str) else f"base={p['base']},size={p['size']}" for p in value]
    return value


def _log_opts(value: object) -> dict[str, str]:
    """--log-opt k=v (a list) or daemon.json's {"k": "v"}."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, list):
        raise InvalidArgument(f"log-opts: want an object of strings, not {value!r}")
    opts = {}
    for item in value:
        key, sep, val = str(item).partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid --log-opt {item!r}: want KEY=VALUE")
        opts[key] = val
    return opts
