"""Engine API `GET /events`: the daemon's event bus as a stream of JSON messages.

    GET /events?since=1700000000.5&until=1700000060&filters={"type":["container"]}

The answer's headers go out at once (docker-py and the docker CLI wait for
them before they return to their caller), then one JSON object per line:
first the buffered events since `since` (nothing is replayed without
`since` or `until`), then live ones, in publish order. A `until` in the
past ends the stream after the buffered slice; one in the future ends it
when that time comes. The message is dockerd's, legacy fields included:

    {"status":"start","id":"<id>","from":"busybox","Type":"container","Action":"start",
     "Actor":{"ID":"<id>","Attributes":{"image":"busybox","name":"x"}},
     "scope":"local","time":1700000000,"timeNano":1700000000123456789}

(`status`, `id` for container and image events, `from` for container events.)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from freight.apiserver.http import AnyResponse, Request, StreamingResponse, encode_json
from freight.apiserver.http import parse_filters as parse_filter_json
from freight.apiserver.router import Router
from freight.errors import InvalidArgument
from freight.services.clock import parse_rfc3339
from freight.services.events import Event, EventBus, EventFilter, Subscription

_NS = 1_000_000_000


class EventRoutes:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def register(self, r: Router) -> None:
        r.add("GET", "/events", self.events)

    async def events(self, req: Request) -> AnyResponse:
        q = req.query
        since_ns = parse_time_ns(q.get("since") or "")
        until_ns = parse_time_ns(q.get("until") or "")
        if since_ns is not None and until_ns is not None and until_ns < since_ns:
            raise InvalidArgument(
                f"`since` time ({q.get('since')}) cannot be after `until` time ({q.get('until')})"
            )
        flt = EventFilter.parse(parse_filters(q.get("filters") or ""))
        only_past = until_ns is not None and until_ns < time.time_ns()
        # Subscribed before the answer starts: nothing published from here on is missed.
        sub = self.bus.subscribe(flt, since_ns, until_ns)
        return StreamingResponse(EventStream(sub, until_ns, only_past))


class EventStream:
    """The body: replayed events, then live ones until `until` (or the client leaves).

    A class rather than an async generator, so `aclose` releases the
    subscription even if the server never started iterating (a HEAD request).
    """

    def __init__(self, sub: Subscription, until_ns: int | None, only_past: bool) -> None:
        self._sub = sub
        self._pending: deque[Event] = deque(sub.replay)
        self._until_ns = until_ns
        self._only_past = only_past

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> bytes:
        if self._pending:
            return encode_json(event_json(self._pending.popleft()))
        if self._only_past:
            raise StopAsyncIteration
        timeout = None
        if self._until_ns is not None:
            timeout = (self._until_ns - time.time_ns()) / _NS
            if timeout <= 0:
                raise StopAsyncIteration
        try:
            ev = await asyncio.wait_for(self._sub.get(), timeout)
        except TimeoutError:
            raise StopAsyncIteration from None
        return encode_json(event_json(ev))

    async def aclose(self) -> None:
        self._sub.close()


def event_json(ev: Event) -> dict[str, Any]:
    """dockerd's events.Message, keys in its order; legacy fields as dockerd fills them."""
    out: dict[str, Any] = {}
    if ev.type in ("container", "image"):
        out["status"] = ev.action
        out["id"] = ev.actor_id
        image = ev.attributes.get("image", "") if ev.type == "container" else ""
        if image:
            out["from"] = image
    out["Type"] = ev.type
    out["Action"] = ev.action
    out["Actor"] = {"ID": ev.actor_id, "Attributes": dict(ev.attributes)}
    out["scope"] = ev.scope
    out["time"] = ev.time
    out["timeNano"] = ev.time_nano
    return out


def parse_time_ns(text: str) -> int | None:
    """docker's timestamps ("1700000000", "1700000000.123456789"); RFC 3339 too. None if empty."""
    text = text.strip()
    if not text:
        return None
    seconds, dot, frac = text.partition(".")
    if seconds.lstrip("-").isdigit() and (not dot or frac.isdigit()):
        ns = int(frac[:9].ljust(9, "0")) if frac else 0
        return int(seconds) * _NS + (ns if not seconds.startswith("-") else -ns)
    try:
        return int(parse_rfc3339(text) * 1_000_000) * 1000
    except ValueError:
        raise InvalidArgument(f'strconv.ParseInt: parsing "{seconds}": invalid syntax') from None


def parse_filters(raw: str) -> dict[str, list[str]]:
    """Both of docker's shapes, {"type":["container"]} and {"type":{"container":true}}."""
    try:
        return parse_filter_json(raw)
    except InvalidArgument:
        raise InvalidArgument("invalid filter") from None
