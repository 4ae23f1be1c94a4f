"""`freight events` against a real freightd: container, exec, image, volume and network
events in order with docker's attributes, replay with --since/--until, filters, the
default line, a live stream that shows an event as it happens, and Ctrl-C."""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
import time

import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _past_events(freightd, since: float, *flags: str) -> list[dict]:
    """The buffered events between `since` and now, as JSON (an `until` in the past ends it)."""
    until = f"{time.time():.9f}"
    out = _ok(
        freightd.cli(
            "events",
            "--since",
            f"{since:.9f}",
            "--until",
            until,
            *flags,
            "--format",
            "{{json .}}",
            timeout=20,
        )  # fmt: skip
    )
    return [json.loads(line) for line in out.splitlines()]


def _actions(events: list[dict]) -> list[str]:
    return [e["Action"] for e in events]


def _in_order(seen: list[str], wanted: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == w for s in it) for w in wanted)


def test_run_and_rm_give_create_attach_start_die_destroy(freightd) -> None:
    name = _name("ev-life")
    t0 = time.time()
    run = freightd.cli("run", "--name", name, "--label", "evtest=life", "busybox", "sh", "-c", "exit 3")  # fmt: skip
    assert run.returncode == 3, run.stderr.decode()
    _ok(freightd.cli("rm", name))
    got = _past_events(freightd, t0, "--filter", f"container={name}")
    assert _actions(got) == ["create", "attach", "start", "die", "destroy"], got
    cid = got[0]["Actor"]["ID"]
    for e in got:
        assert e["Type"] == "container" and e["id"] == cid and e["status"] == e["Action"]
        assert e["from"] == "busybox" and e["scope"] == "local"
        attrs = e["Actor"]["Attributes"]
        assert attrs["name"] == name and attrs["image"] == "busybox" and attrs["evtest"] == "life"
    die = got[3]["Actor"]["Attributes"]
    assert die["exitCode"] == "3" and die["execDuration"].isdigit()
    times = [e["timeNano"] for e in got]
    assert times == sorted(times) and got[0]["time"] == times[0] // 10**9


def test_filters_by_event_label_and_id_prefix(freightd) -> None:
    a, b = _name("ev-fa"), _name("ev-fb")
    t0 = time.time()
    _ok(freightd.cli("create", "--name", a, "--label", "evtier=front", "busybox", "true"))
    _ok(freightd.cli("create", "--name", b, "--label", "evtier=back", "busybox", "true"))
    cid_b = _ok(freightd.cli("inspect", "--format", "{{.Id}}", b)).strip()
    _ok(freightd.cli("rm", a, b))
    by_label = _past_events(freightd, t0, "--filter", "label=evtier=back")
    assert _actions(by_label) == ["create", "destroy"]
    assert {e["Actor"]["Attributes"]["name"] for e in by_label} == {b}
    by_event = _past_events(freightd, t0, "-f", "event=destroy", "-f", "label=evtier")
    assert [e["Actor"]["Attributes"]["name"] for e in by_event] == [a, b]
    by_prefix = _past_events(freightd, t0, "--filter", f"container={cid_b[:10]}")
    assert _actions(by_prefix) == ["create", "destroy"]


def test_since_and_until_cut_the_replay(freightd) -> None:
    first, second = _name("ev-s1"), _name("ev-s2")
    t0 = time.time()
    _ok(freightd.cli("volume", "create", first))
    time.sleep(0.05)
    middle = time.time()
    _ok(freightd.cli("volume", "create", second))
    t_end = time.time()
    _ok(freightd.cli("volume", "rm", first, second))
    names = lambda evs: [(e["Action"], e["Actor"]["ID"]) for e in evs]  # noqa: E731
    only_second = _past_events(freightd, middle, "--filter", "type=volume")
    assert ("create", first) not in names(only_second)
    assert ("create", second) in names(only_second)
    out = _ok(
        freightd.cli(
            "events",
            "--since",
            f"{t0:.9f}",
            "--until",
            f"{middle:.9f}",
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        )  # fmt: skip
    )
    assert out.splitlines() == [f"create {first}"]
    assert t_end > middle


