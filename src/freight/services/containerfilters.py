"""Container filters as dockerd reads them: `GET /containers/json?filters=` (ps) and
`POST /containers/prune?filters=`, plus the `until` timestamp grammar.

Pure: everything that is not in the container record (image ancestry, networks,
published ports, health) comes through a `FilterContext` of plain callables, so
the rules are unit-tested with fakes and the routes stay thin.

Semantics, as moby's (daemon/list.go, daemon/prune.go, api/types/filters):

- values of one key are OR'ed, keys are AND'ed; except `label` (and `label!`),
  whose values must *all* match (MatchKVList);
- `name` and `id`: exact, or a regular expression searched in "/name" / a prefix
  of the id; an invalid expression matches nothing;
- `before`/`since`: relative to the named container in creation order; an unknown
  one is "No such container";
- `ancestor`: the image, or any image built on it; an unknown image matches nothing;
- `publish`/`expose`: `port[/proto]` or `start-end[/proto]`, host side / container side;
- `is-task=false` matches every container (none is a swarm task here).

`label!` is accepted by ps too (docker only takes it for prune): it excludes a
container that has every listed label.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

from freight.dockerapi import goduration
from freight.errors import FreightError, InvalidArgument, NotFound
from freight.services.model import Container

Filters = dict[str, list[str]]

STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")
PS_KEYS = frozenset(
    {
        "ancestor", "before", "exited", "id", "isolation", "label", "label!", "name", "status",
        "health", "since", "volume", "network", "is-task", "publish", "expose",
    }
)  # fmt: skip
PRUNE_KEYS = frozenset({"until", "label", "label!"})
SWARM_TASK_LABEL = "com.docker.swarm.task.id"


@dataclass(frozen=True)
class PortEntry:
    """One row of a container's `Ports` list: public 0 when only exposed."""

    private: int
    public: int
    proto: str


def _no_ancestors(ref: str) -> set[str] | None:
    return None


def _no_networks(c: Container) -> dict[str, str]:
    return {}


def _no_ports(c: Container) -> list[PortEntry]:
    return []


def health_of(c: Container) -> str:
    """starting | healthy | unhealthy, or "none" for a container without a healthcheck."""
    health = getattr(c.state, "health", None)
    status = health.get("Status") if isinstance(health, dict) else getattr(health, "status", "")
    return status or "none"


@dataclass
class FilterContext:
    """What the filters need beyond the record, as callables (fakes in tests)."""

    # image reference -> ids of that image and every image built on it; None if unknown
    ancestors: Callable[[str], set[str] | None] = _no_ancestors
    # container -> {network name: network id} it is attached to
    networks: Callable[[Container], dict[str, str]] = _no_networks
    # container -> its Ports rows (published and exposed)
    ports: Callable[[Container], list[PortEntry]] = _no_ports
    health: Callable[[Container], str] = health_of
    now: Callable[[], float] = field(default=time.time)


# validation -------------------------------------------------------------------


