"""freight.shim.options: container and exec command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from freight.shim.options import parse_args

BASE = ["--id", "c1", "--bundle", "/b", "--state-dir", "/s", "--runtime", "freight",
        "--runtime-root", "/rt", "--ready-fd", "5"]  # fmt: skip


def test_container_options_and_flags() -> None:
    opts = parse_args([*BASE, "--log-path", "/l", "--stdin", "--tty", "--console-size", "24x80"])
    assert (opts.id, opts.log_path, opts.ready_fd) == ("c1", "/l", 5)
    assert opts.stdin and opts.tty and not opts.wait_attach and not opts.exec_mode
    assert opts.console_size == (24, 80)
    assert opts.socket_path == "/s/attach.sock"


def test_exec_mode_needs_no_log_but_a_process() -> None:
    opts = parse_args([*BASE, "--exec-id", "e1", "--process", "/p.json", "--wait-attach"])
    assert opts.exec_mode and opts.exec_id == "e1" and opts.process == Path("/p.json")
    assert opts.wait_attach and opts.log_path is None
    with pytest.raises(SystemExit, match="--process"):
        parse_args([*BASE, "--exec-id", "e1"])


def test_no_log_path_means_no_log() -> None:
    assert parse_args(BASE).log_path is None  # the "none" log driver
    with pytest.raises(SystemExit, match="missing --ready-fd"):
        parse_args(BASE[:-2])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--log-path", "/l", "--bogus"], "unknown option --bogus"),
        (["--log-path", "/l", "--console-size", "80"], "HEIGHTxWIDTH"),
        (["--log-path", "/l", "--console-size", "0x80"], "HEIGHTxWIDTH"),
    ],
)
def test_bad_command_lines(extra: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        parse_args([*BASE, *extra])