def test_stop_and_exec_events(freightd) -> None:
    name = _name("ev-exec")
    t0 = time.time()
    _ok(freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "30"))
    try:
        assert freightd.cli("exec", name, "sh", "-c", "exit 4").returncode == 4
        _ok(freightd.cli("exec", name, "true"))
        _ok(freightd.cli("stop", "-t", "1", name))
    finally:
        freightd.cli("rm", "-f", name)
    got = _past_events(freightd, t0, "--filter", f"container={name}")
    actions = _actions(got)
    assert _in_order(
        actions,
        ["create", "start", "exec_create: sh -c exit 4", "exec_start: sh -c exit 4", "exec_die",
         "kill", "die", "stop", "destroy"],
    ), actions  # fmt: skip
    by_action = {e["Action"]: e["Actor"]["Attributes"] for e in got}
    exec_id = by_action["exec_create: sh -c exit 4"]["execID"]
    assert by_action["exec_start: sh -c exit 4"]["execID"] == exec_id
    dies = [e["Actor"]["Attributes"] for e in got if e["Action"] == "exec_die"]
    assert [(d["execID"] == exec_id, d["exitCode"]) for d in dies] == [(True, "4"), (False, "0")]
    assert by_action["kill"]["signal"] in ("15", "9")  # sleep as pid 1 ignores SIGTERM
    assert by_action["die"]["exitCode"] in ("143", "137")
    filtered = _past_events(freightd, t0, "--filter", f"container={name}", "-f", "event=exec_start")
    # As dockerd: entrypoint, a space, the arguments (none here).
    assert _actions(filtered) == ["exec_start: sh -c exit 4", "exec_start: true "]


def test_image_tag_and_untag(freightd) -> None:
    repo = f"evtest/img{secrets.token_hex(3)}:v1"
    t0 = time.time()
    _ok(freightd.cli("tag", "busybox", repo))
    _ok(freightd.cli("rmi", repo))
    got = _past_events(freightd, t0, "--filter", "type=image")
    mine = [e for e in got if e["Action"] == "tag" and e["Actor"]["Attributes"]["name"] == repo]
    assert len(mine) == 1
    image_id = mine[0]["Actor"]["ID"]
    assert image_id.startswith("sha256:") and mine[0]["id"] == image_id
    assert "from" not in mine[0]
    untags = [e for e in got if e["Action"] == "untag" and e["Actor"]["ID"] == image_id]
    assert untags and untags[0]["timeNano"] > mine[0]["timeNano"]


def test_volume_and_network_events_around_a_run(freightd) -> None:
    vol, net, ctr = _name("ev-vol"), _name("ev-net"), _name("ev-vn")
    t0 = time.time()
    _ok(freightd.cli("volume", "create", vol))
    _ok(freightd.cli("network", "create", net))
    try:
        _ok(freightd.cli("run", "--rm", "--name", ctr, "-v", f"{vol}:/data", "--network", net, "busybox", "true"))  # fmt: skip
    finally:
        freightd.cli("network", "rm", net)
        freightd.cli("volume", "rm", vol)
    got = _past_events(freightd, t0, "--filter", "type=volume", "--filter", "type=network")
    mine = [e for e in got if e["Actor"]["ID"] == vol or e["Actor"]["Attributes"].get("name") == net]  # fmt: skip
    seen = [(e["Type"], e["Action"]) for e in mine]
    assert seen[:4] == [
        ("volume", "create"), ("network", "create"), ("network", "connect"), ("volume", "mount"),
    ], seen  # fmt: skip
    # The exit releases both (their order is the teardown's), then the removals.
    assert sorted(seen[4:6]) == [("network", "disconnect"), ("volume", "unmount")], seen
    assert seen[6:] == [("network", "destroy"), ("volume", "destroy")], seen
    attrs = {(e["Type"], e["Action"]): e["Actor"]["Attributes"] for e in mine}
    cid = attrs[("network", "connect")]["container"]
    assert attrs[("network", "create")] == {"name": net, "type": "bridge"}
    assert attrs[("volume", "create")] == {"driver": "local"}
    assert attrs[("volume", "mount")] == {
        "driver": "local", "container": cid, "destination": "/data", "read/write": "true",
        "propagation": "",
    }  # fmt: skip
    assert attrs[("volume", "unmount")] == {"driver": "local", "container": cid}
    assert attrs[("network", "disconnect")] == {"name": net, "type": "bridge", "container": cid}


