"""Log rotation (shim.logrotate), the other shim log writers, and reading them back
(services.logs over rotated, compressed and local-format files)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import time
from pathlib import Path

import pytest

from freight.services import logdrivers
from freight.services.logs import Decoder, LogQuery, follow, read_snapshot
from freight.shim.jsonlog import JsonLog, LineSplitter
from freight.shim.logrotate import RotatingFile, gzip_file
from freight.shim.logwriters import LocalLog, SyslogLog, Tee, encode_local_entry, open_log


def _wait_gone(path: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not path.exists()


def _reap() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _flood(log: JsonLog, count: int, width: int = 90) -> list[bytes]:
    lines = [f"{i:06d} ".encode() + b"x" * (width - 8) + b"\n" for i in range(count)]
    splitter = LineSplitter("stdout", log)
    for start in range(0, count, 37):  # several lines per read, as the relay sees them
        splitter.feed(b"".join(lines[start : start + 37]))
    return lines


def test_rotation_keeps_max_file_files_each_under_max_size(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    log = JsonLog(RotatingFile(str(path), max_size=10_000, max_file=3))
    lines = _flood(log, 1000)
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 10_000
        for line in p.read_bytes().splitlines():
            assert json.loads(line)["stream"] == "stdout"  # whole entries only
    snap = read_snapshot(logdrivers.LogFiles(path, "json"), LogQuery(), keep_open=False)
    got = [e.data for e in snap.entries]
    assert got == lines[-len(got) :]  # the newest ones, in order, none twice
    assert 120 < len(got) <= 3 * 10_000 // 150  # three files of ~150-byte entries


def test_compressed_rotation_and_reading_gz_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    log = JsonLog(RotatingFile(str(path), max_size=5_000, max_file=4, compress=True))
    try:
        lines = _flood(log, 400)
        _wait_gone(tmp_path / "c-json.log.1")  # the child compressed it
    finally:
        log.close()
        _reap()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["c-json.log", "c-json.log.1.gz", "c-json.log.2.gz", "c-json.log.3.gz"]
    first = gzip.decompress((tmp_path / "c-json.log.3.gz").read_bytes()).splitlines()[0]
    assert json.loads(first)["log"].encode() in lines
    snap = read_snapshot(logdrivers.LogFiles(path, "json"), LogQuery(tail=50), keep_open=False)
    assert [e.data for e in snap.entries] == lines[-50:]


def test_max_file_one_truncates(tmp_path: Path) -> None:
    path = tmp_path / "one.log"
    f = RotatingFile(str(path), max_size=100, max_file=1)
    for i in range(10):
        f.write_lines(f"line {i:02d} ".encode() + b"y" * 30 + b"\n")
    f.close()
    assert sorted(os.listdir(tmp_path)) == ["one.log"]
    assert path.stat().st_size <= 100
    assert path.read_bytes().endswith(b"line 09 " + b"y" * 30 + b"\n")


def test_an_entry_larger_than_max_size_goes_whole_into_a_file(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    f = RotatingFile(str(path), max_size=50, max_file=3)
    f.write_lines(b"a" * 20 + b"\n")
    f.write_lines(b"b" * 200 + b"\n")
    f.write_lines(b"c" * 20 + b"\n")
    f.close()
    assert (tmp_path / "big.log.2").read_bytes() == b"a" * 20 + b"\n"
    assert (tmp_path / "big.log.1").read_bytes() == b"b" * 200 + b"\n"
    assert path.read_bytes() == b"c" * 20 + b"\n"


def test_gzip_file_replaces_the_plain_file(tmp_path: Path) -> None:
    plain = tmp_path / "x.log.1"
    plain.write_bytes(b"hello\n" * 1000)
    gzip_file(str(plain))
    assert not plain.exists()
    assert gzip.decompress((tmp_path / "x.log.1.gz").read_bytes()) == b"hello\n" * 1000


def test_local_format_roundtrip_with_partials_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "container.log"
    log = LocalLog(RotatingFile(str(path), max_size=300, max_file=5))
    log.write_lines("stdout", [b"one\n", b"two\n"])
    log.write("stderr", b"partial")
    log.write_text_block("stdout", b"".join(f"l{i}\n".encode() for i in range(30)))
    log.close()
    assert len(list(tmp_path.iterdir())) > 1
    snap = read_snapshot(logdrivers.LogFiles(path, "local"), LogQuery(), keep_open=False)
    datas = [(e.stream, e.data) for e in snap.entries]
    assert datas[-1] == ("stdout", b"l29\n")
    stderr_only = read_snapshot(
        logdrivers.LogFiles(path, "local"), LogQuery(stdout=False), keep_open=False
    ).entries
    assert [(e.stream, e.data) for e in stderr_only] == [("stderr", b"partial")]


def test_local_entry_bytes_match_dockers_framing() -> None:
    frame = encode_local_entry("stdout", 1_700_000_000_123_456_789, b"hi\n")
    body = frame[4:-4]
    assert frame[:4] == frame[-4:] == len(body).to_bytes(4, "big")
    assert body.startswith(b"\x0a\x06stdout\x10")
    assert body.endswith(b"\x1a\x02hi")  # no newline stored, no partial flag
    (entry,) = Decoder("local").feed(frame)
    assert entry.data == b"hi\n" and entry.time == "2023-11-14T22:13:20.123456789Z"


def test_json_attrs_are_written_between_stream_and_time(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = JsonLog(str(path), {"tag": "web", "env": "prod"})
    log.write("stdout", b"x\n")
    log.close()
    line = path.read_text()
    assert line.startswith('{"log":"x\\n","stream":"stdout","attrs":{"tag":"web","env":"prod"},')
    (entry,) = Decoder("json").feed(path.read_bytes())
    assert entry.attrs == (("env", "prod"), ("tag", "web"))


def test_syslog_messages_and_cache(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "log.sock"))
    server.settimeout(2)
    try:
        cache = tmp_path / "container-cached.log"
        writer = open_log(
            {
                "driver": "syslog",
                "syslog": {"address": f"unix://{tmp_path}/log.sock", "facility": 3, "tag": "abc"},
                "cache": {"path": str(cache), "max_size": 1 << 20, "max_file": 1},
            }
        )
        assert isinstance(writer, Tee)
        writer.write_lines("stdout", [b"hello\n"])
        writer.write_lines("stderr", [b"oops\n"])
        writer.close()
        first, second = server.recv(1000), server.recv(1000)
        assert first.startswith(b"<30>") and first.endswith(b" abc[%d]: hello" % os.getpid())
        assert second.startswith(b"<27>") and second.endswith(b": oops")
        snap = read_snapshot(logdrivers.LogFiles(cache, "local"), LogQuery(), keep_open=False)
        assert [e.data for e in snap.entries] == [b"hello\n", b"oops\n"]
    finally:
        server.close()


def test_syslog_rfc5424_format() -> None:
    writer = SyslogLog.__new__(SyslogLog)
    writer.address, writer.facility, writer.tag = "udp://127.0.0.1:514", 16, "t"
    writer.format, writer.hostname = "rfc5424", "h"
    msg = writer.message("stdout", b"m\n", 0.0)
    assert msg == f"<134>1 1970-01-01T00:00:00Z h t {os.getpid()} t - m".encode()


def test_unreachable_syslog_fails_opening(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        open_log({"driver": "syslog", "syslog": {"address": f"unix://{tmp_path}/none"}})


def test_follow_continues_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "f-json.log"
    log = JsonLog(RotatingFile(str(path), max_size=2_000, max_file=3))
    log.write("stdout", b"before\n")
    files = logdrivers.LogFiles(path, "json")
    snap = read_snapshot(files, LogQuery(follow=True), keep_open=True)
    assert [e.data for e in snap.entries] == [b"before\n"]
    done = False

    async def scenario() -> list[bytes]:
        nonlocal done
        got: list[bytes] = []

        async def writer() -> None:
            nonlocal done
            for i in range(200):  # several rotations while following
                log.write("stdout", f"line {i:04d}\n".encode())
                if i % 20 == 0:
                    await asyncio.sleep(0.03)
            done = True

        task = asyncio.create_task(writer())
        async for e in follow(snap.handle, snap.offset, LogQuery(), lambda: done, files):
            got.append(e.data)
        await task
        return got

    got = asyncio.run(scenario())
    log.close()
    assert got == [f"line {i:04d}\n".encode() for i in range(200)]
    assert (tmp_path / "f-json.log.2").exists()


def test_driver_options_are_checked_with_dockers_words() -> None:
    defaults = logdrivers.LogDefaults()
    with pytest.raises(Exception, match="unknown log opt 'max-size' for none log driver"):
        logdrivers.resolve("none", {"max-size": "1m"}, defaults)
    with pytest.raises(Exception, match="max-file cannot be less than 1"):
        logdrivers.resolve("json-file", {"max-file": "0"}, defaults)
    with pytest.raises(Exception, match="compress cannot be true"):
        logdrivers.resolve("json-file", {"compress": "true"}, defaults)
    with pytest.raises(Exception, match="no log driver named 'x'"):
        logdrivers.resolve("x", {}, defaults)
    assert logdrivers.rotation("json-file", {"max-size": "10m", "max-file": "3"}) == (
        10_000_000, 3, False,
    )  # fmt: skip
    assert logdrivers.rotation("local", {}) == (20 * 1024 * 1024, 5, True)


def test_daemon_defaults_fill_an_unset_driver() -> None:
    defaults = logdrivers.LogDefaults("local", {"max-size": "1m"})
    assert logdrivers.resolve("", {}, defaults) == ("local", {"max-size": "1m"})
    assert logdrivers.resolve("local", {"max-file": "2"}, defaults) == (
        "local", {"max-size": "1m", "max-file": "2"},
    )  # fmt: skip
    assert logdrivers.resolve("json-file", {}, defaults) == ("json-file", {})


def test_rotated_files_order(tmp_path: Path) -> None:
    for name in ("l", "l.1", "l.2.gz", "l.3.gz", "l.1.gz.tmp", "other"):
        (tmp_path / name).write_bytes(b"")
    got = [p.name for p in logdrivers.rotated_files(tmp_path / "l")]
    assert got == ["l.3.gz", "l.2.gz", "l.1", "l"]
