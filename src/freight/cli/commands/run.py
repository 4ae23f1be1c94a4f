"""``freight run``, ``create`` and ``start``: the container start path.

Owns: the docker CLI's run sequence — create (pulling on "No such image"
per ``--pull``), then, unless detached, attach *before* start and send the
wait request *before* start (so neither output nor the exit is missed),
start, copy output until EOF, and exit with the container's status — plus
docker's exit-status rule for start failures (127 not found, 126 permission
denied, else 125).
"""

from __future__ import annotations

import os
import sys

from freight.cli.attach import EOF, Interactive, Target
from freight.cli.containerspec import CREATE, DETACH_KEYS_HELP, RUN, create_body
from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.cli.terminal import check_tty, parse_detach_keys
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

START = Command(
    "start",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Start one or more stopped containers",
    [
        Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
        Flag("detach-keys", "", "string", DETACH_KEYS_HELP),
        Flag("interactive", "i", help="Attach container's STDIN"),
    ],
    min_args=1,
    aliases=("freight container start", "freight start"),
)


def start_error_status(message: str) -> int:
    """docker's rule for the exit status of a failed start."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def _reported(exc: ApiError, with_help: bool = False) -> CliError:
    # docker's reportError: one trailing period, optional pointer to --help.
    text = str(exc).rstrip(".") + "."
    if with_help:
        text += "\n\nRun 'freight run --help' for more information"
    return CliError(text, start_error_status(exc.message))


def familiar_with_tag(image: str) -> str:
    """'busybox' -> 'busybox:latest', as docker names it in "Unable to find image"."""
    last = image.rsplit("/", 1)[-1]
    if "@" in image or ":" in last:
        return image
    return f"{image}:latest"


def pull(session: Session, image: str) -> None:
    """POST /images/create?fromImage=, its progress on stderr like docker run's."""
    from freight.cli.commands.pullpush import pull_image  # with the saved login

    pull_image(session, familiar_with_tag(image), out=sys.stderr)


def create_container(session: Session, body: dict[str, Any], name: str | None, policy: str) -> str:
    """Create the container, pulling first when the policy says so."""
    image = body["Image"]
    if policy == "always":
        pull(session, image)
    try:
        response = session.api.container_create(body, name)
    except ApiError as exc:
        if exc.status != 404 or "No such image" not in exc.message or policy == "never":
            raise
        session.err(f"Unable to find image '{familiar_with_tag(image)}' locally\n")
        sys.stderr.flush()
        pull(session, image)
        response = session.api.container_create(body, name)
    for warning in response.get("Warnings") or []:
        session.err(f"WARNING: {warning}\n")
    return response["Id"]


def _checked_body(command: str, opts: dict, args: list[str], detach: bool) -> dict:
    """The create body; a flag combination it refuses is reported as docker does, with
    the pointer to --help."""
    try:
        return create_body(opts, args[0], args[1:], detach)
    except CliError as exc:
        exc.message += f"\n\nRun 'freight {command} --help' for more information"
        if exc.status is None:
            exc.status = 125  # a refused flag combination is 125 for create too (docker 28)
        raise


def run_main(session: Session, argv: list[str]) -> int:
    opts, args = RUN.parse(argv)
    if opts["detach"] and opts["attach"]:
        raise CliError("Conflicting options: -a and -d")
    body = _checked_body("run", opts, args, opts["detach"])
    if not opts["detach"]:
        check_tty(body["AttachStdin"], body["Tty"])
    try:
        cid = create_container(session, body, opts["name"], opts["pull"] or "missing")
    except ApiError as exc:
        raise _reported(exc, with_help=True) from None
    if opts["detach"]:
        _start(session, cid)
        session.out(cid + "\n")
        return 0
    return attach_start_wait(
        session,
        cid,
        body,
        "removed" if opts["rm"] else "next-exit",
        detach_keys=opts["detach_keys"],
        # docker 28 proxies with a TTY too (only attach and start -a skip it then).
        sig_proxy=opts["sig_proxy"],
    )


def create_main(session: Session, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv)
    body = _checked_body("create", opts, args, detach=False)
    try:
        cid = create_container(session, body, opts["name"], opts["pull"] or "missing")
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(cid + "\n")
    return 0


def _start(session: Session, cid: str) -> None:
    try:
        session.api.container_start(cid)
    except ApiError as exc:
        raise _reported(exc) from None


def attach_start_wait(
    session: Session,
    cid: str,
    config: dict[str, Any],
    condition: str,
    *,
    detach_keys: str | None = None,
    sig_proxy: bool = False,
) -> int:
    """docker's runContainer after create: attach, send wait, start, stream, exit status.

    Attach and wait go out *before* start, so neither output nor the exit is
    missed; proxied signals are caught from before the attach.
    """
    api = session.api
    tty = bool(config.get("Tty"))
    stdin, stdout, stderr = (bool(config.get(f"Attach{k}")) for k in ("Stdin", "Stdout", "Stderr"))
    target = Target(api, cid)
    monitor = tty and (stdin or stdout or stderr) and os.isatty(sys.stdout.fileno())
    keys = parse_detach_keys(detach_keys)
    with Interactive(
        target, tty=tty, stdin=stdin, detach_keys=keys, sig_proxy=sig_proxy, monitor_size=monitor
    ) as interactive:
        conn = None
        if stdin or stdout or stderr:
            conn = api.container_attach(
                cid, stdin=stdin, stdout=stdout, stderr=stderr, detach_keys=detach_keys
            )
        waiter = api.container_wait_begin(cid, condition)
        if not (stdout or stderr):
            session.out(cid + "\n")  # docker prints the id when no output is attached
        try:
            _start(session, cid)
        except CliError:
            waiter.close()
            if conn is not None:
                conn.close()
            raise
        interactive.start_resizing()
        if conn is not None:
            outcome = interactive.stream(conn)
            conn.close()
            if outcome != EOF or not (stdout or stderr):
                waiter.close()  # detached: the container runs on
                return 0
        interactive.wait_readable(waiter)
        try:
            return int(waiter.result().get("StatusCode", 0))
        except ApiError as exc:
            raise CliError(str(exc)) from None


def start_main(session: Session, argv: list[str]) -> int:
    opts, args = START.parse(argv)
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise CliError("you cannot start and attach multiple containers at once")
        return _start_attached(session, args[0], opts["interactive"], opts["detach_keys"])
    failed = []
    for name in args:
        try:
            session.api.container_start(name)
            session.out(name + "\n")
        except ApiError as exc:
            session.error(str(exc))
            failed.append(name)
    if failed:
        raise CliError(f"failed to start containers: {', '.join(failed)}")
    return 0


def _start_attached(session: Session, name: str, interactive: bool, detach_keys: str | None) -> int:
    """docker start -a [-i]: as run, on an existing container; signals proxied without a TTY."""
    try:
        info = session.api.container_inspect(name)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    config = dict(info.get("Config") or {})
    config["AttachStdin"] = interactive and config.get("OpenStdin", False)
    config["AttachStdout"] = config["AttachStderr"] = True
    auto_remove = (info.get("HostConfig") or {}).get("AutoRemove")
    return attach_start_wait(
        session,
        info["Id"],
        config,
        "removed" if auto_remove else "next-exit",
        detach_keys=detach_keys,
        sig_proxy=not config.get("Tty"),
    )
