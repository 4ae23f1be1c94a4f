"""Go's time.ParseDuration, as docker's flags, filters and Dockerfiles spell durations
("1m30s", "1.5h", "250ms", "-2m", "0"). One parser for the CLI, the builder and the
daemon; no `re`, so the CLI's start path can import it."""

from __future__ import annotations

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_ns(text: str) -> int:
    """The duration in nanoseconds; ValueError with Go's message when it isn't one."""
    quoted = f'"{text}"'
    rest = text
    sign = 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number, rest = _take(rest, "0123456789.")
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f"time: invalid duration {quoted}")
        unit, rest = _take(rest, None)
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS_NS:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _UNITS_NS[unit]
    return sign * int(round(total))


def seconds_or_none(text: str) -> float | None:
    """The duration in seconds, or None when `text` is not a Go duration."""
    try:
        return parse_ns(text) / 1e9
    except ValueError:
        return None


def _take(text: str, chars: str | None) -> tuple[str, str]:
    """The leading run of `chars` (None: of anything but digits and '.')."""
    i = 0
    while i < len(text) and ((text[i] in chars) if chars else (text[i] not in "0123456789.")):
        i += 1
    return text[:i], text[i:]
