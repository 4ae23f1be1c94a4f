"""``freight ps``: list containers like ``docker ps``.

Owns: ps's flags (-a -q -s -n -l --no-trunc -f --format) and turning them
into ``GET /containers/json`` parameters; rows and columns are in
``cli.listing``.
"""

from __future__ import annotations

from freight.cli.flags import Command, Flag
from freight.cli.formatter import render, resolve_format
from freight.cli.listing import PS_HEADERS, PS_TABLE, ContainerRow
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

PS = Command(
    "ps",
    "[OPTIONS]",
    "List containers",
    [
        Flag("all", "a", help="Show all containers (default shows just running)"),
        Flag(
            "filter", "f", "list", "Filter output based on conditions provided", type_name="filter"
        ),
        Flag("format", "", "string", "Format output using a custom template"),
        Flag(
            "last", "n", "int", "Show n last created containers (includes all states) (default -1)"
        ),
        Flag("latest", "l", help="Show the latest created container (includes all states)"),
        Flag("no-trunc", "", help="Don't truncate output"),
        Flag("quiet", "q", help="Only display container IDs"),
        Flag("size", "s", help="Display total file sizes"),
    ],
    max_args=0,
    aliases=(
        "freight container ls",
        "freight container list",
        "freight container ps",
        "freight ps",
    ),
)


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """``-f key=value`` repeated -> {"key": [values]} (docker's filters.Args)."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise CliError("bad format of filter (expected name=value)")
        filters.setdefault(key.strip().lower(), []).append(value.strip())
    return filters


def main(session: Session, argv: list[str]) -> int:
    opts, _ = PS.parse(argv)
    limit = 1 if opts["latest"] else opts["last"]
    fmt = resolve_format(opts["format"], PS_TABLE, opts["quiet"])
    size = opts["size"] or ".Size" in fmt
    if opts["size"] and fmt == PS_TABLE:
        fmt += "\t{{.Size}}"
    try:
        containers = session.api.containers(
            all=opts["all"] or (limit is not None and limit > 0),
            limit=limit if limit is not None and limit > 0 else None,
            size=size,
            filters=parse_filters(opts["filter"]),
        )
    except ApiError as exc:
        raise CliError(str(exc)) from None
    rows = [ContainerRow(c, trunc=not opts["no_trunc"]) for c in containers]
    session.out(render(fmt, rows, PS_HEADERS))
    return 0
