"""`--change` instructions for import and commit: Dockerfile lines that edit an
image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR,
STOPSIGNAL). Applied to the services' ContainerConfig model.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

from freight.errors import InvalidArgument
from freight.services.model import ContainerConfig

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL", "ONBUILD")  # fmt: skip


def apply_changes(config: ContainerConfig, changes: list[str]) -> ContainerConfig:
    for line in changes:
        line = line.strip()
        if not line:
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in ALLOWED:
            raise InvalidArgument(f"{keyword} is not a valid change command")
        config = _APPLY[keyword](config, rest.strip())
    return config


def _command(rest: str) -> list[str]:
    """JSON (exec) form, or shell form wrapped in /bin/sh -c like Docker."""
    if rest.startswith("["):
        try:
            argv = json.loads(rest)
        except ValueError:
            argv = None
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            return argv
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str, what: str) -> dict[str, str]:
    """`K=V K2="v 2"` or the legacy single `K V` form."""
    words = shlex.split(rest)
    if not words:
        raise InvalidArgument(f"{what} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return {key: value.strip()}
    pairs = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{what} names can not be blank: {word!r}")
        pairs[key] = value
    return pairs


def _env(c: ContainerConfig, rest: str) -> ContainerConfig:
    env = list(c.env)
    for key, value in _pairs(rest, "ENV").items():
        env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
    return replace(c, env=env)


def _expose(c: ContainerConfig, rest: str) -> ContainerConfig:
    ports = dict(c.exposed_ports)
    for word in rest.split():
        port, _, proto = word.partition("/")
        if not port.isdigit():
            raise InvalidArgument(f"invalid port {word!r} in EXPOSE")
        ports[f"{port}/{proto or 'tcp'}"] = {}
    return replace(c, exposed_ports=ports)


def _volume(c: ContainerConfig, rest: str) -> ContainerConfig:
    paths = _command(rest) if rest.startswith("[") else rest.split()
    if paths[:2] == ["/bin/sh", "-c"]:
        paths = rest.split()
    return replace(c, volumes={**c.volumes, **{p: {} for p in paths}})


_APPLY = {
    "CMD": lambda c, r: replace(c, cmd=_command(r)),
    "ENTRYPOINT": lambda c, r: replace(c, entrypoint=_command(r)),
    "ENV": _env,
    "EXPOSE": _expose,
    "LABEL": lambda c, r: replace(c, labels={**c.labels, **_pairs(r, "LABEL")}),
    "USER": lambda c, r: replace(c, user=r),
    "VOLUME": _volume,
    "WORKDIR": lambda c, r: replace(c, working_dir=r),
    "STOPSIGNAL": lambda c, r: replace(c, stop_signal=r),
    "ONBUILD": lambda c, r: c,
}
