"""freight.shim: json-file log splitting, exit codes, exit.json and argument parsing."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.shim.jsonlog import MAX_ENTRY, JsonLog, LineSplitter, rfc3339_nano
from freight.shim.main import exit_code_of, parse_args, write_exit


def entries(path: Path) -> list[dict]:
    # Split on "\n" only: str.splitlines would also cut at a raw U+2028 inside an entry.
    return [json.loads(line) for line in path.read_text().split("\n")[:-1]]


def test_lines_are_split_like_docker(tmp_path: Path) -> None:
    log = JsonLog(str(tmp_path / "log"))
    out = LineSplitter("stdout", log)
    out.feed(b"hello\nwor")
    out.feed(b"ld\npartial")
    out.close()
    log.close()
    got = entries(tmp_path / "log")
    assert [e["log"] for e in got] == ["hello\n", "world\n", "partial"]
    assert {e["stream"] for e in got} == {"stdout"}
    assert list(got[0]) == ["log", "stream", "time"]


def test_long_lines_become_16k_partials(tmp_path: Path) -> None:
    log = JsonLog(str(tmp_path / "log"))
    err = LineSplitter("stderr", log)
    err.feed(b"x" * (MAX_ENTRY * 2 + 10) + b"\n")
    err.close()
    log.close()
    sizes = [len(e["log"]) for e in entries(tmp_path / "log")]
    assert sizes == [MAX_ENTRY, MAX_ENTRY, 11]


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    log = JsonLog(str(tmp_path / "log"))
    log.write("stdout", b"caf\xc3\xa9 \xff\n")
    log.close()
    assert entries(tmp_path / "log")[0]["log"] == "café \ufffd\n"


def test_rfc3339_nano() -> None:
    assert rfc3339_nano(1_795_946_400_123_456_789) == "2026-11-29T10:00:00.123456789Z"


def test_exit_codes() -> None:
    assert exit_code_of(3 << 8) == 3
    assert exit_code_of(signal.SIGKILL) == 137


def test_exit_json_is_written_atomically(tmp_path: Path) -> None:
    write_exit(tmp_path, 137, True)
    body = json.loads((tmp_path / "exit.json").read_text())
    assert body["exit_code"] == 137 and body["oom_killed"] is True
    assert body["finished_at"].endswith("Z")
    assert os.listdir(tmp_path) == ["exit.json"]


def test_parse_args() -> None:
    argv = "--id c --bundle /b --state-dir /s --log-path /l --runtime runc --runtime-root /r --ready-fd 5"
    opts = parse_args(argv.split())
    assert opts.id == "c" and opts.runtime == "runc" and opts.ready_fd == 5
    with pytest.raises(SystemExit):
        parse_args(["--id", "c"])


def reference_entries(chunks: list[bytes]) -> list[str]:
    """Docker's rule, spelled out: lines with their newline, 16 KiB partials, the rest last."""
    data, out = b"".join(chunks), []
    while data:
        end = data.find(b"\n", 0, MAX_ENTRY)
        cut = end + 1 if end >= 0 else min(len(data), MAX_ENTRY)
        out.append(data[:cut].decode("utf-8", "replace"))
        data = data[cut:]
    return out


pieces = st.sampled_from(
    [
        b"\n",
        b"a",
        b"\\",
        b'"',
        b"\t",
        b"\x00",
        b"\r",
        b"\xff",
        b"\xc3\xa9",
        b"\xef\xbf\xbf",
        b"\xe2\x80\xa8",
    ]
)
blobs = st.lists(st.one_of(pieces, st.binary(max_size=40)), max_size=60).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(blobs, max_size=8), st.sampled_from([0, 1, MAX_ENTRY - 1, MAX_ENTRY]))
def test_bulk_encoding_matches_line_by_line(
    tmp_path_factory, chunks: list[bytes], pad: int
) -> None:
    # `pad` puts lines right at and over the 16 KiB rule into the mix.
    chunks = [b"y" * pad + b"\n", *chunks, b"z" * pad]
    path = tmp_path_factory.mktemp("log") / "log"
    log = JsonLog(str(path))
    out = LineSplitter("stdout", log)
    for chunk in chunks:
        out.feed(chunk)
    out.close()
    log.close()
    assert [e["log"] for e in entries(path)] == reference_entries(chunks)
