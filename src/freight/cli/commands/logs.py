"""``freight logs``: fetch a container's output like ``docker logs``.

Owns: logs' flags, converting ``--since``/``--until`` (RFC 3339 times,
Unix seconds or Go durations such as ``42m``) into the API's Unix
timestamps, and writing the (demultiplexed unless TTY) stream out.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC

from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.demux import STDERR, Demuxer
from freight.client.http import ApiError
from freight.dockerapi import goduration

LOGS = Command(
    "logs",
    "[OPTIONS] CONTAINER",
    "Fetch the logs of a container",
    [
        Flag("details", "", help="Show extra details provided to logs"),
        Flag("follow", "f", help="Follow log output"),
        Flag(
            "since",
            "",
            "string",
            'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
        ),
        Flag(
            "tail",
            "n",
            "string",
            'Number of lines to show from the end of the logs (default "all")',
        ),
        Flag("timestamps", "t", help="Show timestamps"),
        Flag(
            "until",
            "",
            "string",
            'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
        ),
    ],
    min_args=1,
    max_args=1,
    aliases=("freight container logs", "freight logs"),
)


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration ('1h30m', '42m', '1.5s'), or None if it is not one."""
    return goduration.seconds_or_none(text)


def timestamp(value: str, now: float | None = None) -> str:
    """docker's timetypes.GetTimestamp: what ``since=``/``until=`` should carry."""
    import re

    now = time.time() if now is None else now
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    duration = go_duration(value)
    if duration is not None:
        return f"{now - duration:.9f}"
    from datetime import datetime

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f'invalid value for "since"/"until": {value}') from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"{when.timestamp():.9f}"


def main(session: Session, argv: list[str]) -> int:
    opts, args = LOGS.parse(argv)
    api = session.api
    try:
        info = api.container_inspect(args[0])
        response = api.container_logs(
            info["Id"],
            stdout=True,
            stderr=True,
            follow=opts["follow"] or None,
            timestamps=opts["timestamps"] or None,
            details=opts["details"] or None,
            tail=opts["tail"] or "all",
            since=timestamp(opts["since"]) if opts["since"] else None,
            until=timestamp(opts["until"]) if opts["until"] else None,
        )
    except ApiError as exc:
        raise CliError(str(exc)) from None
    sys.stdout.flush()
    tty = bool((info.get("Config") or {}).get("Tty"))
    demux = None if tty else Demuxer()
    for data in response.iter_chunks():
        if demux is None:
            _write(1, data)
            continue
        for stream, payload in demux.feed(data):
            _write(2 if stream >= STDERR else 1, payload)
    return 0


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
