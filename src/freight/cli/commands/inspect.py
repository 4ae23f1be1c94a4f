"""``freight inspect``: low-level JSON of containers and images.

Owns: looking each name up (container first, then image, unless ``--type``
says which), printing them as one indented JSON array like docker, or each
through ``-f`` — a Go template over the raw API JSON, so
``{{.State.Status}}`` and ``{{.Config.Env}}`` (``[A=1 B=2]``) work.
"""

from __future__ import annotations

import json

from freight.cli.flags import Command, Flag
from freight.cli.formatter import expand_escapes
from freight.cli.gotemplate import Template, TemplateError
from freight.cli.session import CliError, Session
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _flags(with_type: bool) -> list[Flag]:
    flags = [
        Flag("format", "f", "string", "Format output using a custom template"),
        Flag("size", "s", help="Display total file sizes if the type is container"),
    ]
    if with_type:
        flags.append(Flag("type", "", "string", "Only inspect objects of the given type"))
    return flags


INSPECT = Command(
    "inspect", "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects",
    _flags(True), min_args=1,
)  # fmt: skip
CONTAINER_INSPECT = Command(
    "container inspect", "[OPTIONS] CONTAINER [CONTAINER...]",
    "Display detailed information on one or more containers", _flags(False), min_args=1,
)  # fmt: skip
IMAGE_INSPECT = Command(
    "image inspect", "[OPTIONS] IMAGE [IMAGE...]",
    "Display detailed information on one or more images", _flags(False), min_args=1,
)  # fmt: skip

_KINDS = ("container", "image")


def _lookup(session: Session, name: str, kind: str | None, size: bool) -> dict[str, Any]:
    api = session.api
    for candidate in (kind,) if kind else _KINDS:
        try:
            if candidate == "container":
                return api.container_inspect(name, size=size)
            return api.image_inspect(name)
        except ApiError as exc:
            if exc.status != 404 or kind:
                raise CliError(str(exc)) from None
    raise CliError(f"Error: No such object: {name}")


def inspect(
    session: Session, names: list[str], kind: str | None, fmt: str | None, size: bool
) -> int:
    if kind and kind not in _KINDS:
        raise CliError(f'"{kind}" is not a valid value for --type')
    template = None
    if fmt:
        try:
            template = Template(expand_escapes(fmt))
        except TemplateError as exc:
            raise CliError(f"template parsing error: {exc}") from None
    found, status = [], 0
    for name in names:
        try:
            found.append(_lookup(session, name, kind, size))
        except CliError as exc:
            session.error(exc.message)
            status = 1
    if template is None:
        text = json.dumps(found, indent=4, ensure_ascii=False) if found else "[]"
        session.out(text + "\n")
        return status
    for obj in found:
        try:
            session.out(template.execute(obj) + "\n")
        except TemplateError as exc:
            raise CliError(f"template: {exc}") from None
    return status


def main(session: Session, argv: list[str]) -> int:
    opts, args = INSPECT.parse(argv)
    return inspect(session, args, opts["type"], opts["format"], opts["size"])


def container_main(session: Session, argv: list[str]) -> int:
    opts, args = CONTAINER_INSPECT.parse(argv)
    return inspect(session, args, "container", opts["format"], opts["size"])


def image_main(session: Session, argv: list[str]) -> int:
    opts, args = IMAGE_INSPECT.parse(argv)
    return inspect(session, args, "image", opts["format"], False)
