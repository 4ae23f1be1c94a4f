"""Docker's human-readable durations and sizes (go-units), shared by the CLI's
tables and the daemon's container `Status` strings so both print the same.
"""

from __future__ import annotations

DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "3 seconds", "About a minute"…"""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go rounds to the nearest hour here
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
    return f"{int(seconds // 3600) // 24 // 365} years"


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits ("4.26MB")."""
    i = 0
    while size >= 1000.0 and i < len(DECIMAL_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{_go_g4(size)}{DECIMAL_UNITS[i]}"


def _go_g4(value: float) -> str:
    """Go's %.4g: 4 significant digits, trailing zeros dropped."""
    text = f"{value:.4g}"
    if "e" in text:
        text = f"{value:.0f}"
    return text
