"""``freight top CONTAINER [ps OPTIONS]``: the container's processes, as docker prints them.

Owns: the command line (everything after the container goes to ps, so
flags are not interspersed) and the table: docker aligns it with a
tabwriter of minimum width 20 and padding 3.
"""

from __future__ import annotations

from freight.cli.flags import Command
from freight.cli.session import CliError, Session
from freight.cli.tabwriter import align
from freight.client.http import ApiError

TOP = Command(
    "top",
    "CONTAINER [ps OPTIONS]",
    "Display the running processes of a container",
    min_args=1,
    interspersed=False,
    aliases=("freight container top", "freight top"),
)


def render(doc: dict) -> str:
    lines = ["\t".join(doc.get("Titles") or [])]
    lines += ["\t".join(p) for p in doc.get("Processes") or []]
    return align("\n".join(lines) + "\n", minwidth=20, padding=3)


def main(session: Session, argv: list[str]) -> int:
    from urllib.parse import quote

    _, args = TOP.parse(argv)
    name, ps_args = args[0], " ".join(args[1:])
    params = {"ps_args": ps_args} if ps_args else None
    try:
        doc = session.api.http.get_json(f"/containers/{quote(name, safe='')}/top", params)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(render(doc))
    return 0
