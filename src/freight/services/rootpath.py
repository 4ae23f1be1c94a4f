"""Resolve a path inside a container's root filesystem without ever leaving it.

Symlinks are followed the way the kernel would inside the container: an
absolute target restarts at the root, `..` stops at the root. The daemon reads
files of an image (/etc/passwd) through this, never through the host's view of
a symlink. The walk itself is `archive.inroot.resolve` (fd-based, openat2
RESOLVE_IN_ROOT), the one cp and the archive routes use.
"""

from __future__ import annotations

import os
from pathlib import Path

from freight.archive import inroot


def resolve_in_root(root: Path, path: str) -> Path:
    """Return the host path of container path `path`, confined to `root`."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return root / inroot.resolve(root_fd, path).lstrip("/")
    finally:
        os.close(root_fd)


def read_text_in_root(root: Path, path: str) -> str | None:
    """The file's text, or None when it does not exist (or is not a regular file)."""
    host_path = resolve_in_root(root, path)
    try:
        with open(host_path, encoding="utf-8", errors="replace") as f:
            return f.read(4 * 1024 * 1024)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
