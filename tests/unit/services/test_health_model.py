"""Healthchecks without containers: config merge and checks (dockerd's words), probe
command lines, Go durations both ways, the status machine, output capture, the
stored record, the inspect/ps JSON and the CLI's --health-* flags."""

from __future__ import annotations

import pytest

from freight.apiserver import health_json
from freight.apiserver.container_json import state_json, status_text
from freight.cli.lifecycleflags import go_duration_ns, healthcheck
from freight.cli.session import CliError
from freight.errors import InvalidArgument
from freight.oci.image import Healthcheck as OciHealthcheck
from freight.services import health
from freight.services.clock import parse_rfc3339
from freight.services.model import (
    Container,
    ContainerConfig,
    ContainerState,
    HealthConfig,
    HealthResult,
    HealthState,
    HostSettings,
)

MS = 1_000_000
S = 1_000_000_000


def result(code: int) -> HealthResult:
    return HealthResult("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", code, f"code {code}")


# config ---------------------------------------------------------------------------


def test_image_healthcheck_is_read_and_the_request_wins_field_by_field() -> None:
    image = health.from_oci(
        OciHealthcheck(test=["CMD", "true"], interval=2 * S, timeout=3 * S, retries=4)
    )
    assert image == HealthConfig(["CMD", "true"], 2 * S, 3 * S, 0, 0, 4)
    user = HealthConfig(test=[], interval=200 * MS, on_failure="restart")
    merged = health.merge_config(user, image)
    assert merged == HealthConfig(["CMD", "true"], 200 * MS, 3 * S, 0, 0, 4, "restart")
    assert health.merge_config(None, image) is image
    assert health.merge_config(user, None) is user
    assert health.from_oci(None) is None


def test_none_disables_the_images_check() -> None:
    image = HealthConfig(["CMD", "true"])
    merged = health.merge_config(HealthConfig(["NONE"]), image)
    assert not health.has_healthcheck(merged)
    assert health.has_healthcheck(image)
    assert not health.has_healthcheck(HealthConfig([]))
    assert not health.has_healthcheck(HealthConfig(["WHAT", "x"]))


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        (HealthConfig(interval=999), "Interval in Healthcheck cannot be less than 1ms"),
        (HealthConfig(timeout=5), "Timeout in Healthcheck cannot be less than 1ms"),
        (HealthConfig(retries=-1), "Retries in Healthcheck cannot be negative"),
        (HealthConfig(start_period=1), "StartPeriod in Healthcheck cannot be less than 1ms"),
        (HealthConfig(start_interval=1), "StartInterval in Healthcheck cannot be less than 1ms"),
    ],
)
def test_validate_uses_dockerd_words(hc: HealthConfig, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        health.validate_config(hc)
    assert str(info.value) == message


def test_validate_accepts_defaults_and_checks_on_failure() -> None:
    health.validate_config(None)
    health.validate_config(HealthConfig(["CMD", "true"], interval=MS))
    with pytest.raises(InvalidArgument, match="invalid health on-failure action 'reboot'"):
        health.validate_config(HealthConfig(on_failure="reboot"))


def test_probe_command_lines() -> None:
    assert health.probe_argv(HealthConfig(["CMD", "cat", "/ok"]), None) == ["cat", "/ok"]
    shell = HealthConfig(["CMD-SHELL", "curl -f x || exit 1"])
    assert health.probe_argv(shell, None) == ["/bin/sh", "-c", "curl -f x || exit 1"]
    assert health.probe_argv(shell, ["/bin/ash", "-eo"]) == [
        "/bin/ash",
        "-eo",
        "curl -f x || exit 1",
    ]
    assert health.probe_argv(HealthConfig(["NONE"]), None) is None
    assert health.probe_argv(None, None) is None


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (30 * S, "30s"),
        (200 * MS, "200ms"),
        (1500 * MS, "1.5s"),
        (90 * S, "1m30s"),
        (3600 * S, "1h0m0s"),
        (MS, "1ms"),
        (1500, "1.5µs"),
        (7, "7ns"),
        (0, "0s"),
        (-2 * S, "-2s"),
    ],
)
def test_go_duration_strings(ns: int, text: str) -> None:
    assert health.go_duration(ns) == text
    if ns:
        assert go_duration_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", 'time: missing unit in duration "5"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("abc", 'time: invalid duration "abc"'),
        ("", 'time: invalid duration ""'),
    ],
)
def test_go_duration_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        go_duration_ns(text)
    assert str(info.value) == message
    assert go_duration_ns("0") == 0
    assert go_duration_ns("1m0.5s") == 60 * S + 500 * MS


