"""``freight exec``: run a command in a running container, as docker/cli's exec.go.

Owns: the exec flags, the create body, and docker's sequence —
``GET /containers/{id}/json`` (so "No such container" wins), the TTY check,
``POST /containers/{id}/exec``, then either ``POST /exec/{id}/start``
``{"Detach": true}`` (``-d``: prints nothing) or the hijacked start, resize
right after it and on SIGWINCH, the copy loop, and ``GET /exec/{id}/json``
for the exit status.

Exit status: the exec'd process's ``ExitCode`` (the daemon sets 126/127 when
the process could not be started, as moby's translateContainerdStartErr
does); any daemon error is 1 (docker returns a plain error); the daemon gone
before the exit code was read is 255 (docker's StatusError{-1}). When the
daemon refuses the start itself with "executable file not found"/"permission
denied" we keep the 127/126 it would have recorded.
"""

from __future__ import annotations

import os
import sys

from freight.cli.attach import DETACHED, ESCAPED, Interactive, Target
from freight.cli.containerspec import DETACH_KEYS_HELP, env_list
from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.cli.terminal import check_tty, parse_detach_keys, terminal_size
from freight.client.http import ApiError, DaemonUnreachable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXEC = Command(
    "exec",
    "[OPTIONS] CONTAINER COMMAND [ARG...]",
    "Execute a command in a running container",
    [
        Flag("detach", "d", help="Detached mode: run command in the background"),
        Flag("detach-keys", "", "string", DETACH_KEYS_HELP),
        Flag("env", "e", "list", "Set environment variables"),
        Flag("env-file", "", "list", "Read in a file of environment variables"),
        Flag("interactive", "i", help="Keep STDIN open even if not attached"),
        Flag("privileged", "", help="Give extended privileges to the command"),
        Flag("tty", "t", help="Allocate a pseudo-TTY"),
        Flag("user", "u", "string", 'Username or UID (format: "<name|uid>[:<group|gid>]")'),
        Flag("workdir", "w", "string", "Working directory inside the container"),
    ],
    min_args=2,
    interspersed=False,
    aliases=("freight container exec", "freight exec"),
)


def exec_config(opts: dict[str, Any], cmd: list[str]) -> dict[str, Any]:
    """The body of POST /containers/{id}/exec (docker's parseExec)."""
    attach = not opts["detach"]
    config: dict[str, Any] = {
        "User": opts["user"] or "",
        "Privileged": opts["privileged"],
        "Tty": opts["tty"],
        "AttachStdin": attach and opts["interactive"],
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Detach": bool(opts["detach"]),
        "DetachKeys": opts["detach_keys"] or "",
        "Env": env_list(opts["env_file"], opts["env"]) or None,
        "WorkingDir": opts["workdir"] or "",
        "Cmd": cmd,
    }
    if opts["tty"]:
        config["ConsoleSize"] = list(terminal_size() or (0, 0))
    return config


def main(session: Session, argv: list[str]) -> int:
    opts, args = EXEC.parse(argv)
    config = exec_config(opts, args[1:])
    api = session.api
    try:
        api.container_inspect(args[0])
    except ApiError as exc:
        raise CliError(str(exc)) from None
    if not opts["detach"]:
        check_tty(config["AttachStdin"], config["Tty"])
    try:
        eid = api.exec_create(args[0], config)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    size = _console_size(config)
    if opts["detach"]:
        try:
            api.exec_start_detached(eid, tty=config["Tty"], console_size=size)
        except ApiError as exc:
            raise CliError(str(exc), _start_failure_status(exc.message)) from None
        return 0
    return _interactive(session, eid, config, size)


def _console_size(config: dict[str, Any]) -> tuple[int, int] | None:
    size = config.get("ConsoleSize")
    return (size[0], size[1]) if size and any(size) else None


def _interactive(
    session: Session, eid: str, config: dict[str, Any], size: tuple[int, int] | None
) -> int:
    api = session.api
    tty, stdin = config["Tty"], config["AttachStdin"]
    keys = parse_detach_keys(config["DetachKeys"])
    # docker resizes an exec only when its *stdin* is a terminal.
    monitor = tty and os.isatty(sys.stdin.fileno())
    with Interactive(
        Target(api, eid, is_exec=True), tty=tty, stdin=stdin, detach_keys=keys, monitor_size=monitor
    ) as interactive:
        try:
            conn = api.exec_start(eid, tty=tty, console_size=size)
        except ApiError as exc:
            raise CliError(str(exc), _start_failure_status(exc.message)) from None
        interactive.start_resizing()
        outcome = interactive.stream(conn)
        conn.close()
    if outcome == ESCAPED:
        raise CliError("read escape sequence", 1)  # docker returns its EscapeError
    if outcome == DETACHED:
        return 0
    return exit_status(session, eid)


def exit_status(session: Session, eid: str) -> int:
    """docker's getExecExitStatus: ExitCode, 255 if the daemon went away."""
    try:
        info = session.api.exec_inspect(eid)
    except DaemonUnreachable:
        return 255
    except ApiError as exc:
        raise CliError(str(exc)) from None
    return int(info.get("ExitCode") or 0)


def _start_failure_status(message: str) -> int:
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 1
