"""Container filesystem commands: ``commit``, ``diff``, ``export``.

Owns: their flags, output and the terminal checks docker makes; the
endpoints are in ``client.imagevcs``.
"""

from __future__ import annotations

import os
import sys

from freight.cli.commands.images import split_tag
from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

COMMIT = Command(
    "commit",
    "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    "Create a new image from a container's changes",
    [
        Flag("author", "a", "string", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
        Flag("change", "c", "list", "Apply Dockerfile instruction to the created image"),
        Flag("message", "m", "string", "Commit message"),
        Flag("pause", "p", help="Pause container during commit", default=True),
    ],
    min_args=1,
    max_args=2,
    aliases=("freight container commit", "freight commit"),
)
DIFF = Command(
    "diff",
    "CONTAINER",
    "Inspect changes to files or directories on a container's filesystem",
    min_args=1,
    max_args=1,
    aliases=("freight container diff", "freight diff"),
)
EXPORT = Command(
    "export",
    "[OPTIONS] CONTAINER",
    "Export a container's filesystem as a tar archive",
    [Flag("output", "o", "string", "Write to a file, instead of STDOUT")],
    min_args=1,
    max_args=1,
    aliases=("freight container export", "freight export"),
)

REFUSE_TERMINAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"


def vcs(session: Session):
    from freight.client.imagevcs import VcsAPI

    return VcsAPI(session.api.http)


def commit_main(session: Session, argv: list[str]) -> int:
    opts, args = COMMIT.parse(argv)
    repo, tag = split_tag(args[1]) if len(args) > 1 else (None, None)
    try:
        result = vcs(session).commit(
            args[0],
            repo=repo,
            tag=tag,
            comment=opts["message"],
            author=opts["author"],
            changes=opts["change"],
            pause=opts["pause"],
        )
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(result["Id"] + "\n")
    return 0


def diff_main(session: Session, argv: list[str]) -> int:
    _, args = DIFF.parse(argv)
    try:
        changes = vcs(session).container_changes(args[0])
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out("".join(f"{'CAD'[c['Kind']]} {c['Path']}\n" for c in changes))
    return 0


def export_main(session: Session, argv: list[str]) -> int:
    opts, args = EXPORT.parse(argv)
    with output_file(opts["output"]) as out:
        try:
            copy_response(vcs(session).container_export(args[0]), out)
        except ApiError as exc:
            raise CliError(str(exc)) from None
    return 0


class output_file:
    """`-o FILE` (written to FILE.tmp-…, renamed when complete, as docker), else stdout."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.tmp = f"{path}.tmp-{os.getpid()}" if path else None

    def __enter__(self):
        if self.tmp is None:
            if sys.stdout.isatty():
                raise CliError(REFUSE_TERMINAL)
            return sys.stdout.buffer
        try:
            self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise CliError(f"failed to save to {self.path}: {exc.strerror}") from None
        return self.file

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp is None:
            sys.stdout.buffer.flush()
            return
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def copy_response(response, out) -> None:
    for chunk in response.iter_chunks():
        out.write(chunk)
