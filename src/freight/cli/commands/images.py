"""Image commands: ``images``, ``rmi``, ``tag``, ``history``, ``import``,
``image bootstrap``.

Owns: their flags and calls; image rows and columns are in
``cli.listing``, JSON-message output in ``cli.progress``.
"""

from __future__ import annotations

import sys

from freight.cli.flags import Command, Flag
from freight.cli.formatter import render, resolve_format
from freight.cli.listing import (
    HISTORY_HEADERS,
    HISTORY_TABLE,
    IMAGES_DIGEST_TABLE,
    IMAGES_HEADERS,
    IMAGES_TABLE,
    HistoryRow,
    image_rows,
)
from freight.cli.progress import show_messages
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

IMAGES = Command(
    "images",
    "[OPTIONS] [REPOSITORY[:TAG]]",
    "List images",
    [
        Flag("all", "a", help="Show all images (default hides intermediate images)"),
        Flag("digests", "", help="Show digests"),
        Flag(
            "filter", "f", "list", "Filter output based on conditions provided", type_name="filter"
        ),
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("no-trunc", "", help="Don't truncate output"),
        Flag("quiet", "q", help="Only show image IDs"),
    ],
    max_args=1,
    aliases=("freight image ls", "freight image list", "freight images"),
)
RMI = Command(
    "rmi",
    "[OPTIONS] IMAGE [IMAGE...]",
    "Remove one or more images",
    [
        Flag("force", "f", help="Force removal of the image"),
        Flag("no-prune", "", help="Do not delete untagged parents"),
    ],
    min_args=1,
    aliases=("freight image rm", "freight image remove", "freight rmi"),
)
TAG = Command(
    "tag",
    "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    min_args=2,
    max_args=2,
    aliases=("freight image tag", "freight tag"),
)
HISTORY = Command(
    "history",
    "[OPTIONS] IMAGE",
    "Show the history of an image",
    [
        Flag("format", "", "string", "Format output using a custom template"),
        Flag(
            "human",
            "H",
            help="Print sizes and dates in human readable format (default true)",
            default=True,
        ),
        Flag("no-trunc", "", help="Don't truncate output"),
        Flag("quiet", "q", help="Only show image IDs"),
    ],
    min_args=1,
    max_args=1,
    aliases=("freight image history", "freight history"),
)
IMPORT = Command(
    "import",
    "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    "Import the contents from a tarball to create a filesystem image",
    [
        Flag("change", "c", "list", "Apply Dockerfile instruction to the created image"),
        Flag("message", "m", "string", "Set commit message for imported image"),
    ],
    min_args=1,
    max_args=2,
    aliases=("freight image import", "freight import"),
)
BOOTSTRAP = Command(
    "image bootstrap",
    "NAME",
    "Create a base image (busybox[:tag] or debian:bookworm) without a registry",
    min_args=1,
    max_args=1,
)


def split_tag(ref: str) -> tuple[str, str | None]:
    """'repo/name:tag' -> ('repo/name', 'tag'); a ':' before the last '/' is a port."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, None
    return repo, tag


def images_main(session: Session, argv: list[str]) -> int:
    from freight.cli.commands.ps import parse_filters

    opts, args = IMAGES.parse(argv)
    filters = parse_filters(opts["filter"])
    if args:
        filters.setdefault("reference", []).append(args[0])
    default = IMAGES_DIGEST_TABLE if opts["digests"] else IMAGES_TABLE
    fmt = resolve_format(opts["format"], default, opts["quiet"])
    try:
        images = session.api.images(all=opts["all"], filters=filters)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    rows = image_rows(images, trunc=not opts["no_trunc"])
    if opts["quiet"]:
        rows = list({row.ID(): row for row in rows}.values())  # one line per image
    session.out(render(fmt, rows, IMAGES_HEADERS))
    return 0


def rmi_main(session: Session, argv: list[str]) -> int:
    opts, args = RMI.parse(argv)
    status = 0
    for name in args:
        try:
            deleted = session.api.image_remove(name, force=opts["force"], noprune=opts["no_prune"])
        except ApiError as exc:
            session.error(str(exc))
            status = 1
            continue
        for item in deleted:
            if item.get("Untagged"):
                session.out(f"Untagged: {item['Untagged']}\n")
            if item.get("Deleted"):
                session.out(f"Deleted: {item['Deleted']}\n")
    return status


def tag_main(session: Session, argv: list[str]) -> int:
    _, (source, target) = TAG.parse(argv)
    repo, tag = split_tag(target)
    try:
        session.api.image_tag(source, repo, tag or "latest")
    except ApiError as exc:
        raise CliError(str(exc)) from None
    return 0


def history_main(session: Session, argv: list[str]) -> int:
    opts, args = HISTORY.parse(argv)
    try:
        entries = session.api.image_history(args[0])
    except ApiError as exc:
        raise CliError(str(exc)) from None
    fmt = resolve_format(opts["format"], HISTORY_TABLE, opts["quiet"])
    rows = [HistoryRow(h, trunc=not opts["no_trunc"], human=opts["human"]) for h in entries]
    session.out(render(fmt, rows, HISTORY_HEADERS))
    return 0


def import_main(session: Session, argv: list[str]) -> int:
    opts, args = IMPORT.parse(argv)
    source = args[0]
    repo, tag = split_tag(args[1]) if len(args) > 1 else (None, None)
    kwargs: dict[str, Any] = {
        "repo": repo,
        "tag": tag,
        "message": opts["message"],
        "changes": opts["change"],
    }
    try:
        if source == "-":
            messages = session.api.image_import(sys.stdin.buffer, **kwargs)
        elif "://" in source:
            messages = session.api.image_import(source, **kwargs)
        else:
            with open(source, "rb") as f:
                messages = session.api.image_import(f, **kwargs)
        show_messages(messages)
    except OSError as exc:
        raise CliError(f"open {source}: {exc.strerror.lower() if exc.strerror else exc}") from None
    except ApiError as exc:
        raise CliError(str(exc)) from None
    return 0


def bootstrap_main(session: Session, argv: list[str]) -> int:
    _, args = BOOTSTRAP.parse(argv)
    try:
        last = show_messages(session.api.image_bootstrap(args[0]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    if not last:
        raise CliError("the daemon ended the bootstrap stream without a result")
    return 0
