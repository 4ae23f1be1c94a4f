"""freight-shell's configuration: ``/etc/freight/shell.toml``, parsed and checked.

Owns: the file's keys, their defaults and validation, and merging the
per-user tables over the global settings. Example::

    image = "busybox"                         # image of every user's container
    host = "unix:///run/freight/freight.sock" # the daemon
    shell = "/bin/sh"                         # the login shell inside
    name_prefix = "shell-"                    # container = prefix + user name
    allowed_users = ["alice", "bob"]          # empty or absent: everyone
    home = true                               # bind the passwd home to the same path
    mounts = ["/srv/data:/data:ro", "/srv/scratch/{user}:/scratch"]

    [limits]
    memory = "256m"                           # 0 = no limit
    cpus = 0.5
    pids = 100

    [users.alice]                             # any key above but allowed_users
    image = "debian:12"
    limits = { memory = "1g" }                # merged key by key over [limits]

In ``mounts``, ``{user}`` and ``{home}`` stand for the user's name and home.
A per-user ``mounts`` replaces the global list. Every table is checked on
load (a typo in one user's table is reported at anyone's login: one rule is
easier to reason about than half-checked files); errors name the file and
the key, as ``ConfigError``. A missing file means all defaults.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

DEFAULT_PATH = "/etc/freight/shell.toml"
CONFIG_ENV = "FREIGHT_SHELL_CONFIG"
DEFAULT_HOST = "unix:///run/freight/freight.sock"
DEFAULT_LIMITS = {"memory": 256 << 20, "nano_cpus": 500_000_000, "pids": 100}

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class ConfigError(Exception):
    """A bad configuration file; ``str()`` is one line naming file and key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")
        self.path = path
        self.key = key


