"""Docker's human-readable durations and sizes (go-units), shared by the CLI's
tables and the daemon's container `Status` strings so both print the same.
"""

from __future__ import annotations

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def human_size(size: float, precision: int = 3) -> str:
    """``units.HumanSizeWithPrecision``: 1000-based, e.g. 4261550 -> '4.26MB'."""
    return _custom_size(size, precision, 1000.0, _DECIMAL_UNITS)


def bytes_size(size: float) -> str:
    """``units.BytesSize``: 1024-based with 4 digits, e.g. '1.934GiB' (docker info)."""
    return _custom_size(size, 4, 1024.0, _BINARY_UNITS)


def _custom_size(size: float, precision: int, base: float, units: tuple[str, ...]) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_duration(seconds: float) -> str:
    """``units.HumanDuration``: 'Less than a second', 'About a minute', '3 weeks'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
