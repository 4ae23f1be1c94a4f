"""freight-shell: who logs in, the exec command line, options, and start-up imports."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from freight.shell.account import Account, AccountError, login_name, sudo_caller
from freight.shell.command import exec_argv, freight_cli
from freight.shell.config import Settings
from freight.shell.main import UsageError, main, parse_args

ALICE = Account("alice", 1001, 1002, "/home/alice")
NOBODY = pwd.getpwnam("nobody")


# -- identity ---------------------------------------------------------------


def test_root_may_act_for_anyone():
    assert login_name("alice", 0, {}) == "alice"
    assert login_name(None, 0, {}) == "root"
    assert login_name("alice", 0, {"SUDO_UID": "0"}) == "alice"


def test_a_user_is_themself():
    assert login_name(None, NOBODY.pw_uid, {}) == "nobody"
    assert login_name("nobody", NOBODY.pw_uid, {}) == "nobody"
    with pytest.raises(AccountError, match="--user is for root only"):
        login_name("root", NOBODY.pw_uid, {})


def test_root_through_sudo_is_the_sudo_caller():
    env = {"SUDO_UID": str(NOBODY.pw_uid)}
    assert sudo_caller(0, env) == NOBODY.pw_uid
    assert login_name(None, 0, env) == "nobody"
    with pytest.raises(AccountError, match="--user is for root only"):
        login_name("root", 0, env)
    assert sudo_caller(NOBODY.pw_uid, env) is None  # only meaningful when we are root


def test_unknown_uid():
    with pytest.raises(AccountError, match="no passwd entry"):
        login_name(None, 0, {"SUDO_UID": "4000000001"})


# -- exec command line ----------------------------------------------------------


def argv(settings=None, **kw):
    kw.setdefault("command", None)
    kw.setdefault("tty", True)
    kw.setdefault("environ", {"TERM": "xterm-256color"})
    return exec_argv(["freight"], settings or Settings(), ALICE, "shell-alice", **kw)


def test_interactive_login():
    assert argv() == [
        "freight", "-H", "unix:///run/freight/freight.sock", "exec", "-i", "-t",
        "-u", "1001:1002", "-w", "/home/alice",
        "-e", "HOME=/home/alice", "-e", "USER=alice", "-e", "LOGNAME=alice",
        "-e", "SHELL=/bin/sh", "-e", "TERM=xterm-256color",
        "shell-alice", "/bin/sh", "-l",
    ]  # fmt: skip


def test_command_without_a_terminal():
    out = argv(command="ls -l", tty=False)
    assert "-t" not in out and not any(a.startswith("TERM=") for a in out)
    assert out[-3:] == ["/bin/sh", "-c", "ls -l"]


def test_without_home_the_session_starts_in_root():
    out = argv(Settings(home=False, shell="/bin/bash", host="unix:///x.sock"))
    assert out[out.index("-w") + 1] == "/"
    assert "HOME=/" in out and out[-2:] == ["/bin/bash", "-l"] and out[2] == "unix:///x.sock"


def test_cli_is_found_next_to_the_interpreter(tmp_path):
    exe = tmp_path / "freight"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert freight_cli(str(tmp_path / "python")) == [str(exe)]


def test_cli_falls_back_to_path_or_module(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert freight_cli(str(tmp_path / "python")) == [
        str(tmp_path / "python"),
        "-m",
        "freight.cli.main",
    ]


# -- options and main -----------------------------------------------------------


def test_parse_args():
    opts = parse_args(["-l", "-c", "id -u", "--user", "alice", "--prepare"])
    assert (opts.command, opts.user, opts.prepare, opts.check) == ("id -u", "alice", True, False)
    assert parse_args(["--user=bob", "--check"]).user == "bob"
    with pytest.raises(UsageError):
        parse_args(["-c"])
    with pytest.raises(UsageError):
        parse_args(["-x"])


def test_main_refuses_users_not_allowed(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text('allowed_users = ["somebody-else"]\n')
    monkeypatch.setenv("FREIGHT_SHELL_CONFIG", str(tmp_path / "s.toml"))
    monkeypatch.delenv("SUDO_UID", raising=False)
    user = ["--user", "nobody"] if os.getuid() == 0 else []
    assert main([*user, "--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("freight-shell: ") and "may not log in" in err
    assert err.count("\n") == 1


def test_main_bad_config_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text("[limits]\npids = -3\n")
    monkeypatch.setenv("FREIGHT_SHELL_CONFIG", str(tmp_path / "s.toml"))
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert main(["--check"]) == 1
    err = capsys.readouterr().err
    assert err == f"freight-shell: {tmp_path / 's.toml'}: limits.pids: " + (
        "must be a whole number (0 = no limit), got -3\n"
    )


def test_main_unreachable_daemon_is_one_line(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "s.toml").write_text(f'host = "unix://{tmp_path}/none.sock"\nhome = false\n')
    monkeypatch.setenv("FREIGHT_SHELL_CONFIG", str(tmp_path / "s.toml"))
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert main(["-c", "true"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("freight-shell: Cannot connect to the freight daemon")
    assert err.count("\n") == 1


def test_start_up_avoids_heavy_imports(tmp_path):
    """A login must not pay for asyncio/h11/http.client (or dataclasses)."""
    env = {**os.environ, "FREIGHT_SHELL_CONFIG": str(tmp_path / "absent.toml")}
    env["PATH"] = os.environ.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "freight.shell.main", "-c", "true"],
        capture_output=True, text=True, env=env, input="",
    )  # fmt: skip
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "freight.shell.config" in names
    assert not names & {"asyncio", "h11", "http.client", "email", "dataclasses", "argparse"}
