"""Resolve a path inside a container's root filesystem without ever leaving it.

Symlinks are followed the way the kernel would inside the container: an
absolute target restarts at the root, `..` stops at the root. The daemon reads
files of an image (/etc/passwd) through this, never through the host's view of
a symlink. The walk itself is `archive.inroot.resolve` (fd-based, openat2
RESOLVE_IN_ROOT), the one cp and the archive routes use.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from freight import errors
from freight.archive import inroot
from freight.linux.openat2 import openat2


def resolve_in_root(root: Path, path: str) -> Path:
    """Return the host path of container path `path`, confined to `root`."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return root / inroot.resolve(root_fd, path).lstrip("/")
    finally:
        os.close(root_fd)


MAX_TEXT = 4 * 1024 * 1024


def read_text_in_root(root: Path, path: str) -> str | None:
    """The file's text (at most MAX_TEXT bytes), or None when it does not exist or is
    not a regular file.

    Opened in one openat2(RESOLVE_IN_ROOT) call from an fd on the root, so a
    component swapped for a symlink meanwhile still resolves inside it; and
    non-blocking, so a FIFO planted at /etc/passwd cannot hang the daemon.
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = openat2(root_fd, path.lstrip("/") or ".", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise errors.InvalidArgument(f"too many levels of symbolic links: {path}") from None
        raise
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(MAX_TEXT).decode("utf-8", errors="replace")
