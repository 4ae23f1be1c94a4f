"""Keep every path a layer names inside the extraction root.

Two rules, both from how Docker and containerd treat layers:

- Entry names are cleaned: a leading "/" is dropped (an absolute name means
  "from the root of the layer"), and a name that still climbs out with ".."
  after cleaning is refused.
- Symlinks met on the way are resolved as if the root were "/" (a chroot):
  `lib -> /usr/lib` in the layer means `<root>/usr/lib`, and `..` stops at the
  root. So `x -> /` followed by an entry `x/etc/passwd` writes
  `<root>/etc/passwd`, never the host's. The final component of an entry is
  never followed: it is what the entry creates or replaces.

Extraction goes into a fresh snapshot directory that nothing else writes to
while we do, so resolving first and acting after is not a race.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections import deque
from pathlib import Path

from freight import errors

# Linux gives up after 40 links (ELOOP); a layer gets the same budget.
MAX_SYMLINKS = 40
# Directory levels an entry may name or lead to through symlinks. Deeper trees are
# no real image's and would make every recursive walk of the snapshot (removal,
# diff, copy) a RecursionError: Python's limit is 1000 frames.
MAX_DEPTH = 256


def clean_name(name: str, entry: str) -> str | None:
    """The entry's path relative to the root, or None for the root itself."""
    if "\x00" in name:
        raise errors.InvalidArgument(f"layer entry {entry!r}: NUL byte in path")
    # normpath("/..") is "/", so a climb above the root is visible only in the input.
    if _climbs_out(name):
        raise errors.InvalidArgument(f"layer entry {entry!r}: path escapes the layer root")
    clean = posixpath.normpath("/" + name).lstrip("/") or None
    if clean is not None and clean.count("/") >= MAX_DEPTH:
        raise errors.InvalidArgument(
            f"layer entry {entry[:200]!r}: path is deeper than {MAX_DEPTH} directories"
        )
    return clean


def _climbs_out(name: str) -> bool:
    depth = 0
    for part in name.lstrip("/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def resolve(root: Path, relative: str, entry: str) -> Path:
    """Resolve `relative` under `root`, following symlinks as if `root` were "/"."""
    parts = deque(relative.split("/"))
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except (FileNotFoundError, NotADirectoryError):  # make_parents reports a file parent
            is_link = False
        if not is_link:
            resolved.append(part)
            if len(resolved) > MAX_DEPTH:
                raise errors.InvalidArgument(
                    f"layer entry {entry[:200]!r}: path leads deeper than {MAX_DEPTH} directories"
                )
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise errors.InvalidArgument(
                f"layer entry {entry!r}: too many levels of symbolic links"
            )
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts.extendleft(reversed(target.split("/")))
    return root.joinpath(*resolved)


def make_parents(root: Path, relative: str, entry: str) -> Path:
    """Resolve directory `relative` under `root` and create what is missing (0755)."""
    directory = resolve(root, relative, entry)
    current = root
    for part in directory.relative_to(root).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(mode):
            raise errors.InvalidArgument(
                f"layer entry {entry!r}: parent {str(current.relative_to(root))!r} is not a directory"
            )
    return directory
