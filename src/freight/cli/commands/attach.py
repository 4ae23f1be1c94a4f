"""``freight attach``: join a running container's stdio, as docker/cli's attach.go.

Owns: docker's sequence — send ``POST /containers/{id}/wait`` first (so the
exit is not missed), inspect and refuse a stopped/paused/restarting
container, the TTY check, signal proxying (without a TTY), the hijacked
attach (``stdin`` only if the container has ``OpenStdin`` and no
``--no-stdin``), a second state check, the resize nudge (one row and column
more, then the real size, so a shell redraws its prompt), the copy loop and
the container's exit status.

Detach with the keys on a TTY prints "read escape sequence" and exits 1, as
docker does; a detach the daemon made (no TTY) exits 0 quietly.
"""

from __future__ import annotations

import os
import sys

from freight.cli.attach import DETACHED, ESCAPED, Interactive, Target
from freight.cli.containerspec import DETACH_KEYS_HELP
from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.cli.terminal import check_tty, parse_detach_keys
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from freight.client.api import EngineAPI

ATTACH = Command(
    "attach",
    "[OPTIONS] CONTAINER",
    "Attach local standard input, output, and error streams to a running container",
    [
        Flag("detach-keys", "", "string", DETACH_KEYS_HELP),
        Flag("no-stdin", "", help="Do not attach STDIN"),
        Flag(
            "sig-proxy",
            "",
            help="Proxy all received signals to the process (default true)",
            default=True,
        ),
    ],  # fmt: skip
    min_args=1,
    max_args=1,
    aliases=("freight container attach", "freight attach"),
)


def running_container(api: EngineAPI, name: str) -> dict[str, Any]:
    """docker's inspectContainerAndCheckState."""
    try:
        info = api.container_inspect(name)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CliError("cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CliError("cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CliError("cannot attach to a restarting container, wait until it is running")
    return info


def main(session: Session, argv: list[str]) -> int:
    opts, args = ATTACH.parse(argv)
    api = session.api
    waiter = api.container_wait_begin(args[0], None)  # docker sends no condition here
    try:
        return _attach(session, args[0], opts, waiter)
    finally:
        waiter.close()


def _attach(session: Session, name: str, opts: dict[str, Any], waiter: Any) -> int:
    api = session.api
    info = running_container(api, name)
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    check_tty(not opts["no_stdin"], tty)
    stdin = not opts["no_stdin"] and bool(config.get("OpenStdin"))
    keys = parse_detach_keys(opts["detach_keys"])
    monitor = tty and os.isatty(sys.stdout.fileno())
    target = Target(api, info["Id"])
    sig_proxy = opts["sig_proxy"] and not tty
    with Interactive(
        target, tty=tty, stdin=stdin, detach_keys=keys, sig_proxy=sig_proxy, monitor_size=monitor
    ) as interactive:
        try:
            conn = api.container_attach(
                info["Id"], stdin=stdin, stdout=True, stderr=True, detach_keys=opts["detach_keys"]
            )
        except ApiError as exc:
            raise CliError(str(exc)) from None
        running_container(api, name)
        interactive.start_resizing(bump=True)
        outcome = interactive.stream(conn)
        conn.close()
        if outcome == ESCAPED:
            raise CliError("read escape sequence", 1)
        if outcome == DETACHED:
            return 0
        interactive.wait_readable(waiter)
    try:
        return int(waiter.result().get("StatusCode", 0))
    except ApiError as exc:
        raise CliError(str(exc)) from None
