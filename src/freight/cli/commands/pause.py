"""``pause``, ``unpause`` and ``rename``.

Owns: their command lines and output. pause/unpause act on every named
container, echo each that worked and report each failure (docker's way, via
lifecycle.each); rename prints the daemon's error and then docker's own
"Error: failed to rename container named OLD".
"""

from __future__ import annotations

from freight.cli.commands.lifecycle import each
from freight.cli.flags import Command
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

PAUSE = Command(
    "pause",
    "CONTAINER [CONTAINER...]",
    "Pause all processes within one or more containers",
    min_args=1,
    aliases=("freight container pause", "freight pause"),
)
UNPAUSE = Command(
    "unpause",
    "CONTAINER [CONTAINER...]",
    "Unpause all processes within one or more containers",
    min_args=1,
    aliases=("freight container unpause", "freight unpause"),
)
RENAME = Command(
    "rename",
    "CONTAINER NEW_NAME",
    "Rename a container",
    min_args=2,
    max_args=2,
    aliases=("freight container rename", "freight rename"),
)


def _q(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def pause_main(session: Session, argv: list[str]) -> int:
    _, args = PAUSE.parse(argv)
    return each(session, args, lambda n: _post(session, n, "pause"))


def unpause_main(session: Session, argv: list[str]) -> int:
    _, args = UNPAUSE.parse(argv)
    return each(session, args, lambda n: _post(session, n, "unpause"))


def _post(session: Session, name: str, action: str) -> None:
    session.api.http.request("POST", f"/containers/{_q(name)}/{action}").read()


def rename_main(session: Session, argv: list[str]) -> int:
    _, (old, new) = RENAME.parse(argv)
    old, new = old.strip(), new.strip()
    if not old or not new:
        raise CliError("Error: Neither old nor new names may be empty")
    try:
        session.api.http.request(
            "POST", f"/containers/{_q(old)}/rename", params={"name": new}
        ).read()
    except ApiError as exc:
        session.err(f"{exc}\n")
        raise CliError(f"Error: failed to rename container named {old}") from None
    return 0
