"""``freight builder prune``: remove the build cache.

Owns: its flags, the confirmation prompt (skipped with ``-f``; a closed stdin
answers no) and docker's output ("Deleted build cache objects:" then one ID
per line, "Total reclaimed space: 1.2MB"). ``POST /build/prune`` does the work.
"""

from __future__ import annotations

from freight.cli.confirm import confirm
from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.cli.units import ram_in_bytes
from freight.client.http import ApiError
from freight.dockerapi.humanize import human_size

PRUNE = Command(
    "builder prune",
    "[OPTIONS]",
    "Remove build cache",
    [
        Flag("all", "a", help="Remove all unused build cache, not just dangling ones"),
        Flag("filter", "", "list", 'Provide filter values (e.g. "until=24h")', type_name="filter"),
        Flag("force", "f", help="Do not prompt for confirmation"),
        Flag(
            "keep-storage",
            "",
            "string",
            "Amount of disk space to keep for cache",
            type_name="bytes",
            convert=ram_in_bytes,
        ),
    ],
    max_args=0,
)

WARN_DANGLING = "WARNING! This will remove all dangling build cache."
WARN_ALL = "WARNING! This will remove all build cache."


def prune_main(session: Session, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv)
    from freight.cli.commands.ps import parse_filters

    filters = parse_filters(opts["filter"])
    if not opts["force"] and not confirm(WARN_ALL if opts["all"] else WARN_DANGLING):
        session.out("\n")
        return 0
    try:
        report = session.api.build_prune(
            all=bool(opts["all"]), filters=filters, keep_storage=opts["keep_storage"]
        )
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(prune_report(report))
    return 0


def prune_report(report: dict) -> str:
    deleted = report.get("CachesDeleted") or []
    text = "Deleted build cache objects:\n" + "".join(f"{c}\n" for c in deleted) + "\n"
    total = human_size(report.get("SpaceReclaimed") or 0)
    return (text if deleted else "") + f"Total reclaimed space: {total}\n"