# the state machine ------------------------------------------------------------------


def test_timing_defaults_and_the_start_interval() -> None:
    t = health.Timing.of(HealthConfig(["CMD", "true"]))
    assert (t.interval, t.timeout, t.start_period, t.start_interval, t.retries) == (
        30.0, 30.0, 0.0, 5.0, 3,
    )  # fmt: skip
    t = health.Timing.of(HealthConfig(["CMD", "x"], interval=10 * S, start_period=60 * S))
    assert t.next_wait(1.0, "starting") == 5.0
    assert t.next_wait(1.0, "healthy") == 10.0
    assert t.next_wait(61.0, "starting") == 10.0


def test_retries_failures_make_it_unhealthy_and_one_success_heals() -> None:
    t = health.Timing.of(HealthConfig(["CMD", "x"], retries=2))
    h = HealthState()
    health.apply_result(h, result(1), t, 5.0)
    assert (h.status, h.failing_streak) == ("starting", 1)
    health.apply_result(h, result(2), t, 5.0)
    assert (h.status, h.failing_streak) == ("unhealthy", 2)
    health.apply_result(h, result(0), t, 5.0)
    assert (h.status, h.failing_streak) == ("healthy", 0)
    health.apply_result(h, result(-1), t, 5.0)
    assert (h.status, h.failing_streak) == ("healthy", 1)


def test_start_period_failures_do_not_count_until_a_success() -> None:
    t = health.Timing.of(HealthConfig(["CMD", "x"], retries=1, start_period=10 * S))
    h = HealthState()
    for _ in range(3):
        health.apply_result(h, result(1), t, 2.0)
    assert (h.status, h.failing_streak) == ("starting", 0)
    health.apply_result(h, result(1), t, 11.0)
    assert h.status == "unhealthy"
    h = HealthState(status="healthy")
    health.apply_result(h, result(1), t, 2.0)  # once healthy, the start period is over
    assert h.status == "unhealthy"


def test_log_keeps_the_last_five() -> None:
    t = health.Timing.of(HealthConfig(["CMD", "x"]))
    h = HealthState()
    for code in range(8):
        health.apply_result(h, result(code), t, 100.0)
    assert [r.exit_code for r in h.log] == [3, 4, 5, 6, 7]


def test_output_is_capped_at_4096_bytes() -> None:
    buf = bytearray()
    assert health.capture(buf, b"a" * 4000) is False
    assert health.capture(buf, b"b" * 200) is True
    assert health.capture(buf, b"c") is True
    assert len(buf) == 4096
    assert health.output_text(bytes(buf), True).endswith("b...")
    assert health.output_text(b"ok\n", False) == "ok\n"


# stored record and JSON ----------------------------------------------------------------


def _container(**state: object) -> Container:
    c = Container(
        "c" * 64,
        "web",
        "2026-01-01T00:00:00Z",
        "img",
        ContainerConfig(image="busybox", healthcheck=HealthConfig(["CMD", "true"], retries=2)),
        HostSettings(),
    )
    c.state = ContainerState(**state)  # type: ignore[arg-type]
    return c


