"""stats, top, pause/unpause and rename against a real freightd, checked against the kernel.

stats numbers are compared with what the container's cgroup files say at the
same moment; top with the container's cgroup.procs; pause with the freezer.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from freight.client.http import ApiError, EngineClient

CGROUP = Path("/sys/fs/cgroup")
UNIFIED = (CGROUP / "cgroup.controllers").exists()


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


def fails(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout.decode()
    return result.stderr.decode()


@pytest.fixture
def names(freightd):
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(f"{prefix}-{secrets.token_hex(3)}")
        return made[-1]

    yield make
    for name in made:
        freightd.cli("rm", "-f", name)
    for name in made:
        freightd.cli("network", "rm", name)


def api(d) -> EngineClient:
    return EngineClient(d.host, timeout=30)


def run(d, name: str, *args: str) -> str:
    return ok(d.cli("run", "-d", "--name", name, *args)).strip()


def cgroup_file(d, cid: str, controller: str, name: str) -> str:
    rel = f"{d.cgroup_parent}/{cid}/{name}"
    return (CGROUP / rel if UNIFIED else CGROUP / controller / rel).read_text()


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --- stats ---------------------------------------------------------------------------


def test_stats_match_the_cgroup(freightd, names) -> None:
    d = freightd
    name = names("st")
    # 24 MiB in /dev/shm (charged to the container's memory), then a busy loop.
    cid = run(
        d, name, "--memory", "256m", "busybox", "sh", "-c",
        "dd if=/dev/zero of=/dev/shm/f bs=1M count=24 2>/dev/null; echo ready; while :; do :; done",
    )  # fmt: skip
    wait_for(lambda: "ready" in d.cli("logs", name).stdout.decode())
    doc = api(d).get_json(f"/containers/{name}/stats", {"stream": "0", "one-shot": "1"})
    mem = doc["memory_stats"]
    if UNIFIED:
        usage = int(cgroup_file(d, cid, "memory", "memory.current"))
        cpu_ns = int(cgroup_file(d, cid, "cpu", "cpu.stat").split()[1]) * 1000
    else:
        usage = int(cgroup_file(d, cid, "memory", "memory.usage_in_bytes"))
        cpu_ns = int(cgroup_file(d, cid, "cpuacct", "cpuacct.usage"))
        assert len(doc["cpu_stats"]["cpu_usage"]["percpu_usage"]) >= 1
        assert mem["max_usage"] >= mem["usage"]
    assert mem["limit"] == 256 * 1024 * 1024
    assert mem["usage"] >= 24 * 1024 * 1024 and abs(mem["usage"] - usage) < 4 * 1024 * 1024
    assert 0 < doc["cpu_stats"]["cpu_usage"]["total_usage"] <= cpu_ns
    assert doc["pids_stats"]["current"] == len(cgroup_file(d, cid, "pids", "cgroup.procs").split())
    assert doc["cpu_stats"]["online_cpus"] >= 1 and doc["cpu_stats"]["system_cpu_usage"] > 0
    assert doc["networks"]["eth0"]["rx_bytes"] >= 0
    assert doc["name"] == f"/{name}" and doc["id"] == cid
    assert set(doc["blkio_stats"]) >= {"io_service_bytes_recursive", "io_serviced_recursive"}

    # Not one-shot: two readings a second apart, so CPU % is known. The loop's share of
    # a CPU depends on the machine's load; the delta must fit in what the cgroup counted
    # over the (longer) time the request took.
    def cgroup_cpu() -> int:
        if UNIFIED:
            return int(cgroup_file(d, cid, "cpu", "cpu.stat").split()[1]) * 1000
        return int(cgroup_file(d, cid, "cpuacct", "cpuacct.usage"))

    started, counted_before = time.monotonic(), cgroup_cpu()
    two = api(d).get_json(f"/containers/{name}/stats", {"stream": "0"})
    counted = cgroup_cpu() - counted_before
    assert time.monotonic() - started >= 0.9
    cpu, pre = two["cpu_stats"], two["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    assert 0 < cpu_delta <= counted
    percent = cpu_delta / system_delta * cpu["online_cpus"] * 100
    assert 1 < percent < 130, percent


def test_stats_stream_one_per_second_with_precpu(freightd, names) -> None:
    d = freightd
    name = names("ss")
    run(d, name, "busybox", "sleep", "1000")
    response = api(d).request("GET", f"/containers/{name}/stats")
    docs = []
    try:
        for doc in response.iter_json():
            docs.append(doc)
            if len(docs) == 3:
                break
    finally:
        response.close()
    assert docs[0]["preread"] == "0001-01-01T00:00:00Z"
    for before, after in zip(docs, docs[1:], strict=False):
        assert after["preread"] == before["read"]
        assert after["precpu_stats"]["cpu_usage"] == before["cpu_stats"]["cpu_usage"]
    reads = [doc["read"] for doc in docs]
    assert len(set(reads)) == 3


def test_stats_of_a_stopped_container_is_one_zero_sample(freightd, names) -> None:
    d = freightd
    name = names("sz")
    ok(d.cli("create", "--name", name, "busybox", "true"))
    for params in ({"stream": "0"}, {"stream": "1"}, {"stream": "0", "one-shot": "1"}):
        response = api(d).request("GET", f"/containers/{name}/stats", params=params)
        docs = list(response.iter_json())  # the stream ends by itself
        assert len(docs) == 1, params
        assert docs[0]["read"] == "0001-01-01T00:00:00Z"
        assert docs[0]["memory_stats"] == {} and docs[0]["name"] == f"/{name}"
    with pytest.raises(ApiError) as err:
        api(d).get_json(f"/containers/{name}/stats", {"stream": "1", "one-shot": "1"})
    assert err.value.status == 400
    with pytest.raises(ApiError) as err:
        api(d).get_json("/containers/no-such-thing/stats", {"stream": "0"})
    assert err.value.status == 404


def test_stats_stream_ends_when_the_container_stops(freightd, names) -> None:
    d = freightd
    name = names("se")
    run(d, name, "busybox", "sleep", "1000")
    response = api(d).request("GET", f"/containers/{name}/stats")
    docs = response.iter_json()
    assert next(docs)["read"] != "0001-01-01T00:00:00Z"
    ok(d.cli("kill", name))
    rest = list(docs)
    assert rest and rest[-1]["read"] == "0001-01-01T00:00:00Z"


TABLE_ROW = re.compile(
    r"^(?P<id>[0-9a-f]{12}) +(?P<name>\S+) +(?P<cpu>\d+\.\d\d%) +(?P<mem>[\d.]+[KMG]?i?B) / "
    r"(?P<limit>[\d.]+[KMG]?i?B) +(?P<memp>\d+\.\d\d%) +(?P<net>\S+ / \S+) +(?P<blk>\S+ / \S+) "
    r"+(?P<pids>\d+)$"
)


def test_cli_stats_table_format_and_all(freightd, names) -> None:
    d = freightd
    up, down = names("su"), names("sd")
    cid = run(d, up, "--memory", "64m", "busybox", "sleep", "1000")
    ok(d.cli("create", "--name", down, "busybox", "true"))
    out = ok(d.cli("stats", "--no-stream", up, down))
    header, *rows = out.splitlines()
    assert re.fullmatch(
        r"CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS", header
    )
    found = {m["name"]: m for m in map(TABLE_ROW.match, rows) if m}
    assert found[up]["id"] == cid[:12] and found[up]["limit"] == "64MiB"
    assert found[up]["pids"] == "1"
    assert found[down]["mem"] == "0B" and found[down]["net"] == "0B / 0B"
    listed = ok(d.cli("stats", "--no-stream", "--format", "{{.Name}}|{{.PIDs}}"))
    assert f"{up}|1" in listed.splitlines() and down not in listed
    everything = ok(d.cli("stats", "--no-stream", "-a", "--format", "{{.Name}}"))
    assert {up, down} <= set(everything.split())
    full = ok(d.cli("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", up))
    assert full.strip() == cid
    as_json = json.loads(ok(d.cli("stats", "--no-stream", "--format", "json", up)))
    assert as_json["Name"] == up and as_json["ID"] == cid[:12] and "MemUsage" in as_json
    assert "No such container: nope" in fails(d.cli("stats", "--no-stream", "nope"))


def test_cli_stats_stream_follows_containers(freightd, names) -> None:
    """Streaming without names: a container started meanwhile shows up in the table,
    one that stops goes away (without --all)."""
    d = freightd
    first, later = names("sf"), names("sl")
    run(d, first, "busybox", "sleep", "1000")
    proc = subprocess.Popen(
        [*_cli(d), "stats", "--format", "table {{.Name}}"],
        env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        run(d, later, "busybox", "sleep", "1000")
        time.sleep(2.5)
        ok(d.cli("kill", first))
        time.sleep(2.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    frames = [frame.split() for frame in out.decode().split("NAME")[1:]]
    assert [first] in frames  # before the start
    assert sorted([first, later]) in [sorted(f) for f in frames]  # the new one appeared
    assert frames[-1] == [later]  # the stopped one went away


def _cli(d) -> list[str]:
    import sys

    return [sys.executable, "-m", "freight.cli.main"]


# --- top -----------------------------------------------------------------------------


def test_top_lists_the_cgroup_processes(freightd, names) -> None:
    d = freightd
    name = names("tp")
    cid = run(d, name, "busybox", "sh", "-c", "sleep 1001 & sleep 1002 & wait")
    procs = lambda: set(cgroup_file(d, cid, "pids", "cgroup.procs").split())  # noqa: E731
    wait_for(lambda: len(procs()) == 3)
    doc = api(d).get_json(f"/containers/{name}/top")
    assert doc["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert {p[1] for p in doc["Processes"]} == procs()
    assert sorted(p[7] for p in doc["Processes"])[1:] == ["sleep 1001", "sleep 1002"]
    table = ok(d.cli("top", name))
    assert re.match(r"UID +PID +PPID +C +STIME +TTY +TIME +CMD\n", table)
    assert "sleep 1001" in table and len(table.splitlines()) == 4
    custom = ok(d.cli("top", name, "-o", "pid,comm"))
    assert custom.splitlines()[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in custom.splitlines()[1:]) == ["sh", "sleep", "sleep"]
    assert 'specifying "uid=PID" is not allowed' in fails(d.cli("top", name, "-o", "uid=PID"))
    ok(d.cli("stop", "-t", "0", name))
    err = fails(d.cli("top", name))
    assert f"Container {cid} is not running" in err
    with pytest.raises(ApiError) as e:
        api(d).get_json(f"/containers/{name}/top")
    assert e.value.status == 409


# --- pause ---------------------------------------------------------------------------


def freezer_state(d, cid: str) -> str:
    if UNIFIED:
        events = cgroup_file(d, cid, "", "cgroup.events")
        return "FROZEN" if "frozen 1" in events else "THAWED"
    return cgroup_file(d, cid, "freezer", "freezer.state").strip()


def _events(d, since: float, actions: list[str]) -> list[dict] | None:
    """Events since `since` (None when this daemon has no GET /events yet)."""
    params = {
        "since": f"{since:.9f}",
        "until": f"{time.time():.9f}",
        "filters": json.dumps({"event": actions}),
    }
    try:
        return list(api(d).request("GET", "/events", params=params).iter_json())
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def test_pause_freezes_and_everything_reports_it(freightd, names) -> None:
    d = freightd
    name = names("pz")
    since = time.time()
    cid = run(d, name, "busybox", "sh", "-c", "while :; do date +%s%N > /tmp/t; done")
    assert ok(d.cli("pause", name)) == f"{name}\n"
    assert freezer_state(d, cid) == "FROZEN"
    state = json.loads(ok(d.cli("inspect", name)))[0]["State"]
    assert state["Status"] == "paused" and state["Paused"] is True and state["Running"] is True
    assert re.search(r"Up \S+( \S+)* \(Paused\)", ok(d.cli("ps", "--filter", f"name={name}")))
    # Frozen means frozen: no CPU time goes by.
    before = api(d).get_json(f"/containers/{name}/stats", {"stream": "0", "one-shot": "1"})
    time.sleep(0.3)
    after = api(d).get_json(f"/containers/{name}/stats", {"stream": "0", "one-shot": "1"})
    total = lambda doc: doc["cpu_stats"]["cpu_usage"]["total_usage"]  # noqa: E731
    assert total(after) == total(before)
    assert f"Container {cid} is already paused" in fails(d.cli("pause", name))
    err = fails(d.cli("exec", name, "true"))
    assert f"Container {cid} is paused, unpause the container before exec" in err
    assert "cannot start a paused container, try unpause instead" in fails(d.cli("start", name))
    assert api(d).get_json(f"/containers/{name}/top")["Processes"]  # top works when paused
    assert ok(d.cli("unpause", name)) == f"{name}\n"
    assert freezer_state(d, cid) == "THAWED"
    assert f"Container {cid} is not paused" in fails(d.cli("unpause", name))
    events = _events(d, since, ["pause", "unpause"])
    if events is not None:
        mine = [e["Action"] for e in events if e["Actor"]["ID"] == cid]
        assert mine == ["pause", "unpause"]
    ok(d.cli("stop", "-t", "0", name))
    assert f"Container {cid} is not running" in fails(d.cli("pause", name))


def test_stop_and_kill_of_a_paused_container(freightd, names) -> None:
    d = freightd
    graceful, killed = names("ps"), names("pk")
    trap = "trap 'echo bye; exit 3' TERM; while :; do sleep 0.05; done"
    run(d, graceful, "busybox", "sh", "-c", trap)
    run(d, killed, "busybox", "sleep", "1000")
    ok(d.cli("pause", graceful, killed))
    started = time.monotonic()
    ok(d.cli("stop", "-t", "10", graceful))  # TERM is delivered on the thaw that follows it
    assert time.monotonic() - started < 8
    assert ok(d.cli("inspect", "-f", "{{.State.ExitCode}}", graceful)).strip() == "3"
    assert "bye" in ok(d.cli("logs", graceful))
    ok(d.cli("kill", killed))
    ok(d.cli("wait", killed))
    state = json.loads(ok(d.cli("inspect", killed)))[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137 and not state["Paused"]


def test_commit_leaves_a_paused_container_paused(freightd, names) -> None:
    d = freightd
    paused, running = names("cp"), names("cr")
    cid_p = run(d, paused, "busybox", "sh", "-c", "echo a > /a; sleep 1000")
    cid_r = run(d, running, "busybox", "sh", "-c", "echo b > /b; sleep 1000")
    ok(d.cli("pause", paused))
    image_p, image_r = names("img"), names("img")
    try:
        ok(d.cli("commit", paused, image_p))
        ok(d.cli("commit", running, image_r))
        assert freezer_state(d, cid_p) == "FROZEN"
        assert ok(d.cli("inspect", "-f", "{{.State.Status}}", paused)).strip() == "paused"
        assert freezer_state(d, cid_r) == "THAWED"  # commit's own freeze is undone
        assert ok(d.cli("run", "--rm", image_p, "cat", "/a")) == "a\n"
    finally:
        d.cli("rmi", "-f", image_p, image_r)


def test_paused_state_survives_a_daemon_restart(own_daemon, daemon_tools) -> None:
    """kill -9 of freightd: the paused container is still paused after; a running one a
    killed commit left frozen is thawed (its freeze was commit's, not the user's)."""
    d = own_daemon
    paused = run(d, "keep-paused", "busybox", "sleep", "1000")
    frozen = run(d, "left-frozen", "busybox", "sleep", "1000")
    ok(d.cli("pause", "keep-paused"))
    if UNIFIED:
        (CGROUP / d.cgroup_parent / frozen / "cgroup.freeze").write_text("1")
    else:
        (CGROUP / "freezer" / d.cgroup_parent / frozen / "freezer.state").write_text("FROZEN")
    wait_for(lambda: freezer_state(d, frozen) == "FROZEN")
    daemon_tools.stop(d, signal.SIGKILL)
    again = daemon_tools.start(d.root, d.cgroup_parent)
    try:
        assert freezer_state(again, paused) == "FROZEN"
        status = ok(again.cli("ps", "--format", "{{.Names}} {{.Status}}"))
        assert re.search(r"keep-paused Up .*\(Paused\)", status)
        assert freezer_state(again, frozen) == "THAWED"
        ok(again.cli("unpause", "keep-paused"))
        assert freezer_state(again, paused) == "THAWED"
    finally:
        again.cli("rm", "-f", "keep-paused", "left-frozen")
        daemon_tools.stop(again)


# --- rename --------------------------------------------------------------------------


def test_rename_messages_hostname_dns_and_event(freightd, names) -> None:
    d = freightd
    net, old, new, other = names("rn"), names("old"), names("new"), names("oth")
    ok(d.cli("network", "create", net))
    since = time.time()
    cid = run(d, old, "--network", net, "busybox", "sleep", "1000")
    run(d, other, "busybox", "sleep", "1000")
    hostname = ok(d.cli("exec", old, "hostname")).strip()
    assert ok(d.cli("rename", old, new)) == ""
    assert ok(d.cli("inspect", "-f", "{{.Name}}", cid)).strip() == f"/{new}"
    assert ok(d.cli("exec", new, "hostname")).strip() == hostname == cid[:12]
    assert f"No such object: {old}" in fails(d.cli("inspect", old))
    # The network's DNS knows it by its new name only.
    lookup = ok(
        d.cli("run", "--rm", "--network", net, "busybox", "sh", "-c",
              f"nslookup {new} >/dev/null 2>&1 && echo new-ok; "
              f"nslookup {old} >/dev/null 2>&1 && echo old-still; true")
    )  # fmt: skip
    assert "new-ok" in lookup and "old-still" not in lookup
    # docker's words, and exit status 1.
    in_use = d.cli("rename", new, other)
    assert in_use.returncode == 1
    assert (
        f'Conflict. The container name "/{other}" is already in use by container '
        in in_use.stderr.decode()
    )
    assert f"Error: failed to rename container named {new}" in in_use.stderr.decode()
    same = fails(d.cli("rename", new, new))
    assert "Renaming a container with the same name as its current name" in same
    bad = fails(d.cli("rename", new, "a b"))
    assert "Invalid container name (/a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" in bad
    with pytest.raises(ApiError) as e:
        api(d).request("POST", f"/containers/{new}/rename", params={"name": other}).read()
    assert e.value.status == 409
    with pytest.raises(ApiError) as e:
        api(d).request("POST", f"/containers/{new}/rename", params={"name": ""}).read()
    assert e.value.status == 400 and "Neither old nor new names may be empty" in e.value.message
    events = _events(d, since, ["rename"])
    if events is not None:
        [event] = [e for e in events if e["Actor"]["ID"] == cid]
        assert event["Actor"]["Attributes"]["oldName"] == f"/{old}"
        assert event["Actor"]["Attributes"]["name"] == new


def test_cli_stats_redraws_in_place_on_a_terminal(freightd, names) -> None:
    import os
    import pty
    import select

    d = freightd
    name = names("tt")
    run(d, name, "busybox", "sleep", "1000")
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*_cli(d), "stats", name], env=d.env, stdout=terminal, stderr=terminal,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(terminal)
    screen = b""
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if select.select([controller], [], [], 0.2)[0]:
                screen += os.read(controller, 65536)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        os.close(controller)
    text = screen.decode()
    assert text.startswith("\x1b[H")  # drawn from the top, as docker 28
    frames = text.split("\x1b[H")[1:]
    assert len(frames) >= 3  # a redraw every half second
    last = frames[-2]
    assert last.endswith("\x1b[J")  # what an earlier, longer frame left is wiped
    header, row = last.removesuffix("\x1b[J").split("\r\n")[:2]
    assert header.startswith("CONTAINER ID") and header.endswith("\x1b[K")
    assert f" {name} " in row and row.endswith("\x1b[K")
