"""`freight events` without a daemon: --since/--until in docker's forms, --filter's JSON,
docker's default line and --format templates over an event message."""

from __future__ import annotations

import os
import time

import pytest

from freight.cli.commands import events
from freight.cli.session import CliError

NOW = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _message() -> dict:
    return {
        "status": "start",
        "id": "abc",
        "from": "busybox",
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "busybox", "a": "1"}},
        "scope": "local",
        "time": 1_700_000_000,
        "timeNano": 1_700_000_000_123_456_789,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-14T22:13:20Z", "1700000000.000000000"),
        ("2023-11-14T22:13:20.123456789Z", "1700000000.123456789"),
        ("2023-11-14T23:13:20.5+01:00", "1700000000.500000000"),
        ("2023-11-14T22:13:20", "1700000000.000000000"),  # no zone: the local one (UTC here)
        ("2023-11-14", "1699920000.000000000"),
        ("1700000000", "1700000000"),
        ("1700000000.25", "1700000000.25"),
        ("2023-11-14T22", "1699999200.000000000"),
        ("2023-11-14T22:13", "1699999980.000000000"),
        ("10m", "1699999400"),  # durations count whole seconds, as docker's GetTimestamp
        ("1h30m", "1699994600"),
        ("1.5s", "1699999998"),
    ],
)
def test_since_until_in_dockers_forms(value: str, expected: str) -> None:
    assert events.api_timestamp(value, NOW) == expected


def test_a_broken_date_is_refused() -> None:
    with pytest.raises(CliError, match="parsing time"):
        events.api_timestamp("2023-13-45", NOW)
    with pytest.raises(CliError, match="parsing time"):
        events.api_timestamp("2023-11-xx", NOW)
    with pytest.raises(CliError, match='failed to parse value as time or duration: "soon"'):
        events.api_timestamp("soon", NOW)


def test_filters_as_the_docker_cli_sends_them() -> None:
    got = events.filter_json(["type=container", "event=start", "event=die", "label=a=b"])
    assert got == {
        "type": {"container": True},
        "event": {"start": True, "die": True},
        "label": {"a=b": True},
    }
    with pytest.raises(CliError, match=r"bad format of filter \(expected name=value\)"):
        events.filter_json(["type"])


def test_default_line_is_dockers() -> None:
    assert events.format_event(_message()) == (
        "2023-11-14T22:13:20.123456789Z container start abc (a=1, image=busybox, name=x)\n"
    )
    bare = {"Type": "daemon", "Action": "reload", "Actor": {"ID": "d"}, "time": 1_700_000_000}
    assert events.format_event(bare) == "2023-11-14T22:13:20.000000000Z daemon reload d\n"


def test_time_in_a_local_zone_carries_its_offset(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    if time.localtime(0).tm_gmtoff != 19800:
        pytest.skip("no zoneinfo for Asia/Kolkata")
    assert events.format_time(NOW) == "2023-11-15T03:43:20.000000000+05:30"


def test_format_templates_use_dockers_field_names() -> None:
    render = events._printer("{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    assert render(_message()) == "container start abc x\n"
    render = events._printer("{{.Status}}|{{.ID}}|{{.From}}|{{.Scope}}|{{.TimeNano}}")
    assert render(_message()) == "start|abc|busybox|local|1700000000123456789\n"


def test_json_format_prints_the_message_as_sent() -> None:
    import json

    for fmt in ("{{json .}}", "json"):
        line = events._printer(fmt)(_message())
        assert list(json.loads(line)) == list(_message())
        assert json.loads(line) == _message()


def test_a_bad_template_is_a_cli_error() -> None:
    with pytest.raises(CliError, match="template"):
        events._printer("{{.Type")


def test_module_is_light_to_import() -> None:
    """Listed lazily, and importing it pulls in neither json nor asyncio."""
    import subprocess
    import sys

    code = (
        "import sys, freight.cli.commands.events; "
        "print(sorted(m for m in ('json', 'asyncio', 're') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.stdout.strip() == "[]", out.stderr
