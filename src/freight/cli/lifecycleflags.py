"""``run``/``create`` flags for what happens over a container's life: --restart and the healthcheck.

Owns: the flag declarations, Go's duration syntax for --health-* (``200ms``,
``1m30s``, with Go's error words), docker's restart-policy parsing, and
putting them into the create body (HostConfig.RestartPolicy,
Config.Healthcheck). The daemon checks the rest (services.restarts,
services.health), as dockerd does. ``--health-on-failure`` is freight's own.
"""

from __future__ import annotations

from freight.cli.flags import Flag
from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_FLAGS = (
    ("health_interval", "Interval", "--health-interval"),
    ("health_timeout", "Timeout", "--health-timeout"),
    ("health_start_period", "StartPeriod", "--health-start-period"),
    ("health_start_interval", "StartInterval", "--health-start-interval"),
)
ON_FAILURE = ("none", "kill", "restart", "stop")


def go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration in nanoseconds; ValueError with Go's message."""
    quoted = f'"{text}"'
    rest = text
    sign = 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number, rest = _take(rest, "0123456789.")
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f"time: invalid duration {quoted}")
        unit, rest = _take(rest, None)
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS_NS:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _UNITS_NS[unit]
    return sign * int(round(total))


def _take(text: str, chars: str | None) -> tuple[str, str]:
    """The leading run of `chars` (None: of anything but digits and '.')."""
    i = 0
    while i < len(text) and ((text[i] in chars) if chars else (text[i] not in "0123456789.")):
        i += 1
    return text[:i], text[i:]


def _on_failure(text: str) -> str:
    if text not in ON_FAILURE:
        raise ValueError('must be one of "none", "kill", "restart" or "stop"')
    return text


def lifecycle_flags() -> list[Flag]:
    dur = {"type_name": "duration", "convert": go_duration_ns}
    return [
        Flag("health-cmd", "", "string", "Command to run to check health"),
        Flag("health-interval", "", "string", "Time between running the check", **dur),
        Flag("health-retries", "", "int", "Consecutive failures needed to report unhealthy"),
        Flag(
            "health-start-interval",
            "",
            "string",
            "Time between running the check during the start period",
            **dur,
        ),
        Flag(
            "health-start-period",
            "",
            "string",
            "Start period for the container to initialize before starting health-retries countdown",
            **dur,
        ),
        Flag("health-timeout", "", "string", "Maximum time to allow one check to run", **dur),
        Flag(
            "health-on-failure",
            "",
            "string",
            'Action when the container turns unhealthy ("none", "kill", "restart", "stop")',
            convert=_on_failure,
        ),
        Flag("no-healthcheck", "", help="Disable any container-specified HEALTHCHECK"),
        Flag(
            "restart",
            "",
            "string",
            'Restart policy to apply when a container exits (default "no")',
        ),
    ]


def restart_policy(text: str) -> dict[str, Any]:
    """docker's ParseRestartPolicy: NAME[:COUNT]; the name itself is the daemon's to check."""
    name, colon, count = text.partition(":")
    if colon and not name:
        raise CliError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise CliError(
                "invalid restart policy format: maximum retry count must be an integer"
            ) from None
    return {"Name": name or "no", "MaximumRetryCount": retries}


def healthcheck(opts: dict[str, Any]) -> dict[str, Any] | None:
    """Config.Healthcheck from --health-* / --no-healthcheck, with docker's checks."""
    durations = {key: opts.get(dest) or 0 for dest, key, _ in _DURATION_FLAGS}
    retries = opts.get("health_retries") or 0
    cmd = opts.get("health_cmd") or ""
    have = bool(cmd) or any(durations.values()) or retries != 0
    on_failure = opts.get("health_on_failure") or "none"
    if opts.get("no_healthcheck"):
        if have:
            raise CliError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return {"OnFailure": on_failure} if on_failure != "none" else None
    check: dict[str, Any] = {"Test": ["CMD-SHELL", cmd]} if cmd else {}
    for _dest, key, flag in _DURATION_FLAGS:
        if key == "StartPeriod" and retries < 0:
            raise CliError("--health-retries cannot be negative")
        if durations[key] < 0:
            raise CliError(f"{flag} cannot be negative")
        check[key] = durations[key]
    check["Retries"] = retries
    if on_failure != "none":
        check["OnFailure"] = on_failure
    return check


def apply_lifecycle_flags(opts: dict[str, Any], config: dict[str, Any]) -> None:
    """Put --restart and the healthcheck into the create body (Config + HostConfig)."""
    host = config["HostConfig"]
    policy = restart_policy(opts.get("restart") or "")
    if opts.get("rm") and policy["Name"] != "no":
        raise CliError("conflicting options: cannot specify both --restart and --rm")
    host["RestartPolicy"] = policy
    check = healthcheck(opts)
    if check is not None:
        config["Healthcheck"] = check