def test_default_line_is_dockers(freightd) -> None:
    name = _name("ev-line")
    t0 = time.time()
    _ok(freightd.cli("create", "--name", name, "--label", "zz=last", "busybox", "true"))
    _ok(freightd.cli("rm", name))
    result = subprocess.run(
        [sys.executable, "-m", "freight.cli.main", "events", "--since", f"{t0:.9f}",
         "--until", f"{time.time():.9f}", "--filter", f"container={name}"],
        env={**freightd.env, "TZ": "UTC"}, capture_output=True, timeout=20,
    )  # fmt: skip
    lines = _ok(result).splitlines()
    pattern = (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container (create|destroy) [0-9a-f]{64} "
        rf"\(image=busybox, name={name}, zz=last\)"
    )
    assert len(lines) == 2 and all(re.fullmatch(pattern, line) for line in lines), lines


def test_live_stream_shows_each_event_at_once_and_ctrl_c_ends_it(freightd) -> None:
    name = _name("ev-live")
    proc = subprocess.Popen(
        [sys.executable, "-m", "freight.cli.main", "events", "--filter", f"container={name}",
         "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
        env=freightd.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the CLI has started and subscribed
        _ok(freightd.cli("create", "--name", name, "busybox", "true"))
        line = _readline(proc, 10)
        assert line == f"create {name}\n"
        _ok(freightd.cli("rm", name))
        assert _readline(proc, 10) == f"destroy {name}\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    import select

    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail("no event line within the timeout")
    return proc.stdout.readline().decode()


def test_bad_filter_is_refused_in_dockers_words(freightd) -> None:
    result = freightd.cli("events", "--filter", "colour=red", "--until", "1")
    assert result.returncode != 0
    assert "invalid filter 'colour'" in result.stderr.decode()
    result = freightd.cli("events", "--filter", "type=box", "--until", "1")
    assert "invalid filter 'type=box'" in result.stderr.decode()


def test_system_events_is_the_same_command(freightd) -> None:
    name = _name("ev-sys")
    t0 = time.time()
    _ok(freightd.cli("volume", "create", name))
    _ok(freightd.cli("volume", "rm", name))
    out = _ok(
        freightd.cli(
            "system",
            "events",
            "--since",
            f"{t0:.9f}",
            "--until",
            f"{time.time():.9f}",
            "--filter",
            f"volume={name}",
            "--format",
            "{{.Type}} {{.Action}}",
        )  # fmt: skip
    )
    assert out.splitlines() == ["volume create", "volume destroy"]


def test_restart_and_kill_events(freightd) -> None:
    name = _name("ev-restart")
    t0 = time.time()
    _ok(freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "30"))
    try:
        _ok(freightd.cli("restart", "-t", "0", name))
        _ok(freightd.cli("kill", name))
        _ok(freightd.cli("wait", name))
    finally:
        freightd.cli("rm", "-f", name)
    got = _past_events(freightd, t0, "--filter", f"container={name}")
    actions = _actions(got)
    assert actions == [
        "create", "start", "kill", "kill", "die", "stop", "start", "restart", "kill", "die",
        "destroy",
    ], actions  # fmt: skip
    kills = [e["Actor"]["Attributes"]["signal"] for e in got if e["Action"] == "kill"]
    assert kills == ["15", "9", "9"]  # -t 0: SIGTERM, SIGKILL at once; then kill's SIGKILL


def test_since_replays_then_the_stream_goes_on_live(freightd) -> None:
    vol = _name("ev-replay")
    t0 = time.time()
    _ok(freightd.cli("volume", "create", vol))
    proc = subprocess.Popen(
        [sys.executable, "-m", "freight.cli.main", "events", "--since", f"{t0:.9f}",
         "--filter", f"volume={vol}", "--format", "{{.Action}}"],
        env=freightd.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _readline(proc, 10) == "create\n"  # from the buffer
        _ok(freightd.cli("volume", "rm", vol))
        assert _readline(proc, 10) == "destroy\n"  # live
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_image_save_load_import_events(freightd, tmp_path) -> None:
    archive = tmp_path / "bb.tar"
    repo = f"evtest/imp{secrets.token_hex(3)}:v1"
    busybox_id = _ok(freightd.cli("inspect", "--format", "{{.Id}}", "busybox")).strip()
    t0 = time.time()
    _ok(freightd.cli("save", "-o", str(archive), "busybox"))
    _ok(freightd.cli("load", "-i", str(archive)))
    rootfs = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-cf", str(rootfs), "-C", str(tmp_path), "bb.tar"], check=True)
    imported = _ok(freightd.cli("import", str(rootfs), repo)).strip()
    try:
        got = _past_events(freightd, t0, "--filter", "type=image")
    finally:
        freightd.cli("rmi", repo)
    seen = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in got]
    assert ("save", busybox_id, busybox_id) in seen
    assert ("tag", busybox_id, "busybox:latest") in seen
    assert ("load", busybox_id, busybox_id) in seen
    assert seen.index(("tag", busybox_id, "busybox:latest")) < seen.index(
        ("load", busybox_id, busybox_id)
    )
    assert ("import", imported, imported) in seen


def test_push_and_pull_events(freightd, tmp_path) -> None:
    from registry_fixtures import start_registry

    registry = start_registry(tmp_path / "registry")
    try:
        repo = f"{registry.host}/evtest/bb{secrets.token_hex(3)}"
        ref = f"{repo}:v1"
        _ok(freightd.cli("tag", "busybox", ref))
        t0 = time.time()
        _ok(freightd.cli("push", ref))
        _ok(freightd.cli("rmi", ref))
        _ok(freightd.cli("pull", ref))
        got = _past_events(freightd, t0, "--filter", "type=image", "--filter", "event=push",
                           "--filter", "event=pull")  # fmt: skip
        freightd.cli("rmi", ref)
    finally:
        registry.stop()
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in got] == [
        ("push", ref, repo),
        ("pull", ref, repo),
    ]


