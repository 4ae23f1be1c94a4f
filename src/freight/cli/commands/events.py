"""``freight events`` / ``freight system events``: the daemon's event stream, as ``docker events``.

Owns: the flags, turning ``--since``/``--until`` into the API's
``seconds.nanoseconds`` (docker's timetypes.GetTimestamp: RFC 3339 with or
without fraction and zone, a date, Unix seconds, or a Go duration counted
back from now), ``--filter k=v`` into the filters JSON the docker CLI
sends, and printing each event the moment it arrives: docker's line

    2026-12-03T12:00:00.123456789Z container start 0123abc… (image=busybox, name=x)

(time in the local zone, attributes sorted by key) or ``--format`` through a
Go template whose fields are docker's (``.Type``, ``.Action``, ``.Actor.ID``,
``.Actor.Attributes``, ``.Scope``, ``.Time``, ``.TimeNano``, ``.Status``,
``.ID``, ``.From``); ``{{json .}}`` prints the message as the daemon sent it.
Ctrl-C ends the stream (main turns it into status 130, as a signal would).
"""

from __future__ import annotations

import sys
import time

from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.http import ApiError, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EVENTS = Command(
    "events",
    "[OPTIONS]",
    "Get real time events from the server",
    [
        Flag(
            "filter", "f", "list", "Filter output based on conditions provided", type_name="filter"
        ),
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("since", "", "string", "Show all events created since timestamp"),
        Flag("until", "", "string", "Stream events until this timestamp"),
    ],
    max_args=0,
    aliases=("freight system events", "freight events"),
)

_NS = 1_000_000_000


def main(session: Session, argv: list[str]) -> int:
    opts, _ = EVENTS.parse(argv)
    now_ns = time.time_ns()
    params: dict[str, Any] = {
        "since": api_timestamp(opts["since"], now_ns) if opts["since"] else None,
        "until": api_timestamp(opts["until"], now_ns) if opts["until"] else None,
    }
    filters = filter_json(opts["filter"] or [])
    if filters:
        params["filters"] = filters
    printer = _printer(opts["format"])
    try:
        response = session.api.http.request("GET", "/events", params=params)
        sys.stdout.flush()
        for message in response.iter_json():
            sys.stdout.write(printer(message))
            sys.stdout.flush()  # one event, one write: `freight events | grep` sees it now
    except ApiError as exc:
        raise CliError(str(exc)) from None
    except ProtocolError:
        raise CliError(
            "unexpected EOF"
        ) from None  # the daemon went away mid-stream, as docker says
    return 0


# --since / --until ----------------------------------------------------------


def api_timestamp(value: str, now_ns: int) -> str:
    """docker's GetTimestamp: the ``seconds.nanoseconds`` text the API takes."""
    from freight.cli.commands.logs import go_duration

    duration = go_duration(value)
    if duration is not None and value != "0":
        return str((now_ns - round(duration * _NS)) // _NS)  # whole seconds, as docker's
    ns = parse_time_ns(value)
    if ns is not None:
        return _ns_text(ns)
    if "-" in value:
        raise CliError(f'parsing time "{value}": cannot parse as RFC 3339')
    seconds, dot, frac = value.partition(".")
    if not seconds.isdigit() or (dot and not frac.isdigit()):
        raise CliError(f'failed to parse value as time or duration: "{value}"')
    return value  # Unix seconds ("1700000000", "1700000000.5") go as they are


def _ns_text(ns: int) -> str:
    seconds, frac = divmod(ns, _NS)
    return f"{seconds}.{frac:09d}"


def parse_time_ns(value: str) -> int | None:
    """An RFC 3339 time or date (no zone: the local one) in nanoseconds; None if not one."""
    import re
    from datetime import UTC, datetime, timedelta, timezone

    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
        r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
        value,
    )
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, utc, sign, oh, om = m.groups()
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError as exc:
        raise CliError(f'parsing time "{value}": {exc}') from None
    if utc:
        when = when.replace(tzinfo=UTC)
    elif sign:
        offset = timedelta(hours=int(oh), minutes=int(om))
        when = when.replace(tzinfo=timezone(-offset if sign == "-" else offset))
    else:
        when = when.astimezone()  # a naive time is the local zone's, as docker reads it
    return int(when.timestamp()) * _NS + int((frac or "0").ljust(9, "0"))


# --filter -------------------------------------------------------------------


def filter_json(items: list[str]) -> dict[str, dict[str, bool]]:
    """`k=v` pairs as the docker CLI sends them: {"k": {"v": true}}."""
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise CliError(f"bad format of filter (expected name=value): {item}")
        out.setdefault(key.strip().lower(), {})[value] = True
    return out


# output ---------------------------------------------------------------------


def _printer(fmt: str | None) -> Any:
    if not fmt:
        return format_event
    from freight.cli.formatter import expand_escapes
    from freight.cli.gotemplate import Template, TemplateError

    source = "{{json .}}" if fmt == "json" else expand_escapes(fmt)
    try:
        template = Template(source)
    except TemplateError as exc:
        raise CliError(f"template parsing error: {exc}") from None

    def render(message: dict[str, Any]) -> str:
        try:
            return template.execute(EventView(message)) + "\n"
        except TemplateError as exc:
            raise CliError(f"template: {exc}") from None

    return render


def format_event(message: dict[str, Any]) -> str:
    """docker's default line: time, type, action, actor id, (sorted attributes)."""
    actor = message.get("Actor") or {}
    ns = message.get("timeNano") or (message.get("time") or 0) * _NS
    head = f"{format_time(ns)} " if ns else ""
    line = f"{head}{message.get('Type', '')} {message.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def format_time(ns: int) -> str:
    """Go's RFC3339NanoFixed in the local zone: 2006-01-02T15:04:05.000000000Z07:00."""
    seconds, frac = divmod(ns, _NS)
    tm = time.localtime(seconds)
    offset = tm.tm_gmtoff or 0
    zone = "Z"
    if offset:
        sign = "+" if offset > 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{frac:09d}{zone}"


class EventView:
    """An event message with the Go field names docker's templates use."""

    def __init__(self, message: dict[str, Any]) -> None:
        self._message = message
        self.Type = message.get("Type", "")
        self.Action = message.get("Action", "")
        self.Actor = message.get("Actor") or {"ID": "", "Attributes": {}}
        self.Scope = message.get("scope", "")
        self.Time = message.get("time", 0)
        self.TimeNano = message.get("timeNano", 0)
        self.Status = message.get("status", "")
        self.ID = message.get("id", "")
        self.From = message.get("from", "")

    def to_json(self) -> dict[str, Any]:
        return self._message
