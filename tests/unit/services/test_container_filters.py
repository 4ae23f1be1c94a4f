"""services.containerfilters: ps and prune filters as dockerd reads them, on plain records."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from freight.errors import InvalidArgument, NotFound
from freight.services import containerfilters as cf
from freight.services.clock import format_ns
from freight.services.model import (
    Container,
    ContainerConfig,
    ContainerState,
    HostSettings,
    MountPoint,
)

NOW = 1_800_000_000.0


def make(
    name: str,
    created: float,
    status: str = "running",
    labels: dict[str, str] | None = None,
    image: str = "img-a",
    exit_code: int = 0,
    started: bool = True,
    mounts: list[MountPoint] | None = None,
) -> Container:
    state = ContainerState(
        status=status,
        exit_code=exit_code,
        started_at=format_ns(int(created * 1e9)) if started else "0001-01-01T00:00:00Z",
    )
    return Container(
        id=(name.encode().hex() * 32)[:64],
        name=name,
        created=format_ns(int(created * 1e9)),
        image_id=image,
        config=ContainerConfig(image="busybox", labels=labels or {}),
        host=HostSettings(),
        state=state,
        mounts=mounts or [],
    )


@pytest.fixture
def box() -> list[Container]:
    """Newest first, as ContainerService.list() gives them."""
    return [
        make("web", NOW - 10, labels={"tier": "front", "env": "prod"}, image="img-b"),
        make("db", NOW - 20, status="exited", exit_code=3, labels={"tier": "back"}),
        make(
            "cache",
            NOW - 30,
            status="exited",
            exit_code=0,
            mounts=[MountPoint("volume", "/data", source="/v/cachevol", name="cachevol")],
        ),
        make("fresh", NOW - 40, status="created", started=False, labels={"env": "prod"}),
    ]


def names(found: list[Container]) -> list[str]:
    return [c.name for c in found]


def pick(
    box: list[Container], filters: dict[str, list[str]], ctx: cf.FilterContext | None = None
) -> list[str]:
    by_ref = {c.name: c for c in box}

    def lookup(ref: str) -> Container:
        if ref in by_ref:
            return by_ref[ref]
        raise NotFound(f"No such container: {ref}")

    return names(cf.select(box, filters, ctx or cf.FilterContext(), lookup))


def test_no_filters_keeps_everything_in_order(box) -> None:
    assert pick(box, {}) == ["web", "db", "cache", "fresh"]
    assert pick(box, {"label": []}) == ["web", "db", "cache", "fresh"]


def test_status_values_or_and_unknown_status(box) -> None:
    assert pick(box, {"status": ["exited", "created"]}) == ["db", "cache", "fresh"]
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'status=sleeping'$"):
        pick(box, {"status": ["sleeping"]})


def test_unknown_key_is_dockers_error(box) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'colour'$"):
        pick(box, {"colour": ["red"]})


def test_exited_needs_a_stopped_container_that_ran(box) -> None:
    assert pick(box, {"exited": ["3"]}) == ["db"]
    assert pick(box, {"exited": ["0"]}) == ["cache"]  # "fresh" never ran, "web" runs
    with pytest.raises(InvalidArgument, match="invalid syntax"):
        pick(box, {"exited": ["x"]})


def test_labels_all_must_match_and_negation(box) -> None:
    assert pick(box, {"label": ["env"]}) == ["web", "fresh"]
    assert pick(box, {"label": ["env=prod", "tier=front"]}) == ["web"]
    assert pick(box, {"label": ["env=dev"]}) == []
    assert pick(box, {"label!": ["env"]}) == ["db", "cache"]
    # moby's MatchKVList on label!: only a container with *all* of them is excluded.
    assert pick(box, {"label!": ["env", "tier"]}) == ["db", "cache", "fresh"]


def test_name_is_a_regex_over_slash_name_and_id_a_prefix(box) -> None:
    assert pick(box, {"name": ["^/c"]}) == ["cache"]
    assert pick(box, {"name": ["e"]}) == ["web", "cache", "fresh"]
    assert pick(box, {"name": ["/db", "web"]}) == ["web", "db"]
    assert pick(box, {"name": ["[unclosed"]}) == []
    db = next(c for c in box if c.name == "db")
    assert pick(box, {"id": [db.id[:6]]}) == ["db"]


def test_before_and_since_follow_creation_order(box) -> None:
    assert pick(box, {"before": ["db"]}) == ["cache", "fresh"]
    assert pick(box, {"since": ["cache"]}) == ["web", "db"]
    assert pick(box, {"since": ["fresh"], "before": ["web"]}) == ["db", "cache"]
    with pytest.raises(NotFound, match="No such container: ghost"):
        pick(box, {"before": ["ghost"]})


def test_ancestor_uses_the_image_and_its_descendants(box) -> None:
    tree = {"busybox": {"img-a", "img-b"}, "img-b": {"img-b"}}
    ctx = cf.FilterContext(ancestors=tree.get)
    assert pick(box, {"ancestor": ["busybox"]}, ctx) == ["web", "db", "cache", "fresh"]
    assert pick(box, {"ancestor": ["img-b"]}, ctx) == ["web"]
    assert pick(box, {"ancestor": ["nothing"]}, ctx) == []


def test_volume_by_name_source_or_destination(box) -> None:
    assert pick(box, {"volume": ["cachevol"]}) == ["cache"]
    assert pick(box, {"volume": ["/data"]}) == ["cache"]
    assert pick(box, {"volume": ["other"]}) == []


def test_network_by_name_or_id_prefix(box) -> None:
    nets = {"web": {"bridge": "b" * 64}, "db": {"backend": "1234abcd" + "0" * 56}}
    ctx = cf.FilterContext(networks=lambda c: nets.get(c.name, {}))
    assert pick(box, {"network": ["bridge"]}, ctx) == ["web"]
    assert pick(box, {"network": ["1234"]}, ctx) == ["db"]
    assert pick(box, {"network": ["bridge", "backend"]}, ctx) == ["web", "db"]


def test_publish_and_expose_ports_and_ranges(box) -> None:
    rows = {
        "web": [cf.PortEntry(80, 8080, "tcp"), cf.PortEntry(53, 0, "udp")],
        "db": [cf.PortEntry(5432, 0, "tcp")],
    }
    ctx = cf.FilterContext(ports=lambda c: rows.get(c.name, []))
    assert pick(box, {"publish": ["8080"]}, ctx) == ["web"]
    assert pick(box, {"publish": ["8080/udp"]}, ctx) == []
    assert pick(box, {"publish": ["8000-8100/tcp"]}, ctx) == ["web"]
    assert pick(box, {"expose": ["80"]}, ctx) == ["web"]
    assert pick(box, {"expose": ["53/udp"]}, ctx) == ["web"]
    assert pick(box, {"expose": ["5000-6000"]}, ctx) == ["db"]
    assert pick(box, {"publish": ["53"]}, ctx) == []  # only exposed, not published
    with pytest.raises(InvalidArgument, match="filter for 'publish' should not contain ':'"):
        pick(box, {"publish": ["1:80"]}, ctx)
    with pytest.raises(InvalidArgument, match="error while looking up for expose x"):
        pick(box, {"expose": ["x"]}, ctx)


def test_health_isolation_and_is_task(box) -> None:
    status = {"web": "healthy", "db": "unhealthy"}
    ctx = cf.FilterContext(health=lambda c: status.get(c.name, "none"))
    assert pick(box, {"health": ["healthy"]}, ctx) == ["web"]
    assert pick(box, {"health": ["none"]}, ctx) == ["cache", "fresh"]
    with pytest.raises(InvalidArgument, match="invalid filter 'health=ok'"):
        pick(box, {"health": ["ok"]}, ctx)
    assert pick(box, {"isolation": ["default"]}) == ["web", "db", "cache", "fresh"]
    with pytest.raises(InvalidArgument, match="invalid filter 'isolation=hyperv'"):
        pick(box, {"isolation": ["hyperv"]})
    assert pick(box, {"is-task": ["false"]}) == ["web", "db", "cache", "fresh"]
    assert pick(box, {"is-task": ["true"]}) == []
    with pytest.raises(InvalidArgument, match="Invalid filter 'is-task=maybe'"):
        pick(box, {"is-task": ["maybe"]})


def test_health_of_reads_the_state() -> None:
    c = make("x", NOW)
    assert cf.health_of(c) == "none"
    c.state.health = {"Status": "starting"}  # type: ignore[attr-defined]
    assert cf.health_of(c) == "starting"


def test_keys_and_across_values_or(box) -> None:
    assert pick(box, {"status": ["exited", "running"], "label": ["tier"]}) == ["web", "db"]


# prune ---------------------------------------------------------------------------------


def test_prune_takes_stopped_ones_with_until_and_labels(box) -> None:
    assert names(cf.prunable(box, {}, now=NOW)) == ["db", "cache", "fresh"]
    assert names(cf.prunable(box, {"until": ["25s"]}, now=NOW)) == ["cache", "fresh"]
    assert names(cf.prunable(box, {"until": [str(NOW - 35)]}, now=NOW)) == ["fresh"]
    assert names(cf.prunable(box, {"label": ["env=prod"]}, now=NOW)) == ["fresh"]
    assert names(cf.prunable(box, {"label!": ["tier"]}, now=NOW)) == ["cache", "fresh"]


def test_prune_filter_errors(box) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'status'$"):
        cf.prunable(box, {"status": ["exited"]})
    with pytest.raises(InvalidArgument, match="more than one until filter specified"):
        cf.prunable(box, {"until": ["1h", "2h"]})
    with pytest.raises(InvalidArgument, match='failed to parse value as time or duration: "soon"'):
        cf.prunable(box, {"until": ["soon"]})


# timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("300ms", 0.3), ("2h45m10s", 9910)],
)
def test_go_durations_count_back_from_now(text: str, seconds: float) -> None:
    assert cf.timestamp(text, NOW) == pytest.approx(NOW - seconds)


def test_go_duration_rejects_what_go_rejects() -> None:
    assert cf.go_duration("10") is None
    assert cf.go_duration("1d") is None
    assert cf.go_duration("h") is None
    assert cf.go_duration("-1m") == -60


def test_unix_and_rfc3339_timestamps() -> None:
    assert cf.timestamp("1700000000", NOW) == 1700000000
    assert cf.timestamp("1700000000.25", NOW) == 1700000000.25
    utc = datetime(2024, 1, 2, 15, 4, 5, tzinfo=UTC).timestamp()
    assert cf.timestamp("2024-01-02T15:04:05Z", NOW) == utc
    assert cf.timestamp("2024-01-02T15:04:05.5Z", NOW) == utc + 0.5
    assert cf.timestamp("2024-01-02T17:04:05+02:00", NOW) == utc
    local = datetime(2024, 1, 2).astimezone().timestamp()
    assert cf.timestamp("2024-01-02", NOW) == local
    assert (
        cf.timestamp("2024-01-02T15:04", NOW)
        == datetime(2024, 1, 2, 15, 4).astimezone().timestamp()
    )
    with pytest.raises(InvalidArgument):
        cf.timestamp("2024-13-45", NOW)


def test_created_seconds_reads_the_record() -> None:
    c = make("x", NOW)
    assert cf.created_seconds(c) == pytest.approx(NOW, abs=1e-3)
    assert cf.timestamp("0s", time.time()) == pytest.approx(time.time(), abs=1)


def test_context_for_reads_images_and_networks() -> None:
    from types import SimpleNamespace

    from freight.errors import NotFound as Missing
    from freight.services.netmodel import Attachment, ContainerNet, PortMapping

    rows = [
        SimpleNamespace(id="base", parent=""),
        SimpleNamespace(id="child", parent="base"),
        SimpleNamespace(id="grandchild", parent="child"),
        SimpleNamespace(id="other", parent=""),
    ]

    def resolve(ref: str) -> str:
        if ref in ("busybox", "base"):
            return "base"
        if ref == "child":
            return "child"
        raise Missing(f"No such image: {ref}")

    images = SimpleNamespace(resolve=resolve, meta=SimpleNamespace(images=lambda: rows))
    nets = {
        "n1": SimpleNamespace(id="n1" + "0" * 62, name="bridge"),
        "host": SimpleNamespace(id="h" * 64, name="host"),
    }
    web, db = make("web", NOW), make("db", NOW, status="exited")
    web.config.exposed_ports = {"80/tcp": {}, "9000/udp": {}}
    by_id = {
        web.id: ContainerNet(
            "bridge", [Attachment("n1" + "0" * 62)], [PortMapping("tcp", "0.0.0.0", 8080, 80)]
        ),
        db.id: ContainerNet("host"),
    }

    def get(ref: str) -> SimpleNamespace:
        for n in nets.values():
            if ref in (n.id, n.name):
                return n
        raise Missing(ref)

    network = SimpleNamespace(container_net=by_id.get, get=get, list=lambda: list(nets.values()))
    ctx = cf.context_for(SimpleNamespace(images=images, network=network))
    assert ctx.ancestors("busybox") == {"base", "child", "grandchild"}
    assert ctx.ancestors("child") == {"child", "grandchild"}
    assert ctx.ancestors("nothing") is None
    assert ctx.networks(web) == {"bridge": "n1" + "0" * 62}
    assert ctx.networks(db) == {"host": "h" * 64}
    assert sorted(ctx.ports(web), key=lambda p: p.private) == [
        cf.PortEntry(80, 8080, "tcp"),
        cf.PortEntry(9000, 0, "udp"),
    ]
    assert ctx.ports(db) == []  # not running: no ports, as docker lists it
