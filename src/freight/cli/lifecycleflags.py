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
from freight.dockerapi.goduration import parse_ns as go_duration_ns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_DURATION_FLAGS = (
    ("health_interval", "Interval", "--health-interval"),
    ("health_timeout", "Timeout", "--health-timeout"),
    ("health_start_period", "StartPeriod", "--health-start-period"),
    ("health_start_interval", "StartInterval", "--health-start-interval"),
)
ON_FAILURE = ("none", "kill", "restart", "stop")


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
