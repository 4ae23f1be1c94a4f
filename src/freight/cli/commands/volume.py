"""``volume create|ls|inspect|rm|prune``: docker's volume commands.

Owns: their flags, output (``volume ls`` table and ``--format``, inspect as
an indented JSON array or a Go template) and exit statuses.
"""

from __future__ import annotations

from freight.cli.confirm import confirm
from freight.cli.flags import Command, Flag, key_value_map
from freight.cli.formatter import inspect_each, render, resolve_format
from freight.cli.session import CliError, Session
from freight.cli.units import human_size
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CREATE = Command(
    "volume create",
    "[OPTIONS] [VOLUME]",
    "Create a volume",
    [
        Flag("driver", "d", "string", 'Specify volume driver name (default "local")'),
        Flag("label", "", "list", "Set metadata for a volume"),
        Flag("name", "", "string", "Specify volume name", hidden=True),
        Flag("opt", "o", "list", "Set driver specific options (default map[])", type_name="map"),
    ],
    max_args=1,
)
LS = Command(
    "volume ls",
    "[OPTIONS]",
    "List volumes",
    [
        Flag(
            "filter",
            "f",
            "list",
            "Provide filter values (e.g. 'dangling=true')",
            type_name="filter",
        ),
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("quiet", "q", help="Only display volume names"),
    ],
    max_args=0,
    aliases=("freight volume ls", "freight volume list"),
)
INSPECT = Command(
    "volume inspect",
    "[OPTIONS] VOLUME [VOLUME...]",
    "Display detailed information on one or more volumes",
    [Flag("format", "f", "string", "Format output using a custom template")],
    min_args=1,
)
RM = Command(
    "volume rm",
    "[OPTIONS] VOLUME [VOLUME...]",
    "Remove one or more volumes",
    [Flag("force", "f", help="Force the removal of one or more volumes")],
    min_args=1,
    aliases=("freight volume rm", "freight volume remove"),
)
PRUNE = Command(
    "volume prune",
    "[OPTIONS]",
    "Remove unused local volumes",
    [
        Flag("all", "a", help="Remove all unused volumes, not just anonymous ones"),
        Flag(
            "filter", "", "list", "Provide filter values (e.g. 'label=<label>')", type_name="filter"
        ),
        Flag("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)

LS_TABLE = "table {{.Driver}}\t{{.Name}}"
LS_HEADERS = {
    "Driver": "DRIVER",
    "Name": "VOLUME NAME",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "CreatedAt": "CREATED",
    "Size": "SIZE",
    "Links": "LINKS",
}


class VolumeRow:
    """The fields ``volume ls --format`` knows (docker's volumeContext)."""

    FIELDS = ("Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name", "Scope", "Size", "Status")  # fmt: skip

    def __init__(self, v: dict[str, Any]) -> None:
        self.v = v

    def Name(self) -> str:  # noqa: N802 - docker's field names are the template API
        return self.v.get("Name", "")

    def Driver(self) -> str:  # noqa: N802
        return self.v.get("Driver", "")

    def Scope(self) -> str:  # noqa: N802
        return self.v.get("Scope", "")

    def Mountpoint(self) -> str:  # noqa: N802
        return self.v.get("Mountpoint", "")

    def Labels(self) -> str:  # noqa: N802
        return ",".join(f"{k}={v}" for k, v in sorted((self.v.get("Labels") or {}).items()))

    def Label(self, name: str) -> str:  # noqa: N802
        return (self.v.get("Labels") or {}).get(name, "")

    def Links(self) -> str:  # noqa: N802
        usage = self.v.get("UsageData")
        return str(usage["RefCount"]) if usage else "N/A"

    def Size(self) -> str:  # noqa: N802
        usage = self.v.get("UsageData")
        return human_size(usage["Size"]) if usage else "N/A"

    def Group(self) -> str:  # noqa: N802
        return ""

    def Availability(self) -> str:  # noqa: N802
        return "N/A"

    def Status(self) -> str:  # noqa: N802
        return "N/A"

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name)() for name in self.FIELDS}


def _filters(items: list[str]) -> dict[str, list[str]]:
    from freight.cli.commands.ps import parse_filters

    return parse_filters(items)


def create_main(session: Session, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv)
    name = args[0] if args else opts["name"] or ""
    if args and opts["name"] and opts["name"] != args[0]:
        raise CliError(
            "conflicting options: either specify --name or provide positional arg, not both"
        )
    body = {
        "Name": name,
        "Driver": opts["driver"] or "local",
        "DriverOpts": key_value_map(opts["opt"], "-o, --opt"),
        "Labels": key_value_map(opts["label"]),
    }
    try:
        volume = session.api.volume_create(body)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(volume["Name"] + "\n")
    return 0


def ls_main(session: Session, argv: list[str]) -> int:
    opts, _ = LS.parse(argv)
    fmt = resolve_format(opts["format"], LS_TABLE, opts["quiet"], "{{.Name}}")
    try:
        found = session.api.volumes(filters=_filters(opts["filter"]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    rows = [VolumeRow(v) for v in sorted(found.get("Volumes") or [], key=lambda v: v["Name"])]
    session.out(render(fmt, rows, LS_HEADERS))
    return 0


def inspect_main(session: Session, argv: list[str]) -> int:
    opts, args = INSPECT.parse(argv)
    return inspect_each(session, args, session.api.volume_inspect, "volume", opts["format"])


def rm_main(session: Session, argv: list[str]) -> int:
    opts, args = RM.parse(argv)
    status = 0
    for name in args:
        try:
            session.api.volume_remove(name, force=opts["force"])
        except ApiError as exc:
            session.err(f"{exc}\n")
            status = 1
            continue
        session.out(name + "\n")
    return status


def prune_main(session: Session, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv)
    filters = _filters(opts["filter"])
    if opts["all"]:
        filters.setdefault("all", []).append("true")
    which = "all local volumes" if opts["all"] else "anonymous local volumes"
    warning = f"WARNING! This will remove {which} not used by at least one container."
    if not opts["force"] and not confirm(warning):
        return 0
    try:
        report = session.api.volume_prune(filters=filters)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        session.out("Deleted Volumes:\n" + "".join(f"{name}\n" for name in deleted) + "\n")
    session.out(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0
