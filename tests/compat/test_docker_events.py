"""The real docker CLI's `docker events` and docker-py's `client.events()` against freightd:
replay with --since/--until, filters in both wire shapes, the JSON and default outputs,
a live stream that sees events as they happen, and docker's error for a bad filter."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator

import docker
import pytest


@pytest.fixture(scope="module")
def client(freightd) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=freightd.host, timeout=30)
    yield c
    c.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _lifecycle(freightd, name: str) -> tuple[float, float]:
    t0 = time.time()
    run = freightd.docker("run", "--name", name, "--label", "evcompat=1", "busybox", "sh", "-c", "exit 2")  # fmt: skip
    assert run.returncode == 2, run.stderr.decode()
    _ok(freightd.docker("rm", name))
    return t0, time.time()


def test_docker_events_json_replay_with_filters(freightd) -> None:
    name = _name("dev-json")
    t0, t1 = _lifecycle(freightd, name)
    out = _ok(
        freightd.docker(
            "events",
            "--since",
            f"{t0:.3f}",
            "--until",
            f"{t1:.3f}",
            "--filter",
            f"container={name}",
            "--filter",
            "type=container",
            "--format",
            "{{json .}}",
            timeout=20,
        )  # fmt: skip
    )
    got = [json.loads(line) for line in out.splitlines()]
    assert [e["Action"] for e in got] == ["create", "attach", "start", "die", "destroy"]
    die = got[3]
    assert die["status"] == "die" and die["from"] == "busybox" and die["scope"] == "local"
    assert die["Actor"]["Attributes"]["exitCode"] == "2"
    assert die["Actor"]["Attributes"]["evcompat"] == "1"
    assert die["Actor"]["Attributes"]["name"] == name
    assert die["id"] == die["Actor"]["ID"] and len(die["id"]) == 64


def test_docker_events_default_line_and_event_filter(freightd) -> None:
    name = _name("dev-line")
    t0, t1 = _lifecycle(freightd, name)
    result = subprocess.run(
        ["docker", "-H", freightd.host, "events", "--since", str(int(t0)), "--until",
         f"{t1:.3f}", "--filter", f"container={name}", "--filter", "event=die"],
        env={**freightd.env, "TZ": "UTC"}, capture_output=True, timeout=20,
    )  # fmt: skip
    lines = _ok(result).splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container die [0-9a-f]{64} "
        rf"\(evcompat=1, execDuration=\d+, exitCode=2, image=busybox, name={name}\)",
        lines[0],
    ), lines


def test_docker_events_relative_since_and_template(freightd) -> None:
    vol = _name("dev-vol")
    _ok(freightd.docker("volume", "create", vol))
    _ok(freightd.docker("volume", "rm", vol))
    out = _ok(
        freightd.docker(
            "events",
            "--since",
            "1m",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            f"volume={vol}",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
            timeout=20,
        )  # fmt: skip
    )
    assert out.splitlines() == [f"volume create {vol} local", f"volume destroy {vol} local"]


def test_docker_events_bad_filter_is_dockers_error(freightd) -> None:
    result = freightd.docker("events", "--filter", "colour=red", "--until", "1")
    assert result.returncode != 0
    assert "invalid filter 'colour'" in result.stderr.decode()


def test_docker_py_events_replay_decoded(freightd, client: docker.DockerClient) -> None:
    name = _name("dpy-replay")
    t0, t1 = _lifecycle(freightd, name)
    stream = client.events(
        since=int(t0), until=t1 + 0.001, filters={"container": name}, decode=True
    )
    got = list(stream)
    assert [e["Action"] for e in got] == ["create", "attach", "start", "die", "destroy"]
    assert all(e["Type"] == "container" and e["Actor"]["Attributes"]["name"] == name for e in got)
    # docker-py sends filters as {"container": ["name"]}; the old map shape works the same.
    raw = client.api.get(
        client.api._url("/events"),
        params={
            "since": int(t0),
            "until": f"{t1:.3f}",
            "filters": json.dumps({"container": {name: True}, "event": {"die": True}}),
        },
    )
    assert [json.loads(line)["Action"] for line in raw.text.splitlines()] == ["die"]


def test_docker_py_live_stream_sees_events_as_they_happen(
    freightd, client: docker.DockerClient
) -> None:
    name = _name("dpy-live")
    # Headers come at once, so client.events() returns before any event exists.
    start = time.monotonic()
    stream = client.events(filters={"container": name, "event": ["create", "destroy"]}, decode=True)
    assert time.monotonic() - start < 5
    got: list[dict] = []

    def read() -> None:
        for ev in stream:
            got.append(ev)
            if len(got) == 2:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        c = client.containers.create("busybox", "true", name=name)
        c.remove()
        reader.join(15)
    finally:
        stream.close()
    assert [e["Action"] for e in got] == ["create", "destroy"]
    assert got[0]["Actor"]["ID"] == got[1]["Actor"]["ID"] == c.id


def test_docker_py_bad_filter_is_a_400_with_dockers_words(client: docker.DockerClient) -> None:
    # client.events() does not look at the status (it ends empty); the answer is dockerd's 400.
    response = client.api._get(
        client.api._url("/events"), params={"filters": json.dumps({"colour": ["red"]})}
    )
    assert response.status_code == 400
    with pytest.raises(docker.errors.APIError, match="invalid filter 'colour'"):
        client.api._result(response, json=True)


def test_docker_py_resize_of_a_tty_container_is_an_event(client: docker.DockerClient) -> None:
    name = _name("dpy-resize")
    t0 = time.time()
    c = client.containers.run("busybox", "sleep 30", name=name, tty=True, detach=True)
    try:
        client.api.resize(c.id, height=33, width=101)
    finally:
        c.remove(force=True)
    got = list(
        client.events(
            since=int(t0),
            until=time.time(),
            filters={"container": name, "event": "resize"},
            decode=True,
        )  # fmt: skip
    )
    assert [e["Actor"]["Attributes"]["height"] for e in got] == ["33"]
    assert got[0]["Actor"]["Attributes"]["width"] == "101"
