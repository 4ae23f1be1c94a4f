"""freight-shell provisioning: the create request and create/start/reuse, on a fake engine."""

from __future__ import annotations

import pytest

from freight.shell.account import Account
from freight.shell.config import Settings
from freight.shell.provision import (
    CREATE,
    KEEPALIVE,
    REUSE,
    START,
    USER_LABEL,
    ImageMissing,
    NameTaken,
    ProvisionError,
    create_body,
    decide,
    ensure,
)

ALICE = Account("alice", 1001, 1002, "/home/alice")


def state(status: str = "running", owner: str | None = "alice", cid: str = "c1") -> dict:
    labels = {USER_LABEL: owner} if owner else {}
    return {
        "Id": cid,
        "Config": {"Labels": labels},
        "State": {"Status": status, "Running": status == "running", "Paused": status == "paused"},
    }


class FakeEngine:
    """Records calls; containers are a dict name -> inspect JSON."""

    def __init__(self, containers: dict | None = None, images: set | None = None) -> None:
        self.containers = dict(containers or {})
        self.images = {"busybox"} if images is None else images
        self.calls: list[tuple] = []
        self.race: dict | None = None  # appears between inspect and create

    def inspect(self, name):
        self.calls.append(("inspect", name))
        return self.containers.get(name)

    def create(self, name, body):
        self.calls.append(("create", name))
        if self.race is not None:
            self.containers[name], self.race = self.race, None
        if name in self.containers:
            raise NameTaken(name)
        if body["Image"] not in self.images:
            raise ImageMissing(body["Image"])
        self.containers[name] = {**state("created", cid="new"), "body": body}
        return "new"

    def start(self, cid):
        self.calls.append(("start", cid))

    def pull(self, image):
        self.calls.append(("pull", image))
        self.images.add(image)


def test_create_body_carries_user_hostname_label_limits_and_binds():
    settings = Settings(mounts=("/srv/{user}:/data:ro", "{home}/.cache:/cache"))
    body = create_body(settings, ALICE)
    assert body["Image"] == "busybox"
    assert body["Entrypoint"] == ["/bin/sh", "-c"] and body["Cmd"] == [KEEPALIVE]
    assert body["User"] == "1001:1002"
    assert body["Hostname"] == "alice"
    assert body["Labels"] == {USER_LABEL: "alice"}
    hc = body["HostConfig"]
    assert hc["Binds"] == [
        "/home/alice:/home/alice",
        "/srv/alice:/data:ro",
        "/home/alice/.cache:/cache",
    ]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (256 << 20, 500_000_000, 100)
    assert hc["SecurityOpt"] == ["no-new-privileges"]


def test_create_body_without_home_and_limits():
    settings = Settings(home=False, limits={"memory": 0, "nano_cpus": 0, "pids": 0})
    hc = create_body(settings, ALICE)["HostConfig"]
    assert hc["Binds"] == []
    assert not {"Memory", "NanoCpus", "PidsLimit"} & hc.keys()


@pytest.mark.parametrize(
    ("status", "expected"),
    [("running", REUSE), ("created", START), ("exited", START)],
)
def test_decide(status, expected):
    assert decide(state(status), ALICE, "shell-alice") == expected


def test_decide_missing_is_create():
    assert decide(None, ALICE, "shell-alice") == CREATE


@pytest.mark.parametrize(
    ("st", "words"),
    [
        (state(owner="bob"), "not alice's shell container"),
        (state(owner=None), "label org.freight.shell.user=<none>"),
        (state("paused"), "paused"),
        (state("removing"), "is removing"),
        (state("dead"), "is dead"),
    ],
)
def test_decide_refuses(st, words):
    with pytest.raises(ProvisionError, match=words):
        decide(st, ALICE, "shell-alice")


def test_ensure_creates_then_starts_a_missing_container():
    engine = FakeEngine()
    assert ensure(engine, Settings(), ALICE) == ("new", CREATE)
    assert engine.calls == [("inspect", "shell-alice"), ("create", "shell-alice"), ("start", "new")]
    assert engine.containers["shell-alice"]["body"]["User"] == "1001:1002"


def test_ensure_starts_a_stopped_container():
    engine = FakeEngine({"shell-alice": state("exited", cid="old")})
    assert ensure(engine, Settings(), ALICE) == ("old", START)
    assert engine.calls == [("inspect", "shell-alice"), ("start", "old")]


def test_ensure_reuses_a_running_container_without_touching_it():
    engine = FakeEngine({"shell-alice": state("running", cid="live")})
    assert ensure(engine, Settings(), ALICE) == ("live", REUSE)
    assert engine.calls == [("inspect", "shell-alice")]


def test_ensure_uses_the_name_prefix():
    engine = FakeEngine()
    ensure(engine, Settings(name_prefix="sh-"), ALICE)
    assert ("create", "sh-alice") in engine.calls


def test_ensure_pulls_a_missing_image_once():
    engine = FakeEngine(images=set())
    assert ensure(engine, Settings(image="alpine"), ALICE) == ("new", CREATE)
    assert [c[0] for c in engine.calls] == ["inspect", "create", "pull", "create", "start"]


def test_ensure_losing_a_create_race_uses_the_winners_container():
    engine = FakeEngine()
    engine.race = state("running", cid="winner")
    assert ensure(engine, Settings(), ALICE) == ("winner", CREATE)
    assert engine.calls[-2:] == [("inspect", "shell-alice"), ("start", "winner")]


def test_ensure_refuses_a_race_won_by_someone_elses_container():
    engine = FakeEngine()
    engine.race = state("running", owner="mallory")
    with pytest.raises(ProvisionError, match="not alice's"):
        ensure(engine, Settings(), ALICE)
