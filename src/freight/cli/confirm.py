"""docker's "Are you sure you want to continue? [y/N]" before a prune."""

from __future__ import annotations

import sys


def confirm(warning: str) -> bool:
    """Show `warning` (one or more lines, no trailing newline) and read y/yes from stdin."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    return answer.strip().lower() in ("y", "yes")
