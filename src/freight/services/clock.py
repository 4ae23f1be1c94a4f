"""Timestamps in Docker's format: RFC 3339 with nanoseconds, UTC, 'Z'."""

from __future__ import annotations

import time
from datetime import UTC, datetime

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return format_ns(time.time_ns())


def format_ns(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch; nanoseconds beyond microseconds are dropped."""
    if text.startswith("0001-"):
        return 0.0
    main, _, rest = text.rstrip("Z").partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())[:6].ljust(6, "0")
    dt = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return dt.timestamp() + int(digits) / 1e6


def unix_seconds(text: str) -> int:
    return int(parse_rfc3339(text))
