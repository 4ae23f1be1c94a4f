"""Resolve a path inside a container's root filesystem without ever leaving it.

Symlinks are followed the way the kernel would inside the container: an
absolute target restarts at the root, `..` stops at the root. The daemon reads
files of an image (/etc/passwd) through this, never through the host's view of
a symlink.
"""

from __future__ import annotations

import os
from pathlib import Path

from freight.errors import InvalidArgument

MAX_SYMLINKS = 40  # the kernel's limit (ELOOP)


def resolve_in_root(root: Path, path: str) -> Path:
    """Return the host path of container path `path`, confined to `root`."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, name)
        if candidate.is_symlink():
            links += 1
            if links > MAX_SYMLINKS:
                raise InvalidArgument(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(name)
    return root.joinpath(*resolved)


def read_text_in_root(root: Path, path: str) -> str | None:
    """The file's text, or None when it does not exist (or is not a regular file)."""
    host_path = resolve_in_root(root, path)
    try:
        with open(host_path, encoding="utf-8", errors="replace") as f:
            return f.read(4 * 1024 * 1024)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
