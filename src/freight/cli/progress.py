"""Showing JSON-message streams (pull, import, bootstrap) as docker does.

Owns: the plain, non-terminal rendering of docker's jsonmessage stream —
``ID: STATUS PROGRESS`` or ``STATUS`` per message — and stopping at the
first message that carries an error.
"""

from __future__ import annotations

import sys

from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TextIO


def show_messages(messages: Iterator[dict[str, Any]], out: TextIO | None = None) -> dict[str, Any]:
    """Print each message; raise CliError on an error message; return the last one."""
    out = out or sys.stdout
    last: dict[str, Any] = {}
    for message in messages:
        error = message.get("error") or (message.get("errorDetail") or {}).get("message")
        if error:
            out.flush()
            raise CliError(error)
        if "stream" in message:
            out.write(message["stream"])
        elif message.get("status"):
            parts = [f"{message['id']}: " if message.get("id") else "", message["status"]]
            if message.get("progress"):
                parts.append(" " + message["progress"])
            out.write("".join(parts) + "\n")
        last = message
    out.flush()
    return last
