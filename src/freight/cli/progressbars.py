"""Live per-layer progress for pull and push, as docker's CLI draws it.

On a terminal each layer id keeps one line, redrawn in place with a bar
from ``progressDetail``; elsewhere (pipes, logs) one line per change of a
layer's status, without the repeated byte counts.
"""

from __future__ import annotations

import sys

from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TextIO

BAR_WIDTH = 50


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


def bar(current: int, total: int) -> str:
    """docker's ``[====>      ]  1.2MB/4MB``."""
    if total <= 0:
        return human(current) if current else ""
    filled = min(BAR_WIDTH, BAR_WIDTH * current // total)
    body = ("=" * (filled - 1) + ">") if 0 < filled < BAR_WIDTH else "=" * filled
    return f"[{body.ljust(BAR_WIDTH)}]  {human(current)}/{human(total)}"


def _line(message: dict[str, Any]) -> str:
    text = message.get("status", "")
    detail = message.get("progressDetail") or {}
    if detail.get("total") or detail.get("current"):
        text += " " + bar(int(detail.get("current", 0)), int(detail.get("total", 0)))
    elif message.get("progress"):
        text += " " + message["progress"]
    return f"{message['id']}: {text}" if message.get("id") else text


def show_progress(
    messages: Iterator[dict[str, Any]], out: TextIO | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Render the stream; raise CliError on its error; return the last message."""
    out = out or sys.stdout
    tty = out.isatty() and not quiet
    rows: list[str] = []  # layer ids, one line each, in order of appearance
    last_status: dict[str, str] = {}
    last: dict[str, Any] = {}
    for message in messages:
        error = message.get("error") or (message.get("errorDetail") or {}).get("message")
        if error:
            out.flush()
            raise CliError(error)
        last = message
        if quiet or "aux" in message:
            continue
        ident = message.get("id", "")
        has_detail = "progressDetail" in message
        if tty and ident and has_detail:
            if ident not in rows:
                rows.append(ident)
                out.write(_line(message) + "\n")
            else:
                up = len(rows) - rows.index(ident)
                out.write(f"\x1b[{up}A\r\x1b[2K{_line(message)}\r\x1b[{up}B")
            out.flush()
            continue
        if ident and has_detail and last_status.get(ident) == message.get("status"):
            continue  # the same status again, only the byte count moved
        if ident:
            last_status[ident] = message.get("status", "")
        if "stream" in message:
            out.write(message["stream"])
        else:
            out.write((f"{ident}: " if ident else "") + message.get("status", "") + "\n")
        if not ident:
            rows.clear()  # later layer rows start below this line
    out.flush()
    return last
