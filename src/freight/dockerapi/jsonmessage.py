"""JSON progress messages: the newline-delimited stream of pull, push, import, load and build.

Each line is one JSON object with moby's `jsonmessage.JSONMessage` keys, in
moby's order, empty ones left out:

    {"status":"Pulling fs layer","progressDetail":{},"id":"a1b2c3"}
    {"status":"Downloading","progressDetail":{"current":1024,"total":4096},"progress":"[==> ] 1kB/4kB","id":"a1b2c3"}
    {"stream":"Step 1/2 : FROM busybox\\n"}
    {"aux":{"ID":"sha256:..."}}
    {"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}

Clients stop at the first line carrying "error" and show it; "error" is
deprecated upstream but docker-py and old CLIs still read only that key, so
`error_message` fills both. `progress_message` also fills the legacy
"progress" text bar that docker-py users print (the docker CLI draws its own
bar from progressDetail).

    >>> encode(JSONMessage(status="Pulling fs layer", id="a1b2c3", progress_detail=ProgressDetail()))
    b'{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2c3"}\\r\\n'
"""

import json
from dataclasses import dataclass
from typing import Any

from freight.dockerapi.humanize import human_size


@dataclass(frozen=True)
class ProgressDetail:
    """Byte counts behind a progress bar; all zero renders as {} (moby's omitempty)."""

    current: int = 0
    total: int = 0
    start: int = 0
    hide_counts: bool = False
    units: str = ""

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        for key, value in (
            ("current", self.current),
            ("total", self.total),
            ("start", self.start),
            ("hidecounts", self.hide_counts),
            ("units", self.units),
        ):
            if value:
                wire[key] = value
        return wire


@dataclass(frozen=True)
class ErrorDetail:
    message: str
    code: int = 0

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"code": self.code} if self.code else {}
        wire["message"] = self.message
        return wire


@dataclass(frozen=True)
class JSONMessage:
    """One line of a progress stream. Unset fields are omitted on the wire.

    `progress_detail` is kept distinct from None on purpose: dockerd sends
    "progressDetail":{} on status lines of a layer, and the CLI uses its
    presence to decide that the line belongs to a per-layer progress row.
    """

    stream: str = ""
    status: str = ""
    progress_detail: ProgressDetail | None = None
    progress: str = ""
    id: str = ""
    from_: str = ""
    time: int = 0
    time_nano: int = 0
    error_detail: ErrorDetail | None = None
    error: str = ""
    aux: Any = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if self.stream:
            wire["stream"] = self.stream
        if self.status:
            wire["status"] = self.status
        if self.progress_detail is not None:
            wire["progressDetail"] = self.progress_detail.to_wire()
        optional = (
            ("progress", self.progress),
            ("id", self.id),
            ("from", self.from_),
            ("time", self.time),
            ("timeNano", self.time_nano),
        )
        wire.update((key, value) for key, value in optional if value)
        if self.error_detail is not None:
            wire["errorDetail"] = self.error_detail.to_wire()
        if self.error:
            wire["error"] = self.error
        if self.aux is not None:
            wire["aux"] = self.aux
        return wire


def status_message(status: str, id: str = "", detail: ProgressDetail | None = None) -> JSONMessage:
    """A status line, per layer when `id` is given ("Pull complete", "Already exists")."""
    return JSONMessage(status=status, id=id, progress_detail=detail)


def progress_message(status: str, id: str, current: int, total: int) -> JSONMessage:
    """A byte-progress line ("Downloading", "Extracting", "Pushing")."""
    detail = ProgressDetail(current=current, total=total)
    return JSONMessage(
        status=status, id=id, progress_detail=detail, progress=progress_bar(current, total)
    )


BAR_WIDTH = 50


def progress_bar(current: int, total: int) -> str:
    """dockerd's text bar: ``[=====>     ]  1.2MB/4.5MB`` (just the size when the total is unknown)."""
    if total <= 0:
        return human_size(current)
    filled = min(BAR_WIDTH, BAR_WIDTH * current // total)
    body = ("=" * (filled - 1) + ">") if 0 < filled < BAR_WIDTH else "=" * filled
    return f"[{body.ljust(BAR_WIDTH)}]  {human_size(current)}/{human_size(total)}"


def error_message(message: str) -> JSONMessage:
    """The terminal error line: both the errorDetail object and the legacy error string."""
    return JSONMessage(error_detail=ErrorDetail(message=message), error=message)


def aux_message(aux: Any) -> JSONMessage:
    """Out-of-band result data, e.g. {"ID": "sha256:..."} at the end of a build."""
    return JSONMessage(aux=aux)


def encode(message: JSONMessage) -> bytes:
    """One wire line. dockerd ends progress lines with CRLF (streamformatter)."""
    return (
        json.dumps(message.to_wire(), separators=(",", ":"), ensure_ascii=False).encode() + b"\r\n"
    )
