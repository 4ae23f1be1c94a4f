"""--log-driver: json-file (the default) and none; unknown drivers refused, as dockerd."""

from __future__ import annotations

import json
import secrets

import pytest


@pytest.mark.parametrize("cli", ["freight", "docker"])
def test_none_driver_attaches_but_keeps_no_log(freightd, cli: str) -> None:
    run = getattr(freightd, "cli" if cli == "freight" else "docker")
    name = f"nolog-{secrets.token_hex(4)}"
    result = run(
        "run", "--name", name, "--log-driver", "none", "busybox", "echo", "straight through"
    )
    try:
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"straight through\n"  # attach does not need a log
        logs = run("logs", name)
        assert logs.returncode == 1
        assert b"configured logging driver does not support reading" in logs.stderr
        inspect = json.loads(run("inspect", name).stdout)[0]
        assert inspect["HostConfig"]["LogConfig"]["Type"] == "none"
    finally:
        run("rm", "-f", name)


def test_log_opts_are_kept_and_json_file_is_the_default(freightd) -> None:
    name = f"opts-{secrets.token_hex(4)}"
    result = freightd.cli("create", "--name", name, "--log-opt", "max-size=10m", "busybox")
    try:
        assert result.returncode == 0, result.stderr.decode()
        inspect = json.loads(freightd.cli("inspect", name).stdout)[0]
        assert inspect["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-size": "10m"},
        }
    finally:
        freightd.cli("rm", "-f", name)


def test_unknown_driver_is_refused_with_dockers_words(freightd) -> None:
    for run in (freightd.docker, freightd.cli):
        result = run("run", "--log-driver", "nosuchdriver", "busybox")
        assert result.returncode == 125
        assert b"logger: no log driver named 'nosuchdriver' is registered" in result.stderr
        assert run("create", "--log-driver", "nosuchdriver", "busybox").returncode == 1
    bad = freightd.cli("create", "--log-opt", "novalue", "busybox")
    assert bad.returncode == 125 and b"expected key=value" in bad.stderr
