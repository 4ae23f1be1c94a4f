"""Image archive commands: ``save`` and ``load``."""

from __future__ import annotations

import sys

from freight.cli.commands.commit import copy_response, output_file, vcs
from freight.cli.flags import Command, Flag
from freight.cli.progress import show_messages
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

SAVE = Command(
    "save",
    "[OPTIONS] IMAGE [IMAGE...]",
    "Save one or more images to a tar archive (streamed to STDOUT by default)",
    [Flag("output", "o", "string", "Write to a file, instead of STDOUT")],
    min_args=1,
    aliases=("freight image save", "freight save"),
)
LOAD = Command(
    "load",
    "[OPTIONS]",
    "Load an image from a tar archive or STDIN",
    [
        Flag("input", "i", "string", "Read from tar archive file, instead of STDIN"),
        Flag("quiet", "q", help="Suppress the load output"),
    ],
    max_args=0,
    aliases=("freight image load", "freight load"),
)


def save_main(session: Session, argv: list[str]) -> int:
    opts, args = SAVE.parse(argv)
    with output_file(opts["output"]) as out:
        try:
            copy_response(vcs(session).images_get(args), out)
        except ApiError as exc:
            raise CliError(str(exc)) from None
    return 0


def load_main(session: Session, argv: list[str]) -> int:
    opts, _ = LOAD.parse(argv)
    path = opts["input"]
    if not path and sys.stdin.isatty():
        raise CliError("requested load from stdin, but stdin is empty")
    try:
        source = open(path, "rb") if path else sys.stdin.buffer  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        # Quiet hides progress only: the "Loaded image" lines are printed as docker does.
        show_messages(vcs(session).images_load(source, quiet=opts["quiet"]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    finally:
        if path:
            source.close()
    return 0