def check_keys(filters: Filters, allowed: frozenset[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")


def _check_values(filters: Filters) -> None:
    for value in filters.get("status", []):
        if value not in STATES:
            raise InvalidArgument(f"invalid filter 'status={value}'")
    for value in filters.get("health", []):
        if value not in HEALTH:
            raise InvalidArgument(f"invalid filter 'health={value}'")
    for value in filters.get("exited", []):
        _exit_code(value)
    for value in filters.get("is-task", []):
        if value not in ("true", "false"):
            raise InvalidArgument(f"Invalid filter 'is-task={value}'")
    for value in filters.get("isolation", []):
        if value not in ("", "default"):
            raise InvalidArgument(f"invalid filter 'isolation={value}'")


def _exit_code(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f'strconv.Atoi: parsing "{value}": invalid syntax') from None


def port_set(key: str, values: list[str]) -> set[str]:
    """`80`, `80/udp`, `8000-8010/tcp` → {"80/tcp", …}, with moby's errors."""
    out: set[str] = set()
    for value in values:
        if ":" in value:
            raise InvalidArgument(f"filter for '{key}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        start_s, dash, end_s = port.partition("-")
        try:
            start = int(start_s)
            end = int(end_s) if dash else start
        except ValueError:
            raise InvalidArgument(
                f"error while looking up for {key} {value}: invalid start port '{port}'"
            ) from None
        if end < start:
            raise InvalidArgument(
                f"error while looking up for {key} {value}: invalid range specified: {port}"
            )
        out.update(f"{p}/{proto or 'tcp'}" for p in range(start, end + 1))
    return out


# labels -------------------------------------------------------------------------


def match_kv_list(values: list[str], labels: dict[str, str]) -> bool:
    """Every `k` / `k=v` of `values` is among `labels` (moby's MatchKVList)."""
    for item in values:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def labels_match(filters: Filters, labels: dict[str, str]) -> bool:
    """`label` all present, and not every `label!` present (moby's matchLabels)."""
    if not match_kv_list(filters.get("label", []), labels):
        return False
    negated = filters.get("label!", [])
    return not (negated and match_kv_list(negated, labels))


# ps -------------------------------------------------------------------------------


def select(
    containers: list[Container],
    filters: Filters,
    ctx: FilterContext,
    lookup: Callable[[str], Container],
) -> list[Container]:
    """The containers (newest first, as given) that pass `filters`.

    `lookup` resolves `before`/`since` references (NotFound: "No such container").
    """
    filters = {k: v for k, v in filters.items() if v}
    check_keys(filters, PS_KEYS)
    _check_values(filters)
    out = _window(containers, filters, lookup)
    if "ancestor" in filters:
        images: set[str] = set()
        for ref in filters["ancestor"]:
            images |= ctx.ancestors(ref) or set()
        out = [c for c in out if c.image_id in images]
    return [c for c in out if _passes(c, filters, ctx)]


def _window(
    containers: list[Container], filters: Filters, lookup: Callable[[str], Container]
) -> list[Container]:
    """`before=X`: created before X; `since=X`: created after X (the last value wins)."""
    out = containers
    for key in ("before", "since"):
        if key not in filters:
            continue
        ref = filters[key][-1]
        try:
            anchor = lookup(ref)
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None
        ids = [c.id for c in out]
        if anchor.id not in ids:
            anchor_created = anchor.created
            if key == "before":
                out = [c for c in out if c.created < anchor_created]
            else:
                out = [c for c in out if c.created > anchor_created]
            continue
        at = ids.index(anchor.id)  # the list is newest first
        out = out[at + 1 :] if key == "before" else out[:at]
    return out


def _passes(c: Container, filters: Filters, ctx: FilterContext) -> bool:
    if not labels_match(filters, c.config.labels):
        return False
    for key, values in filters.items():
        check = _CHECKS.get(key)
        if check is not None and not check(c, values, ctx):
            return False
    return True


def _name_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    return any(_regex_or_equal(v, "/" + c.name) for v in values)


def _regex_or_equal(pattern: str, text: str) -> bool:
    if pattern == text:
        return True
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _id_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    return any(c.id.startswith(v) for v in values)


def _status_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    return c.state.status in values


def _exited_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    # As moby: only a container that ran and stopped has an exit code to match.
    if c.state.running or c.state.started_at.startswith("0001-"):
        return False
    return c.state.exit_code in {_exit_code(v) for v in values}


def _health_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    return ctx.health(c) in values


def _isolation_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    isolation = c.host.extra.get("Isolation") or "default"
    return any((v or "default") == isolation for v in values)


def _task_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    is_task = SWARM_TASK_LABEL in c.config.labels
    return any((v == "true") == is_task or v == "false" for v in values)


def _volume_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    return any(m.destination in values or (m.name or m.source) in values for m in c.mounts)


def _network_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    nets = ctx.networks(c)
    return any(v in nets or any(nid.startswith(v) for nid in nets.values()) for v in values)


def _publish_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    wanted = port_set("publish", values)
    return any(p.public and f"{p.public}/{p.proto}" in wanted for p in ctx.ports(c))


def _expose_ok(c: Container, values: list[str], ctx: FilterContext) -> bool:
    wanted = port_set("expose", values)
    return any(f"{p.private}/{p.proto}" in wanted for p in ctx.ports(c))


_CHECKS: dict[str, Callable[[Container, list[str], FilterContext], bool]] = {
    "name": _name_ok,
    "id": _id_ok,
    "status": _status_ok,
    "exited": _exited_ok,
    "health": _health_ok,
    "isolation": _isolation_ok,
    "is-task": _task_ok,
    "volume": _volume_ok,
    "network": _network_ok,
    "publish": _publish_ok,
    "expose": _expose_ok,
}


# prune ------------------------------------------------------------------------------


def prunable(
    containers: list[Container], filters: Filters, now: float | None = None
) -> list[Container]:
    """Stopped containers that pass the prune filters (`until`, `label`, `label!`)."""
    filters = {k: v for k, v in filters.items() if v}
    check_keys(filters, PRUNE_KEYS)
    until = until_of(filters, time.time() if now is None else now)
    out = []
    for c in containers:
        if c.state.running or c.state.status == "removing":
            continue
        if until is not None and created_seconds(c) >= until:
            continue
        if labels_match(filters, c.config.labels):
            out.append(c)
    return out


def until_of(filters: Filters, now: float) -> float | None:
    values = filters.get("until") or []
    if not values:
        return None
    if len(values) > 1:
        raise InvalidArgument("more than one until filter specified")
    return timestamp(values[0], now)


def created_seconds(c: Container) -> float:
    return _rfc3339_seconds(c.created)


def _rfc3339_seconds(text: str) -> float:
    try:
        return timestamp(text, 0.0)
    except InvalidArgument:
        return 0.0


# timestamps -------------------------------------------------------------------------

_ZONE = re.compile(r"(Z|z|[+-]\d\d:\d\d)$")


def go_duration(text: str) -> float | None:
    """Go's time.ParseDuration ("1h30m", "1.5h", "300ms", "-2m") in seconds; None if not one."""
    return goduration.seconds_or_none(text)


def timestamp(value: str, now: float) -> float:
    """docker's timetypes.GetTimestamp: a Go duration before `now`, a Unix time
    ("1700000000.5"), or an RFC 3339 date/time, whole or cut short ("2024-01-02",
    "2024-01-02T15:04"), in local time without a zone."""
    if value != "0":
        d = go_duration(value)
        if d is not None:
            return now - d
    parsed = _parse_date(value)
    if parsed is not None:
        return parsed
    if "-" not in value:
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')


def _parse_date(value: str) -> float | None:
    zone_m = _ZONE.search(value)
    body = value[: zone_m.start()] if zone_m else value
    tz = _zone(zone_m.group(1)) if zone_m else None
    main, dot, frac = body.partition(".")
    layouts = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d")
    for layout in layouts:
        try:
            dt = datetime.strptime(main, layout)
        except ValueError:
            continue
        if dot and (layout != layouts[0] or not frac.isdigit()):
            return None
        dt = dt.replace(tzinfo=tz) if tz is not None else dt.astimezone()
        return dt.timestamp() + (float("0." + frac) if dot else 0.0)
    return None


def _zone(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# the daemon's context ------------------------------------------------------------------


def context_for(svc: ContainerServiceLike) -> FilterContext:
    """The callables over a ContainerService (its images and network service)."""
    return FilterContext(
        ancestors=lambda ref: _descendants(svc.images, ref),
        networks=lambda c: _networks(svc.network, c),
        ports=lambda c: _ports(svc.network, c),
    )


class ContainerServiceLike(Protocol):
    images: Any
    network: Any


def _descendants(images: Any, ref: str) -> set[str] | None:
    try:
        root = images.resolve(ref)
    except FreightError:
        return None
    children: dict[str, list[str]] = {}
    for row in images.meta.images():
        if row.parent:
            children.setdefault(row.parent, []).append(row.id)
    out, todo = set(), [root]
    while todo:
        image_id = todo.pop()
        if image_id not in out:
            out.add(image_id)
            todo += children.get(image_id, [])
    return out


def _networks(net: Any, c: Container) -> dict[str, str]:
    cn = net.container_net(c.id) if net is not None else None
    if cn is None:
        return {}
    if cn.mode in ("host", "none"):
        found = [n for n in net.list() if n.name == cn.mode]
        return {cn.mode: found[0].id if found else ""}
    out = {}
    for a in cn.attachments:
        try:
            out[net.get(a.network_id).name] = a.network_id
        except FreightError:
            continue
    return out


def _ports(net: Any, c: Container) -> list[PortEntry]:
    cn = net.container_net(c.id) if net is not None else None
    if not c.state.running or cn is None:
        return []
    out = [PortEntry(p.container_port, p.host_port, p.proto) for p in cn.ports]
    published = {f"{p.private}/{p.proto}" for p in out}
    for key in c.config.exposed_ports:
        port, _, proto = key.partition("/")
        if key not in published and port.isdigit():
            out.append(PortEntry(int(port), 0, proto or "tcp"))
    return out