class Settings:
    """What one user's session is built from (global settings + their table)."""

    __slots__ = ("image", "host", "shell", "name_prefix", "home", "mounts", "limits")

    def __init__(
        self,
        image: str = "busybox",
        host: str = DEFAULT_HOST,
        shell: str = "/bin/sh",
        name_prefix: str = "shell-",
        home: bool = True,
        mounts: tuple[str, ...] = (),
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.image = image
        self.host = host
        self.shell = shell
        self.name_prefix = name_prefix
        self.home = home
        self.mounts = mounts
        # memory (bytes), nano_cpus, pids; 0 means no limit.
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)

    def replaced(self, **changes: Any) -> Settings:
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Settings(**values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"Settings({fields})"


class ShellConfig:
    """The whole file: global settings, who may log in, per-user overrides."""

    __slots__ = ("path", "defaults", "allowed_users", "overrides")

    def __init__(
        self,
        path: str,
        defaults: Settings,
        allowed_users: tuple[str, ...] = (),
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.path = path
        self.defaults = defaults
        self.allowed_users = allowed_users
        self.overrides = dict(overrides or {})

    def allows(self, user: str) -> bool:
        return not self.allowed_users or user in self.allowed_users

    def settings_for(self, user: str) -> Settings:
        """The global settings with ``[users.<user>]`` applied."""
        changes = dict(self.overrides.get(user, {}))
        if "limits" in changes:
            changes["limits"] = {**self.defaults.limits, **changes["limits"]}
        return self.defaults.replaced(**changes)


def config_path(environ: Mapping[str, str], trust_env: bool = True) -> str:
    """The file to read: ``$FREIGHT_SHELL_CONFIG`` when trusted, else the default."""
    return (environ.get(CONFIG_ENV) if trust_env else None) or DEFAULT_PATH


def load_config(path: str) -> ShellConfig:
    """Read and check ``path``; a missing file gives the defaults."""
    import tomllib

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        return ShellConfig(path, Settings())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    return parse_config(doc, path)


def parse_config(doc: Mapping[str, Any], path: str = DEFAULT_PATH) -> ShellConfig:
    """Check a decoded TOML document and build the configuration."""
    top = {k: v for k, v in doc.items() if k not in ("allowed_users", "users")}
    changes = _parse_settings(top, path, prefix="")
    if "limits" in changes:
        changes["limits"] = {**DEFAULT_LIMITS, **changes["limits"]}
    allowed = _names(doc.get("allowed_users", []), path, "allowed_users")
    overrides = _parse_users(doc.get("users", {}), path)
    return ShellConfig(path, Settings().replaced(**changes), allowed, overrides)


def _parse_users(table: Any, path: str) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ConfigError(path, "users", "must be a table of [users.NAME] tables")
    overrides = {}
    for name, sub in table.items():
        key = f"users.{name}"
        if not isinstance(sub, dict):
            raise ConfigError(path, key, "must be a table")
        for forbidden in ("allowed_users", "users"):
            if forbidden in sub:
                raise ConfigError(path, f"{key}.{forbidden}", "only allowed at the top level")
        overrides[name] = _parse_settings(sub, path, prefix=key + ".")
    return overrides


def _parse_settings(table: Mapping[str, Any], path: str, prefix: str) -> dict[str, Any]:
    """Check the setting keys of one table; returns only the keys present."""
    out = {}
    for key, value in table.items():
        check = _CHECKS.get(key)
        if check is None:
            raise ConfigError(path, prefix + key, f"unknown key (known: {', '.join(_CHECKS)})")
        out[key] = check(value, path, prefix + key)
    return out


# -- value checks: (value, file, key) -> parsed value ---------------------------


def _text(value: Any, path: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, key, "must be a non-empty string")
    return value


def _abs_path(value: Any, path: str, key: str) -> str:
    if not _text(value, path, key).startswith("/"):
        raise ConfigError(path, key, f"must be an absolute path, got {value!r}")
    return value


def _host(value: Any, path: str, key: str) -> str:
    text = _text(value, path, key)
    if not text.startswith(("unix://", "tcp://", "http://", "/")):
        raise ConfigError(path, key, f"must be unix:///path or tcp://host:port, got {value!r}")
    return text


def _prefix(value: Any, path: str, key: str) -> str:
    if not isinstance(value, str) or not set(value) <= _NAME_CHARS:
        raise ConfigError(path, key, "must be letters, digits, '_', '.' or '-'")
    return value


def _bool(value: Any, path: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, key, "must be true or false")
    return value


def _names(value: Any, path: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(path, key, 'must be a list of user names, e.g. ["alice", "bob"]')
    return tuple(value)


def _mounts(value: Any, path: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(path, key, 'must be a list of "src:dst[:ro]" strings')
    for i, spec in enumerate(value):
        problem = bind_problem(spec)
        if problem:
            raise ConfigError(path, f"{key}[{i}]", problem)
    return tuple(value)


def bind_problem(spec: Any) -> str:
    """Why ``spec`` is not a usable "src:dst[:ro|rw]" bind, or "" if it is."""
    if not isinstance(spec, str):
        return 'must be a "src:dst[:ro]" string'
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        return f'{spec!r} is not "src:dst[:ro]"'
    if not all(p.startswith(("/", "{home}")) for p in parts[:2]):
        return f"{spec!r}: source and destination must be absolute paths"
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        return f"{spec!r}: mode must be ro or rw"
    return ""


def _limits(value: Any, path: str, key: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ConfigError(path, key, "must be a table: memory, cpus, pids")
    out = {}
    for name, raw in value.items():
        sub = f"{key}.{name}"
        if name == "memory":
            out["memory"] = parse_size(raw, path, sub)
        elif name == "cpus":
            out["nano_cpus"] = _cpus(raw, path, sub)
        elif name == "pids":
            out["pids"] = _count(raw, path, sub)
        else:
            raise ConfigError(path, sub, "unknown key (known: memory, cpus, pids)")
    return out


def parse_size(value: Any, path: str, key: str) -> int:
    """Docker's memory sizes: 268435456, "256m", "1g", "512k" (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = value.strip().lower() if isinstance(value, str) else ""
    if text.endswith("ib"):
        text = text[:-2]  # "1gib" -> "1g"
    elif text[-2:-1] in ("k", "m", "g", "t") and text.endswith("b"):
        text = text[:-1]  # "256mb" -> "256m"
    unit = text[-1:] if text[-1:].isalpha() else ""
    number = text[: len(text) - len(unit)]
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in _SIZE_UNITS or amount < 0 or not number:
        raise ConfigError(path, key, f'must be a size like "256m" or "1g", got {value!r}')
    return int(amount * _SIZE_UNITS[unit])


def _cpus(value: Any, path: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(path, key, f"must be a number of CPUs like 0.5, got {value!r}")
    return int(value * 1_000_000_000)


def _count(value: Any, path: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(path, key, f"must be a whole number (0 = no limit), got {value!r}")
    return value


_CHECKS: dict[str, Callable[[Any, str, str], Any]] = {
    "image": _text,
    "host": _host,
    "shell": _abs_path,
    "name_prefix": _prefix,
    "home": _bool,
    "mounts": _mounts,
    "limits": _limits,
}
