"""``stop``, ``kill``, ``restart``, ``rm`` and ``wait`` on one or more containers.

Owns: their flags, and docker's habit of acting on every named container,
echoing each name that worked and reporting each failure, then exiting
non-zero if any failed.
"""

from __future__ import annotations

from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_TIMEOUT_HELP = "Seconds to wait before killing the container"

STOP = Command(
    "stop",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Stop one or more running containers",
    [
        Flag("signal", "s", "string", "Signal to send to the container"),
        Flag("timeout", "t", "int", _TIMEOUT_HELP),
        Flag("time", "", "int", _TIMEOUT_HELP, hidden=True),  # docker's deprecated spelling
    ],
    min_args=1,
    aliases=("freight container stop", "freight stop"),
)
RESTART = Command(
    "restart",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Restart one or more containers",
    STOP.flags,
    min_args=1,
    aliases=("freight container restart", "freight restart"),
)
KILL = Command(
    "kill",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Kill one or more running containers",
    [Flag("signal", "s", "string", "Signal to send to the container")],
    min_args=1,
    aliases=("freight container kill", "freight kill"),
)
RM = Command(
    "rm",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Remove one or more containers",
    [
        Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
        Flag("link", "l", help="Remove the specified link"),
        Flag("volumes", "v", help="Remove anonymous volumes associated with the container"),
    ],
    min_args=1,
    aliases=("freight container rm", "freight container remove", "freight rm"),
)
WAIT = Command(
    "wait",
    "CONTAINER [CONTAINER...]",
    "Block until one or more containers stop, then print their exit codes",
    min_args=1,
    aliases=("freight container wait", "freight wait"),
)


def each(
    session: Session,
    names: list[str],
    action: Callable[[str], object],
    missing_ok: bool = False,
) -> int:
    """Run ``action`` per name; echo successes, report failures, 1 if any failed.

    With ``missing_ok`` (``rm -f``) a container that does not exist is reported
    but is not a failure, as in docker.
    """
    failed = False
    for name in names:
        try:
            result = action(name)
        except ApiError as exc:
            session.error(str(exc))
            failed = failed or not (missing_ok and exc.status == 404)
            continue
        session.out(f"{name if result is None else result}\n")
    return 1 if failed else 0


def _timeout(opts: dict) -> int | None:
    return opts["timeout"] if opts["timeout"] is not None else opts["time"]


def stop_main(session: Session, argv: list[str]) -> int:
    opts, args = STOP.parse(argv)
    timeout, signal = _timeout(opts), opts["signal"]
    return each(
        session, args, lambda n: session.api.container_stop(n, timeout=timeout, signal=signal)
    )


def restart_main(session: Session, argv: list[str]) -> int:
    opts, args = RESTART.parse(argv)
    timeout, signal = _timeout(opts), opts["signal"]
    return each(
        session, args, lambda n: session.api.container_restart(n, timeout=timeout, signal=signal)
    )


def kill_main(session: Session, argv: list[str]) -> int:
    opts, args = KILL.parse(argv)
    return each(session, args, lambda n: session.api.container_kill(n, signal=opts["signal"]))


def rm_main(session: Session, argv: list[str]) -> int:
    opts, args = RM.parse(argv)
    if opts["link"]:
        raise CliError("links are not supported by freight")
    return each(
        session,
        args,
        lambda n: session.api.container_remove(n, force=opts["force"], volumes=opts["volumes"]),
        missing_ok=opts["force"],
    )


def wait_main(session: Session, argv: list[str]) -> int:
    _, args = WAIT.parse(argv)
    return each(session, args, lambda n: session.api.container_wait(n).get("StatusCode", 0))
