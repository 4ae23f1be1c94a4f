"""Pruning and disk usage: ``container prune``, ``image prune``, ``system prune``,
``system df``.

Owns: their flags, the confirmation prompt (skipped with ``-f``; a closed
stdin answers no) and docker's output ("Deleted Containers:", "Total
reclaimed space: 1.2MB", the df table).
"""

from __future__ import annotations

from freight.cli.commands.commit import vcs
from freight.cli.confirm import confirm
from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.http import ApiError
from freight.dockerapi.humanize import human_size

FILTER = Flag("filter", "", "list", 'Provide filter values (e.g. "until=<timestamp>")')
FORCE = Flag("force", "f", help="Do not prompt for confirmation")

CONTAINER_PRUNE = Command(
    "container prune", "[OPTIONS]", "Remove all stopped containers", [FILTER, FORCE], max_args=0
)
IMAGE_PRUNE = Command(
    "image prune",
    "[OPTIONS]",
    "Remove unused images",
    [Flag("all", "a", help="Remove all unused images, not just dangling ones"), FILTER, FORCE],
    max_args=0,
)
SYSTEM_PRUNE = Command(
    "system prune",
    "[OPTIONS]",
    "Remove unused data",
    [
        Flag("all", "a", help="Remove all unused images not just dangling ones"),
        FILTER,
        FORCE,
        Flag("volumes", "", help="Prune anonymous volumes"),
    ],
    max_args=0,
)
SYSTEM_DF = Command(
    "system df",
    "[OPTIONS]",
    "Show docker disk usage",
    [
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("verbose", "v", help="Show detailed information on space usage"),
    ],
    max_args=0,
)

WARN_CONTAINERS = "WARNING! This will remove all stopped containers."
WARN_DANGLING = "WARNING! This will remove all dangling images."
WARN_ALL_IMAGES = (
    "WARNING! This will remove all images without at least one container associated to them."
)


def _filters(values: list[str]) -> dict[str, list[str]]:
    from freight.cli.commands.ps import parse_filters

    return parse_filters(values)


def _confirm(session: Session, warning: str) -> bool:
    if confirm(warning):
        return True
    session.out("\n")
    return False


def _reclaimed(session: Session, total: int) -> None:
    session.out(f"Total reclaimed space: {human_size(total)}\n")


