"""Log drivers end to end: json-file rotation under a flood, logs over the rotated files in
order (--tail, --since/--until, -f across rotations, --details), the local driver, and
syslog to a unix socket (read back through the cache)."""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

FLOOD = "i=0; while [ $i -lt {n} ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done"


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr.decode())
    return result.stdout.decode()


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _files_dir(d, cid: str) -> Path:
    return d.data_root / "containers" / cid


def test_flood_rotates_to_max_file_files_and_logs_reads_them_in_order(freightd) -> None:
    d, name = freightd, _name("flood")
    ok(d.cli("run", "--name", name, "--log-opt", "max-size=20k", "--log-opt", "max-file=3",
             "busybox", "sh", "-c", FLOOD.format(n=3000)))  # fmt: skip
    try:
        cid = ok(d.cli("inspect", "-f", "{{.Id}}", name)).strip()
        files = sorted(p.name for p in _files_dir(d, cid).glob(f"{cid}-json.log*"))
        assert files == [f"{cid}-json.log", f"{cid}-json.log.1", f"{cid}-json.log.2"]
        for f in files:
            assert (_files_dir(d, cid) / f).stat().st_size <= 20_000
        lines = ok(d.cli("logs", name)).splitlines()
        numbers = [int(line.split("-")[1]) for line in lines]
        assert numbers == list(range(numbers[0], 3000))  # contiguous, oldest first, to the end
        assert numbers[0] > 0  # the oldest were rotated away
        assert ok(d.docker("logs", "--tail", "3", name)).splitlines() == lines[-3:]
        # --since/--until over the rotated files: pick a time inside the middle file
        with_ts = ok(d.cli("logs", "-t", name)).splitlines()
        middle = with_ts[len(with_ts) // 2].split(" ", 1)[0]
        since = ok(d.docker("logs", "--since", middle, name)).splitlines()
        until = ok(d.docker("logs", "--until", middle, name)).splitlines()
        assert since and until, (middle, len(since), len(until), with_ts[:2], with_ts[-1:])
        assert since[-1] == lines[-1] and until[0] == lines[0]
        assert len(since) + len(until) >= len(lines)  # entries at the same instant in both
    finally:
        d.cli("rm", "-f", name)


def test_compressed_rotation_is_read_back(freightd) -> None:
    d, name = freightd, _name("gz")
    ok(d.docker("run", "--name", name, "--log-opt", "max-size=10k", "--log-opt", "max-file=4",
                "--log-opt", "compress=true", "busybox", "sh", "-c", FLOOD.format(n=2000)))  # fmt: skip
    try:
        cid = ok(d.cli("inspect", "-f", "{{.Id}}", name)).strip()
        base = _files_dir(d, cid) / f"{cid}-json.log"
        deadline = time.monotonic() + 5
        while Path(f"{base}.1").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the last compression may still run
        assert sorted(p.name for p in base.parent.glob(f"{cid}-json.log*")) == [
            f"{cid}-json.log", f"{cid}-json.log.1.gz", f"{cid}-json.log.2.gz",
            f"{cid}-json.log.3.gz",
        ]  # fmt: skip
        oldest = gzip.decompress(Path(f"{base}.3.gz").read_bytes()).splitlines()
        first = json.loads(oldest[0])["log"]
        lines = ok(d.docker("logs", name)).splitlines()
        assert lines[0] == first.rstrip("\n") and lines[-1].startswith("line-1999-")
        numbers = [int(line.split("-")[1]) for line in lines]
        assert numbers == list(range(numbers[0], 2000))
    finally:
        d.cli("rm", "-f", name)


def test_follow_continues_across_rotations(freightd) -> None:
    d, name = freightd, _name("follow")
    script = "sleep 1; " + FLOOD.format(n=1500).replace("; i=$((i+1))", "; i=$((i+1)); usleep 500")
    ok(d.cli("run", "-d", "--name", name, "--log-opt", "max-size=8k", "--log-opt", "max-file=2",
             "busybox", "sh", "-c", script))  # fmt: skip
    try:
        followed = subprocess.run(
            ["docker", "-H", d.host, "logs", "-f", name], capture_output=True, timeout=60
        )
        lines = followed.stdout.decode().splitlines()
        assert [int(line.split("-")[1]) for line in lines] == list(range(1500))
        assert len(ok(d.cli("logs", name)).splitlines()) < 1500  # rotated meanwhile
    finally:
        d.cli("rm", "-f", name)


def test_details_shows_labels_env_and_tag(freightd) -> None:
    d, name = freightd, _name("details")
    ok(d.cli("run", "--name", name, "--label", "app=web", "-e", "STAGE=prod",
             "--log-opt", "labels=app", "--log-opt", "env=STAGE", "--log-opt", "tag={{.Name}}",
             "busybox", "echo", "hi"))  # fmt: skip
    try:
        assert ok(d.docker("logs", "--details", name)) == f"STAGE=prod,app=web,tag={name} hi\n"
        assert ok(d.cli("logs", name)) == "hi\n"
        stamped = ok(d.cli("logs", "--details", "-t", name))
        assert re.fullmatch(r"\S+Z STAGE=prod,app=web,tag=\S+ hi\n", stamped), stamped
    finally:
        d.cli("rm", "-f", name)


def test_local_driver_rotates_by_default_and_is_readable(freightd) -> None:
    d, name = freightd, _name("local")
    ok(d.cli("run", "--name", name, "--log-driver", "local", "--log-opt", "max-size=10k",
             "busybox", "sh", "-c", FLOOD.format(n=1000) + "; echo err >&2"))  # fmt: skip
    try:
        cid = ok(d.cli("inspect", "-f", "{{.Id}}", name)).strip()
        local = _files_dir(d, cid) / "local-logs"
        deadline = time.monotonic() + 5
        while (local / "container.log.1").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        names = sorted(p.name for p in local.iterdir())
        assert names[0] == "container.log" and len(names) == 5  # max-file 5, compressed
        assert all(n.endswith(".gz") for n in names[1:])
        out = d.cli("logs", name)
        assert out.stdout.decode().splitlines()[-1] == "line-999-padding-padding-padding"
        assert out.stderr == b"err\n"
        inspect = json.loads(ok(d.cli("inspect", name)))[0]
        assert inspect["HostConfig"]["LogConfig"]["Type"] == "local"
    finally:
        d.cli("rm", "-f", name)


def test_syslog_to_a_unix_socket_and_logs_from_the_cache(freightd, tmp_path: Path) -> None:
    d, name = freightd, _name("syslog")
    path = tmp_path / "syslog.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(10)
    try:
        ok(d.cli("run", "--name", name, "--log-driver", "syslog",
                 "--log-opt", f"syslog-address=unix://{path}", "--log-opt", "tag=web",
                 "busybox", "sh", "-c", "echo to-syslog; echo bad >&2"))  # fmt: skip
        got = sorted([server.recv(2000), server.recv(2000)])
        assert re.fullmatch(rb"<27>\w{3} [ \d]\d \d\d:\d\d:\d\d web\[\d+\]: bad", got[0]), got
        assert re.fullmatch(rb"<30>.* web\[\d+\]: to-syslog", got[1]), got
        assert ok(d.cli("logs", name)) == "to-syslog\n"  # dual logging: the local cache
    finally:
        server.close()
        d.cli("rm", "-f", name)


def test_syslog_unreachable_fails_the_start(freightd, tmp_path: Path) -> None:
    d, name = freightd, _name("nosyslog")
    result = d.cli("run", "--name", name, "--log-driver", "syslog",
                   "--log-opt", f"syslog-address=unix://{tmp_path}/absent", "busybox", "true")  # fmt: skip
    try:
        assert result.returncode != 0
        assert b"failed to initialize logging driver" in result.stderr
    finally:
        d.cli("rm", "-f", name)


@pytest.mark.skipif(os.path.exists("/run/systemd/journal/socket"), reason="this host has a journal")
def test_journald_without_a_journal_is_refused_at_create(freightd) -> None:
    result = freightd.docker("create", "--log-driver", "journald", "busybox")
    assert result.returncode != 0
    assert b"journald is not enabled on this host" in result.stderr


def test_bad_log_opts_are_refused_at_create(freightd) -> None:
    for opts, message in (
        (["--log-opt", "max-file=0"], b"max-file cannot be less than 1"),
        (["--log-opt", "bogus=1"], b"unknown log opt 'bogus' for json-file log driver"),
        (["--log-driver", "local", "--log-opt", "labels=x"], b"unknown log opt 'labels'"),
    ):
        result = freightd.docker("create", *opts, "busybox")
        assert result.returncode != 0 and message in result.stderr, result.stderr
    # the docker CLI refuses this one itself; the daemon says why too
    result = freightd.cli("create", "--log-driver", "none", "--log-opt", "max-size=1m", "busybox")
    assert result.returncode != 0
    assert b"unknown log opt 'max-size' for none log driver" in result.stderr
