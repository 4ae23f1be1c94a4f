"""The daemon's event bus: what happened to containers, images, networks, volumes and the daemon.

One `EventBus` per daemon, made in the composition root and handed to the
services that publish. Publishing is cheap, synchronous and thread-safe
(services run on worker threads as well as on the event loop):

    bus = EventBus()
    bus.publish("volume", "create", "myvol", {"driver": "local"})
    bus.container(c, "die", {"exitCode": "137"})  # container events: labels, image, name added

`publish(type, action, actor_id, attributes=None, scope="local")` records the
event exactly as given. `container(c, action, extra)` is the helper for
container events: it copies the container's labels into the attributes and
adds `image` (the name the container was created from) and `name`, as
dockerd does; `extra` wins over labels (`exitCode` for die, `signal` for
kill, `execID` for exec_*). Actions with a detail keep docker's spelling:
"exec_create: sh -c ls", "health_status: healthy".

Types and actions published (docker's): container create/start/die/stop/kill/
destroy/attach/restart/rename/pause/unpause/exec_create/exec_start/exec_die/
oom/health_status; image pull/tag/untag/delete/push/import/save/load;
network create/connect/disconnect/destroy; volume create/mount/unmount/destroy;
daemon reload (`publish_daemon_reload(bus, attributes)`, called on SIGHUP).

Publishing never raises into the caller: an event that cannot be made (a
broken attribute) is logged and dropped, since an operation that succeeded
must not fail because its event could not be told.

Readers subscribe on the event loop:

    sub = bus.subscribe(EventFilter.parse({"type": ["container"]}), since_ns=t0)
    for ev in sub.replay: ...          # buffered events since t0 (and <= until)
    ev = await sub.get()               # then live ones, in publish order
    sub.close()

The last `BUFFER_SIZE` events are kept for replay (`since`/`until`). Event
times are strictly increasing nanoseconds, so replay and live delivery never
reorder or duplicate. Filters follow dockerd's rules (`EventFilter`): keys
type, event, container, image, label, network, volume, daemon, scope; an
unknown key is InvalidArgument.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from freight.errors import InvalidArgument

if TYPE_CHECKING:
    from freight.services.model import Container

log = logging.getLogger(__name__)

BUFFER_SIZE = 1024

EVENT_TYPES = ("container", "image", "network", "volume", "daemon", "plugin")
FILTER_KEYS = (
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
    "daemon",
    "scope",
    "plugin",
)
# Actions with a detail after "name: "; a bare filter value matches them by prefix (moby #25798).
_DETAILED_ACTIONS = frozenset({"health_status", "exec_create", "exec_start"})


@dataclass(frozen=True)
class Event:
    """One event; `time_nano` orders events (strictly increasing per bus)."""

    type: str
    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    scope: str = "local"
    time_nano: int = 0

    @property
    def time(self) -> int:
        return self.time_nano // 1_000_000_000


def _fuzzy(values: list[str] | None, *sources: str) -> bool:
    """dockerd's FuzzyMatch: no values → True; else some value equals or prefixes a source."""
    if not values:
        return True
    return any(src and src.startswith(v) for v in values for src in sources)


def _exact(values: list[str] | None, *sources: str) -> bool:
    if not values:
        return True
    return any(src in values for src in sources if src)


def _strip_tag(name: str) -> str:
    """`busybox:latest` → `busybox`; digests and registry ports are kept."""
    if "@" in name:
        return name
    slash = name.rfind("/")
    colon = name.rfind(":")
    base = name[:colon] if colon > slash else name
    for prefix in ("docker.io/library/", "docker.io/"):
        if base.startswith(prefix):
            return base[len(prefix) :]
    return base


def _labels_match(wanted: list[str] | None, attrs: Mapping[str, str]) -> bool:
    """Every `key` or `key=value` in `wanted` is among the attributes."""
    if not wanted:
        return True
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in attrs or (sep and attrs[key] != value):
            return False
    return True


@dataclass(frozen=True)
class EventFilter:
    """Parsed `filters` of GET /events; `matches` is dockerd's Include."""

    values: Mapping[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, filters: Mapping[str, list[str]]) -> EventFilter:
        for key in filters:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
        for value in filters.get("type", []):
            if value not in EVENT_TYPES:
                raise InvalidArgument(f"invalid filter 'type={value}'")
        for value in filters.get("scope", []):
            if value not in ("local", "swarm"):
                raise InvalidArgument(f"invalid filter 'scope={value}'")
        return cls(MappingProxyType({k: list(v) for k, v in filters.items()}))

    def matches(self, ev: Event) -> bool:
        f = self.values
        name = ev.attributes.get("name", "")
        return (
            self._event_matches(ev.action)
            and _exact(f.get("type"), ev.type)
            and _exact(f.get("scope"), ev.scope)
            and self._named(ev, "daemon", name)
            and self._named(ev, "container", name)
            and self._named(ev, "plugin", name)
            and self._named(ev, "volume", name)
            and self._named(ev, "network", name)
            and self._image_matches(ev)
            and _labels_match(f.get("label"), ev.attributes)
        )

    def _event_matches(self, action: str) -> bool:
        wanted = self.values.get("event")
        if not wanted:
            return True
        if any(v in _DETAILED_ACTIONS for v in wanted):
            return _fuzzy(wanted, action)
        return action in wanted

    def _named(self, ev: Event, key: str, name: str) -> bool:
        # As dockerd: a `container=x` filter also drops events of other types.
        return _fuzzy(self.values.get(key), ev.actor_id, name)

    def _image_matches(self, ev: Event) -> bool:
        wanted = self.values.get("image")
        if not wanted:
            return True
        image = ev.attributes.get("name" if ev.type == "image" else "image", "")
        candidates = (ev.actor_id, image, _strip_tag(ev.actor_id), _strip_tag(image))
        return any(c in wanted for c in candidates if c)