def test_record_round_trip_keeps_config_health_and_manual_stop() -> None:
    c = _container(status="running", health=HealthState("healthy", 0, [result(0)]))
    c.manually_stopped = True
    back = Container.from_record(c.to_record())
    assert back.config.healthcheck == HealthConfig(["CMD", "true"], retries=2)
    assert back.state.health == HealthState("healthy", 0, [result(0)])
    assert back.manually_stopped is True
    old = _container(status="exited")
    assert Container.from_record(old.to_record()).state.health is None


def test_inspect_json_shapes() -> None:
    hc = health_json.parse_healthcheck(
        {"Test": ["CMD-SHELL", "exit 0"], "Interval": 200 * MS, "Retries": 0, "OnFailure": "kill"}
    )
    assert hc == HealthConfig(["CMD-SHELL", "exit 0"], interval=200 * MS, on_failure="kill")
    assert health_json.healthcheck_json(hc) == {
        "Test": ["CMD-SHELL", "exit 0"],
        "Interval": 200 * MS,
        "OnFailure": "kill",
    }
    assert health_json.parse_healthcheck(None) is None
    with pytest.raises(InvalidArgument):
        health_json.parse_healthcheck({"Interval": "1s"})
    c = _container(status="running", health=HealthState("unhealthy", 3, [result(1)]))
    assert state_json(c)["Health"] == {
        "Status": "unhealthy",
        "FailingStreak": 3,
        "Log": [
            {
                "Start": "2026-01-01T00:00:00Z",
                "End": "2026-01-01T00:00:01Z",
                "ExitCode": 1,
                "Output": "code 1",
            }
        ],
    }
    assert "Health" not in state_json(_container(status="running"))


@pytest.mark.parametrize(
    ("status", "text"),
    [("starting", " (health: starting)"), ("healthy", " (healthy)"), ("unhealthy", " (unhealthy)")],
)
def test_ps_status_has_the_health(status: str, text: str) -> None:
    started = "2026-01-01T00:00:00Z"
    c = _container(status="running", started_at=started, health=HealthState(status))
    assert status_text(c, parse_rfc3339(started) + 5) == "Up 5 seconds" + text


def test_ps_status_while_restarting() -> None:
    finished = "2026-01-01T00:00:00Z"
    c = _container(status="restarting", exit_code=1, finished_at=finished)
    assert status_text(c, parse_rfc3339(finished) + 2) == "Restarting (1) 2 seconds ago"


# the CLI ---------------------------------------------------------------------------------


def _opts(**kw: object) -> dict:
    return {
        "health_cmd": None, "health_interval": None, "health_timeout": None,
        "health_start_period": None, "health_start_interval": None, "health_retries": None,
        "health_on_failure": None, "no_healthcheck": False, **kw,
    }  # fmt: skip


def test_cli_health_flags_make_dockers_healthcheck() -> None:
    assert healthcheck(_opts()) is None
    assert healthcheck(_opts(no_healthcheck=True)) == {"Test": ["NONE"]}
    assert healthcheck(_opts(health_cmd="exit 0", health_interval=200 * MS)) == {
        "Test": ["CMD-SHELL", "exit 0"],
        "Interval": 200 * MS,
        "Timeout": 0,
        "StartPeriod": 0,
        "StartInterval": 0,
        "Retries": 0,
    }
    assert healthcheck(_opts(health_on_failure="restart")) == {"OnFailure": "restart"}


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            {"no_healthcheck": True, "health_cmd": "x"},
            "--no-healthcheck conflicts with --health-* options",
        ),
        ({"health_interval": -S}, "--health-interval cannot be negative"),
        ({"health_timeout": -S}, "--health-timeout cannot be negative"),
        ({"health_retries": -1}, "--health-retries cannot be negative"),
        ({"health_start_period": -S}, "--health-start-period cannot be negative"),
        ({"health_start_interval": -S}, "--health-start-interval cannot be negative"),
    ],
)
def test_cli_health_flag_errors(opts: dict, message: str) -> None:
    with pytest.raises(CliError) as info:
        healthcheck(_opts(**opts))
    assert info.value.message == message
