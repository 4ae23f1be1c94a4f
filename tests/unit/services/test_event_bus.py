"""The event bus (services.events) and the GET /events stream over it (apiserver.routes_events):
publish/subscribe, replay for since/until, dockerd's filter rules, ordering, the
replay buffer's bound, publishing that never raises, and the wire shape."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from freight.apiserver.routes_events import (
    EventStream,
    event_json,
    parse_filters,
    parse_time_ns,
)
from freight.errors import InvalidArgument
from freight.services.events import (
    MATCH_ALL,
    EventBus,
    EventFilter,
    publish_daemon_reload,
)
from freight.services.model import Container, ContainerConfig, HostSettings

CID = "0123456789ab" + "c" * 52


def _container(cid: str = CID, name: str = "web", labels: dict | None = None) -> Container:
    config = ContainerConfig(image="busybox", labels=labels or {})
    return Container(cid, name, "", "sha256:" + "1" * 64, config, HostSettings())


def _actions(events) -> list[str]:
    return [ev.action for ev in events]


# publishing ---------------------------------------------------------------------


def test_container_event_carries_labels_image_and_name_extra_wins() -> None:
    bus = EventBus()
    c = _container(labels={"app": "x", "name": "from-label"})
    ev = bus.container(c, "die", {"exitCode": "3"})
    assert ev is not None
    assert (ev.type, ev.action, ev.actor_id) == ("container", "die", CID)
    assert dict(ev.attributes) == {"app": "x", "image": "busybox", "name": "web", "exitCode": "3"}


def test_times_strictly_increase_even_within_one_clock_tick(monkeypatch) -> None:
    bus = EventBus()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000)
    times = [bus.publish("volume", "create", f"v{i}").time_nano for i in range(5)]
    assert times == [1_000, 1_001, 1_002, 1_003, 1_004]


def test_publish_never_raises_into_the_caller() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    bus = EventBus()
    assert bus.publish("volume", "create", "v", {"driver": Broken()}) is None
    assert bus.history() == []
    broken = _container()
    broken.config = None  # type: ignore[assignment]
    assert bus.container(broken, "start") is None
    assert bus.publish("volume", "create", "ok") is not None  # the bus still works


def test_daemon_reload_event_has_the_daemon_id_and_host_name() -> None:
    bus = EventBus(daemon_id="d1")
    ev = publish_daemon_reload(bus, {"debug": "true"})
    assert ev is not None
    assert (ev.type, ev.action, ev.actor_id) == ("daemon", "reload", "d1")
    assert ev.attributes["debug"] == "true" and ev.attributes["name"]


def test_buffer_keeps_only_the_newest_events() -> None:
    bus = EventBus(buffer_size=3)
    for i in range(5):
        bus.publish("volume", "create", f"v{i}")
    assert [ev.actor_id for ev in bus.history()] == ["v2", "v3", "v4"]


def test_publish_from_many_threads_keeps_a_total_order() -> None:
    bus = EventBus()

    def burst(n: int) -> None:
        for i in range(200):
            bus.publish("volume", "create", f"{n}-{i}")

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = [ev.time_nano for ev in bus.history()]
    assert len(times) == 800 and times == sorted(set(times))


# subscribing --------------------------------------------------------------------


async def _drain(sub, n: int) -> list:
    return [await asyncio.wait_for(sub.get(), 2) for _ in range(n)]


def test_live_events_in_publish_order_from_threads_and_no_replay_by_default() -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.publish("volume", "create", "before")
        with bus.subscribe() as sub:
            assert sub.replay == []  # as dockerd: no since/until, no history
            await asyncio.to_thread(lambda: [bus.publish("volume", "create", "a") for _ in "x"])
            bus.publish("volume", "destroy", "a")
            got = await _drain(sub, 2)
        assert _actions(got) == ["create", "destroy"]
        bus.publish("volume", "create", "after")  # closed: nothing delivered, nothing raised

    asyncio.run(scenario())


def test_replay_since_is_inclusive_and_live_follows_without_duplicates() -> None:
    async def scenario() -> None:
        bus = EventBus()
        first = bus.publish("volume", "create", "a")
        second = bus.publish("volume", "mount", "a")
        sub = bus.subscribe(since_ns=second.time_nano)
        assert [ev.action for ev in sub.replay] == ["mount"]
        third = bus.publish("volume", "unmount", "a")
        assert (await _drain(sub, 1))[0] == third
        sub.close()
        assert first.time_nano < second.time_nano

    asyncio.run(scenario())


def test_until_bounds_replay_and_live_delivery() -> None:
    async def scenario() -> None:
        bus = EventBus()
        a = bus.publish("volume", "create", "a")
        b = bus.publish("volume", "create", "b")
        bus.publish("volume", "create", "c")
        sub = bus.subscribe(since_ns=a.time_nano, until_ns=b.time_nano)
        assert [ev.actor_id for ev in sub.replay] == ["a", "b"]
        bus.publish("volume", "create", "late")  # after until: not delivered
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sub.get(), 0.05)
        sub.close()

    asyncio.run(scenario())


def test_until_alone_replays_from_the_start_of_the_buffer() -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.publish("volume", "create", "a")
        sub = bus.subscribe(until_ns=time.time_ns() + 10**9)
        assert [ev.actor_id for ev in sub.replay] == ["a"]
        sub.close()

    asyncio.run(scenario())


# filters ------------------------------------------------------------------------


def _bus_with_mixed_events() -> EventBus:
    bus = EventBus()
    bus.container(_container(labels={"tier": "web"}), "create")
    bus.container(_container("fedcba" + "0" * 58, "db", {"tier": "db"}), "start")
    bus.publish("image", "tag", "sha256:" + "1" * 64, {"name": "busybox:mine"})
    bus.publish("network", "connect", "n" * 64, {"name": "front", "type": "bridge"})
    bus.publish("volume", "mount", "data", {"driver": "local", "container": CID})
    bus.container(_container(), "exec_start: sh -c ls", {"execID": "e1"})
    bus.container(_container(), "health_status: healthy")
    return bus


def _select(filters: dict[str, list[str]]) -> list[tuple[str, str]]:
    bus = _bus_with_mixed_events()
    return [(ev.type, ev.action) for ev in bus.history(EventFilter.parse(filters))]


def test_filter_by_type_and_event() -> None:
    assert _select({"type": ["volume", "network"]}) == [
        ("network", "connect"),
        ("volume", "mount"),
    ]
    assert _select({"event": ["start"]}) == [("container", "start")]


def test_event_filter_matches_detailed_actions_by_prefix() -> None:
    assert _select({"event": ["exec_start"]}) == [("container", "exec_start: sh -c ls")]
    assert _select({"event": ["health_status"]}) == [("container", "health_status: healthy")]


def test_container_filter_by_name_or_id_prefix_drops_other_types() -> None:
    by_name = _select({"container": ["db"]})
    by_prefix = _select({"container": ["fedcba"]})
    assert by_name == by_prefix == [("container", "start")]
    assert ("volume", "mount") not in _select({"container": [CID]})


def test_label_filter_key_and_key_value() -> None:
    assert _select({"label": ["tier=db"]}) == [("container", "start")]
    assert len(_select({"label": ["tier"]})) == 2


def test_image_filter_by_name_with_or_without_tag() -> None:
    assert _select({"image": ["busybox"], "type": ["container"]})[0] == ("container", "create")
    assert ("image", "tag") in _select({"image": ["busybox"]})


def test_network_and_volume_filters_by_name() -> None:
    assert _select({"network": ["front"]}) == [("network", "connect")]
    assert _select({"volume": ["data"]}) == [("volume", "mount")]


def test_bad_filters_are_invalid_argument_in_dockers_words() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        EventFilter.parse({"colour": ["red"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'type=box'"):
        EventFilter.parse({"type": ["box"]})
    with pytest.raises(InvalidArgument, match="^invalid filter$"):
        parse_filters("{not json")


def test_both_filter_wire_shapes_parse_alike() -> None:
    assert parse_filters('{"type":["container"]}') == parse_filters('{"type":{"container":true}}')
    assert parse_filters("") == {}


# the wire: routes_events -----------------------------------------------------------


def test_event_json_is_dockerds_message_with_legacy_fields() -> None:
    bus = EventBus()
    ev = bus.container(_container(), "start")
    assert ev is not None
    body = event_json(ev)
    assert list(body) == [
        "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
    ]  # fmt: skip
    assert body["from"] == "busybox" and body["id"] == CID and body["status"] == "start"
    assert body["Actor"] == {"ID": CID, "Attributes": {"image": "busybox", "name": "web"}}
    assert body["time"] == ev.time_nano // 10**9
    image = event_json(bus.publish("image", "tag", "sha256:x", {"name": "b:1"}))
    assert "from" not in image and image["status"] == "tag"
    volume = event_json(bus.publish("volume", "create", "v"))
    assert "status" not in volume and "id" not in volume


def test_time_parameters_in_dockers_forms() -> None:
    assert parse_time_ns("") is None
    assert parse_time_ns("1700000000") == 1_700_000_000 * 10**9
    assert parse_time_ns("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_time_ns("1700000000.123456789") == 1_700_000_000_123_456_789
    assert parse_time_ns("2023-11-14T22:13:20Z") == 1_700_000_000 * 10**9
    with pytest.raises(InvalidArgument, match='parsing "soon": invalid syntax'):
        parse_time_ns("soon")


def test_stream_of_a_past_until_is_the_buffered_slice_then_ends() -> None:
    async def scenario() -> list[bytes]:
        bus = EventBus()
        a = bus.publish("volume", "create", "a")
        bus.publish("volume", "destroy", "a")
        until = time.time_ns()
        bus.publish("volume", "create", "b")
        stream = EventStream(bus.subscribe(MATCH_ALL, a.time_nano, until), until, True)
        chunks = [chunk async for chunk in stream]
        await stream.aclose()
        return chunks

    chunks = asyncio.run(scenario())
    assert len(chunks) == 2 and b'"Action":"destroy"' in chunks[1]
    assert all(c.endswith(b"\n") for c in chunks)


def test_stream_with_a_future_until_delivers_live_events_and_stops_on_time() -> None:
    async def scenario() -> tuple[list[bytes], float]:
        bus = EventBus()
        until = time.time_ns() + 300_000_000
        stream = EventStream(bus.subscribe(MATCH_ALL, None, until), until, False)
        asyncio.get_running_loop().call_later(0.05, bus.publish, "volume", "create", "live")
        start = time.monotonic()
        chunks = [chunk async for chunk in stream]
        elapsed = time.monotonic() - start
        await stream.aclose()
        assert bus._subscribers == []  # aclose released the subscription
        return chunks, elapsed

    chunks, elapsed = asyncio.run(scenario())
    assert len(chunks) == 1 and b'"live"' in chunks[0]
    assert 0.2 < elapsed < 2