MATCH_ALL = EventFilter()


class Subscription:
    """Replayed events plus a live queue; `get` must be awaited on the loop that subscribed."""

    def __init__(self, bus: EventBus, flt: EventFilter, until_ns: int | None) -> None:
        self._bus = bus
        self._filter = flt
        self._until_ns = until_ns
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self.replay: list[Event] = []

    def _deliver(self, ev: Event) -> None:
        """Called by publish, under the bus lock, from any thread."""
        if self._until_ns is not None and ev.time_nano > self._until_ns:
            return
        if not self._filter.matches(ev):
            return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, ev)
        except RuntimeError:  # the subscriber's loop is closed; it will never read again
            self._bus.unsubscribe(self)

    async def get(self) -> Event:
        return await self._queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Publish/subscribe with a replay buffer of the last `BUFFER_SIZE` events."""

    def __init__(self, buffer_size: int = BUFFER_SIZE, daemon_id: str = "") -> None:
        self._lock = threading.Lock()
        self._buffer: deque[Event] = deque(maxlen=buffer_size)
        self._subscribers: list[Subscription] = []
        self._last_ns = 0
        self.daemon_id = daemon_id  # the Actor ID of daemon events

    def publish(
        self,
        type: str,
        action: str,
        actor_id: str,
        attributes: Mapping[str, str] | None = None,
        scope: str = "local",
    ) -> Event | None:
        """Record and deliver one event; None (logged) if it could not be made."""
        try:
            attrs = {str(k): str(v) for k, v in (attributes or {}).items()}
            with self._lock:
                # Strictly increasing, so `since=<time of an event>` is exact and order is total.
                self._last_ns = max(time.time_ns(), self._last_ns + 1)
                ev = Event(type, action, actor_id, MappingProxyType(attrs), scope, self._last_ns)
                self._buffer.append(ev)
                for sub in list(self._subscribers):
                    sub._deliver(ev)
        except Exception:
            log.exception("event %s %s of %s dropped", type, action, actor_id)
            return None
        return ev

    def container(
        self, c: Container, action: str, extra: Mapping[str, str] | None = None
    ) -> Event | None:
        """A container event with labels, image and name as attributes."""
        try:
            attrs = dict(c.config.labels)
            attrs["image"] = c.config.image or c.image_id
            attrs["name"] = c.name
            attrs.update(extra or {})
        except Exception:
            log.exception("container event %s dropped", action)
            return None
        return self.publish("container", action, c.id, attrs)

    def subscribe(
        self,
        flt: EventFilter = MATCH_ALL,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> Subscription:
        """A subscription (call on the event loop); `replay` holds the buffered matches.

        As dockerd, nothing is replayed unless `since` or `until` is given.
        """
        sub = Subscription(self, flt, until_ns)
        with self._lock:
            if since_ns is not None or until_ns is not None:
                sub.replay = self._buffered(flt, since_ns or 0, until_ns)
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def history(
        self, flt: EventFilter = MATCH_ALL, since_ns: int = 0, until_ns: int | None = None
    ) -> list[Event]:
        with self._lock:
            return self._buffered(flt, since_ns, until_ns)

    def _buffered(self, flt: EventFilter, since_ns: int, until_ns: int | None) -> list[Event]:
        return [
            ev
            for ev in self._buffer
            if ev.time_nano >= since_ns
            and (until_ns is None or ev.time_nano <= until_ns)
            and flt.matches(ev)
        ]


def publish_daemon_reload(
    bus: EventBus, attributes: Mapping[str, str] | None = None
) -> Event | None:
    """The `daemon reload` event, after a SIGHUP reloaded the configuration.

    `attributes` are the reloaded settings as dockerd reports them (e.g.
    "debug": "true", "insecure-registries": "[a b]", "registry-mirrors": "[]");
    the host name is added as `name`, and the Actor ID is the daemon's id.
    """
    attrs = dict(attributes or {})
    attrs.setdefault("name", socket.gethostname())
    return bus.publish("daemon", "reload", bus.daemon_id, attrs)
