"""``freight run``, ``create`` and ``start``: the container start path.

Owns: the docker CLI's run sequence — create (pulling on "No such image"
per ``--pull``), then, unless detached, attach *before* start and send the
wait request *before* start (so neither output nor the exit is missed),
start, copy output until EOF, and exit with the container's status — plus
docker's exit-status rule for start failures (127 not found, 126 permission
denied, else 125).
"""

from __future__ import annotations

import sys

from freight.cli.attach import RawTerminal, pump, terminal_size
from freight.cli.containerspec import CREATE, RUN, create_body
from freight.cli.flags import Command, Flag
from freight.cli.progress import show_messages
from freight.cli.session import CliError, Session
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
    name = familiar_with_tag(image)
    repo, _, tag = name.rpartition(":") if "@" not in name else (name, "", "")
    show_messages(session.api.image_pull(repo or name, tag or None), sys.stderr)


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


def run_main(session: Session, argv: list[str]) -> int:
    opts, args = RUN.parse(argv)
    if opts["detach"] and opts["attach"]:
        raise CliError("Conflicting options: -a and -d")
    body = create_body(opts, args[0], args[1:], opts["detach"])
    try:
        cid = create_container(session, body, opts["name"], opts["pull"] or "missing")
    except ApiError as exc:
        raise _reported(exc, with_help=True) from None
    if opts["detach"]:
        _start(session, cid)
        session.out(cid + "\n")
        return 0
    return attach_start_wait(session, cid, body, "removed" if opts["rm"] else "next-exit")


def create_main(session: Session, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv)
    body = create_body(opts, args[0], args[1:], detach=False)
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


def attach_start_wait(session: Session, cid: str, config: dict[str, Any], condition: str) -> int:
    """Attach, send wait, start, copy output; return the container's exit status."""
    api = session.api
    streams = {k: config.get(f"Attach{k.title()}", False) for k in ("stdin", "stdout", "stderr")}
    conn = api.container_attach(cid, stream=True, **streams) if any(streams.values()) else None
    waiter = api.container_wait_begin(cid, condition)
    try:
        _start(session, cid)
    except CliError:
        waiter.close()
        if conn is not None:
            conn.close()
        raise
    tty = bool(config.get("Tty"))
    if tty and (size := terminal_size()):
        _resize(session, cid, size)
    if conn is not None:
        with RawTerminal(tty and streams["stdin"]):
            pump(conn, tty=tty, send_stdin=streams["stdin"])
        conn.close()
    try:
        return int(waiter.result().get("StatusCode", 0))
    except ApiError as exc:
        raise CliError(str(exc)) from None


def _resize(session: Session, cid: str, size: tuple[int, int]) -> None:
    try:
        session.api.container_resize(cid, *size)
    except ApiError as exc:
        # A failed resize only makes the terminal look odd; say so and go on.
        session.error(f"failed to resize tty: {exc.message}")


def start_main(session: Session, argv: list[str]) -> int:
    opts, args = START.parse(argv)
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            raise CliError("you cannot start and attach multiple containers at once")
        return _start_attached(session, args[0], opts["interactive"])
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


def _start_attached(session: Session, name: str, interactive: bool) -> int:
    try:
        info = session.api.container_inspect(name)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    config = dict(info.get("Config") or {})
    config["AttachStdin"] = interactive and config.get("OpenStdin", False)
    config["AttachStdout"] = config["AttachStderr"] = True
    return attach_start_wait(session, info["Id"], config, "next-exit")
