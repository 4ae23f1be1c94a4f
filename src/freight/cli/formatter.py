"""``--format`` for list commands, as docker's formatter package does it.

Owns: choosing the template ("table", "table TEMPLATE", "json", a raw
template, ``-q``), expanding ``\\t``/``\\n`` escapes, the header row (the
template run against the column names, with text functions passing the
names through) and aligning tables with the Go tabwriter rules.
"""

from __future__ import annotations

from freight.cli.gotemplate import HEADER_FUNCS, Template, TemplateError
from freight.cli.session import CliError
from freight.cli.tabwriter import align
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from freight.cli.session import Session

TABLE = "table"


class _Header:
    """Stands in for a row when the header is rendered: fields give column names."""

    def __init__(self, names: dict[str, str]) -> None:
        self._names = names

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        name = self._names.get(field, field.upper())
        return lambda *args: name


def expand_escapes(fmt: str) -> str:
    # docker turns the two-character sequences \t and \n into real ones.
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def resolve_format(
    fmt: str | None, default_table: str, quiet: bool, quiet_field: str = "{{.ID}}"
) -> str:
    """The effective format: quiet wins over table defaults, json is {{json .}}."""
    if quiet and (not fmt or fmt == TABLE):
        return quiet_field
    if not fmt or fmt == TABLE:
        return default_table
    if fmt == "json":
        return "{{json .}}"
    return fmt


def render(fmt: str, rows: list[Any], headers: dict[str, str]) -> str:
    """Every row through the template; tables get a header and alignment."""
    is_table = fmt.startswith(TABLE)
    body = expand_escapes(fmt[len(TABLE) :] if is_table else fmt).strip(" ")
    try:
        template = Template(body)
        lines = [template.execute(row) + "\n" for row in rows]
        if not is_table:
            return "".join(lines)
        header = Template(body, HEADER_FUNCS).execute(_Header(headers)) + "\n"
    except TemplateError as exc:
        raise CliError(f"template: {exc}") from None
    return align(header + "".join(lines))


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to ``width`` characters ending in '…'."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def inspect_each(
    session: Session, refs: list[str], fetch: Callable[[str], Any], kind: str, fmt: str | None
) -> int:
    """docker's `X inspect`: a JSON array (4-space indent) or `fmt` per object.

    An object that is missing is reported ("Error: No such network: x") and
    the others are still shown; the status is then 1.
    """
    import json  # not at import time: `ps` loads this module

    template = None
    if fmt:
        try:
            template = Template(fmt)
        except TemplateError as exc:
            raise CliError(f"template parsing error: {exc}") from None
    found, status = [], 0
    for ref in refs:
        try:
            found.append(fetch(ref))
        except ApiError as exc:
            session.err(f"{exc}\n" if exc.status != 404 else f"Error: No such {kind}: {ref}\n")
            status = 1
    if template is None:
        session.out((json.dumps(found, indent=4, ensure_ascii=False) if found else "[]") + "\n")
        return status
    try:
        for doc in found:
            session.out(template.execute(doc) + "\n")
    except TemplateError as exc:
        raise CliError(f"template: {exc}") from None
    return status