def test_commit_export_and_image_delete_events(freightd, tmp_path) -> None:
    name = _name("ev-commit")
    repo = f"evtest/commit{secrets.token_hex(3)}:v1"
    _ok(freightd.cli("create", "--name", name, "busybox", "true"))
    t0 = time.time()
    try:
        image_id = _ok(freightd.cli("commit", "-m", "a note", name, repo)).strip()
        _ok(freightd.cli("export", "-o", str(tmp_path / "fs.tar"), name))
    finally:
        freightd.cli("rm", "-f", name)
    _ok(freightd.cli("rmi", repo))
    got = _past_events(freightd, t0)
    mine = [
        (e["Type"], e["Action"], e["Actor"]["Attributes"])
        for e in got
        if e["Actor"]["ID"] == image_id or e["Actor"]["Attributes"].get("name") == name
    ]
    commit = next(a for t, act, a in mine if (t, act) == ("container", "commit"))
    assert commit["comment"] == "a note" and commit["imageID"] == image_id
    assert commit["imageRef"] == repo
    assert [(t, act) for t, act, _ in mine] == [
        ("container", "commit"), ("container", "export"), ("container", "destroy"),
        ("image", "untag"), ("image", "delete"),
    ]  # fmt: skip


def test_daemon_going_away_ends_the_stream_with_an_error(own_daemon, daemon_tools) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "freight.cli.main", "events"], env=own_daemon.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        daemon_tools.stop(own_daemon)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert err.decode() == "freight: unexpected EOF\n"
