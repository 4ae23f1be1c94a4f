"""Docker's healthcheck JSON ↔ the services' model: Config.Healthcheck and State.Health.

Config.Healthcheck: {"Test", "Interval", "Timeout", "StartPeriod",
"StartInterval", "Retries"} with durations in nanoseconds, zero fields left
out as dockerd does; "OnFailure" is freight's own (--health-on-failure).
"""

from __future__ import annotations

from typing import Any

from freight.errors import InvalidArgument
from freight.services.model import HealthConfig, HealthState

_DURATIONS = (
    ("Interval", "interval"),
    ("Timeout", "timeout"),
    ("StartPeriod", "start_period"),
    ("StartInterval", "start_interval"),
    ("Retries", "retries"),
)


def parse_healthcheck(raw: Any) -> HealthConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid Healthcheck: must be a JSON object")
    test = raw.get("Test") or []
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise InvalidArgument("invalid Healthcheck.Test: must be a list of strings")
    hc = HealthConfig(test=list(test), on_failure=raw.get("OnFailure") or "none")
    for key, attr in _DURATIONS:
        value = raw.get(key) or 0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"invalid Healthcheck.{key}: {value!r}")
        setattr(hc, attr, int(value))
    return hc


def healthcheck_json(hc: HealthConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": hc.test} if hc.test else {}
    for key, attr in _DURATIONS:
        if getattr(hc, attr):
            out[key] = getattr(hc, attr)
    if hc.on_failure != "none":
        out["OnFailure"] = hc.on_failure
    return out


def health_json(h: HealthState) -> dict[str, Any]:
    return {
        "Status": h.status,
        "FailingStreak": h.failing_streak,
        "Log": [
            {"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
            for r in h.log
        ],
    }


def status_suffix(h: HealthState | None) -> str:
    """ps STATUS after "Up ...": " (healthy)", " (health: starting)", " (unhealthy)"."""
    if h is None:
        return ""
    return " (health: starting)" if h.status == "starting" else f" ({h.status})"