def container_prune_main(session: Session, argv: list[str]) -> int:
    opts, _ = CONTAINER_PRUNE.parse(argv)
    if not opts["force"] and not _confirm(session, WARN_CONTAINERS):
        return 0
    try:
        report = vcs(session).prune("containers", _filters(opts["filter"]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    _show_containers(session, report)
    _reclaimed(session, report.get("SpaceReclaimed") or 0)
    return 0


def _show_containers(session: Session, report: dict) -> None:
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        session.out("Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted) + "\n")


def _show_images(session: Session, report: dict) -> None:
    items = report.get("ImagesDeleted") or []
    if not items:
        return
    lines = ["Deleted Images:\n"]
    for item in items:
        if item.get("Untagged"):
            lines.append(f"untagged: {item['Untagged']}\n")
        if item.get("Deleted"):
            lines.append(f"deleted: {item['Deleted']}\n")
    session.out("".join(lines) + "\n")


def image_prune_main(session: Session, argv: list[str]) -> int:
    opts, _ = IMAGE_PRUNE.parse(argv)
    filters = _filters(opts["filter"])
    if opts["all"]:
        filters["dangling"] = ["false"]
    warning = WARN_ALL_IMAGES if opts["all"] else WARN_DANGLING
    if not opts["force"] and not _confirm(session, warning):
        return 0
    try:
        report = vcs(session).prune("images", filters)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    _show_images(session, report)
    _reclaimed(session, report.get("SpaceReclaimed") or 0)
    return 0


def system_prune_main(session: Session, argv: list[str]) -> int:
    opts, _ = SYSTEM_PRUNE.parse(argv)
    filters = _filters(opts["filter"])
    items = ["all stopped containers", "all networks not used by at least one container"]
    if opts["volumes"]:
        items.append("all anonymous volumes not used by at least one container")
    items.append(
        "all images without at least one container associated to them"
        if opts["all"]
        else "all dangling images"
    )
    items.append("unused build cache")
    warning = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if not opts["force"] and not _confirm(session, warning.rstrip("\n")):
        return 0
    api = vcs(session)
    total = 0
    try:
        report = api.prune("containers", filters)
        _show_containers(session, report)
        total += report.get("SpaceReclaimed") or 0
        networks = api.prune("networks", filters).get("NetworksDeleted") or []
        if networks:
            session.out("Deleted Networks:\n" + "".join(f"{n}\n" for n in networks) + "\n")
        if opts["volumes"]:
            report = api.prune("volumes", filters)
            volumes = report.get("VolumesDeleted") or []
            if volumes:
                session.out("Deleted Volumes:\n" + "".join(f"{v}\n" for v in volumes) + "\n")
            total += report.get("SpaceReclaimed") or 0
        image_filters = {**filters, "dangling": ["false"]} if opts["all"] else filters
        report = api.prune("images", image_filters)
        _show_images(session, report)
        total += report.get("SpaceReclaimed") or 0
        total += api.prune("build").get("SpaceReclaimed") or 0
    except ApiError as exc:
        raise CliError(str(exc)) from None
    _reclaimed(session, total)
    return 0


def system_df_main(session: Session, argv: list[str]) -> int:
    opts, _ = SYSTEM_DF.parse(argv)
    try:
        df = vcs(session).system_df()
    except ApiError as exc:
        raise CliError(str(exc)) from None
    rows = summary_rows(df)
    if opts["format"]:
        from freight.cli.formatter import render

        session.out(render(opts["format"], [_Row(r) for r in rows], {}))
        return 0
    session.out(_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows))
    if opts["verbose"]:
        session.out(_verbose(df))
    return 0


class _Row:
    """Template fields of a df summary row ({{.Type}}, {{.Size}}…)."""

    def __init__(self, row: list[str]) -> None:
        self.Type, self.TotalCount, self.Active, self.Size, self.Reclaimable = row


def summary_rows(df: dict) -> list[list[str]]:
    images = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    used_images = [i for i in images if (i.get("Containers") or 0) > 0]
    image_size = df.get("LayersSize") or 0
    used = sum(i["Size"] - max(i.get("SharedSize") or 0, 0) for i in used_images)
    shared = max((i.get("SharedSize") or 0 for i in used_images), default=0)
    image_reclaim = max(image_size - used - shared, 0)
    running = [c for c in containers if c.get("State") == "running"]
    c_size = sum(c.get("SizeRw") or 0 for c in containers)
    c_reclaim = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") != "running")
    v_used = [v for v in volumes if (v.get("UsageData") or {}).get("RefCount", 0) > 0]
    v_size = sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in volumes)
    v_reclaim = v_size - sum(max(v["UsageData"].get("Size", 0), 0) for v in v_used)
    return [
        ["Images", str(len(images)), str(len(used_images)), human_size(image_size),
         _percent(image_reclaim, image_size)],
        ["Containers", str(len(containers)), str(len(running)), human_size(c_size),
         _percent(c_reclaim, c_size)],
        ["Local Volumes", str(len(volumes)), str(len(v_used)), human_size(v_size),
         _percent(v_reclaim, v_size)],
        ["Build Cache", "0", "0", "0B", "0B"],
    ]  # fmt: skip


def _percent(part: int, total: int) -> str:
    if total <= 0:
        return human_size(part)
    return f"{human_size(part)} ({int(part * 100 / total)}%)"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "".join(
        "   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def _verbose(df: dict) -> str:
    out = ["\nImages space usage:\n\n"]
    rows = []
    for i in df.get("Images") or []:
        tags = i.get("RepoTags") or ["<none>:<none>"]
        repo, _, tag = tags[0].rpartition(":")
        rows.append([repo, tag, i["Id"].removeprefix("sha256:")[:12], str(i.get("Created", "")),
                     human_size(i["Size"]), human_size(max(i.get("SharedSize") or 0, 0)),
                     human_size(i["Size"] - max(i.get("SharedSize") or 0, 0)),
                     str(i.get("Containers", 0))])  # fmt: skip
    out.append(_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                       "UNIQUE SIZE", "CONTAINERS"], rows))  # fmt: skip
    out.append("\nContainers space usage:\n\n")
    rows = [
        [c["Id"][:12], c.get("Image", ""), str(c.get("Command", "")), "0",
         human_size(c.get("SizeRw") or 0), str(c.get("Created", "")), c.get("Status", ""),
         (c.get("Names") or ["/"])[0].lstrip("/")]
        for c in df.get("Containers") or []
    ]  # fmt: skip
    out.append(_table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE",
                       "CREATED", "STATUS", "NAMES"], rows))  # fmt: skip
    out.append("\nLocal Volumes space usage:\n\n")
    rows = [
        [v["Name"], str((v.get("UsageData") or {}).get("RefCount", 0)),
         human_size(max((v.get("UsageData") or {}).get("Size", 0), 0))]
        for v in df.get("Volumes") or []
    ]  # fmt: skip
    out.append(_table(["VOLUME NAME", "LINKS", "SIZE"], rows))
    out.append("\nBuild cache usage: 0B\n")
    return "".join(out)
