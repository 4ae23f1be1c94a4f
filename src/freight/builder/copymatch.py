"""Which files a COPY/ADD source names, and the fds a copy walks them with.

    matches(root_fd, ["src/", "*.txt"], parents=False)  # [Match(source, rel, keep)]

A source is a path inside the root (`..` and absolute paths clamped at it);
each component may be a filepath.Match pattern (`*`, `?`, `[a-z]`, `\\`).
Paths are opened with openat2(RESOLVE_IN_ROOT), so symlinks met on the way
resolve inside the root. `--parents` keeps the path after a `/./` pivot;
`--exclude` patterns follow .dockerignore's rules (`Excluder`).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from dataclasses import dataclass

from freight import errors
from freight.archive.dockerignore import IgnoreMatcher
from freight.linux.openat2 import openat2

_DIR = os.O_RDONLY | os.O_DIRECTORY


@dataclass(frozen=True)
class Match:
    """One source path found in the root."""

    source: str  # as written in the Dockerfile
    rel: str  # path inside the root, no leading "/" ("" is the root)
    keep: str  # --parents: the path kept under dest ("" otherwise)


_GLOB_META = re.compile(r"[*?\[\\]")


def clean(source: str) -> str:
    """The path inside the root: absolute and `..` clamped at the root."""
    return posixpath.normpath("/" + source).lstrip("/")


def _glob_regex(pattern: str, source: str) -> re.Pattern[str]:
    """One path component of Go's filepath.Match as a regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\":
            if i >= len(pattern):
                raise errors.InvalidArgument(f"syntax error in pattern: {source}")
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            end, cls = _char_class(pattern, i, source)
            out.append(cls)
            i = end
        else:
            out.append(re.escape(c))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _char_class(pattern: str, i: int, source: str) -> tuple[int, str]:
    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while True:
        if i >= len(pattern):
            raise errors.InvalidArgument(f"syntax error in pattern: {source}")
        c = pattern[i]
        if c == "]" and not first:
            return i + 1, "[" + ("^" if negate else "") + "".join(items) + "]"
        first = False
        if c == "\\":
            i += 1
            if i >= len(pattern):
                raise errors.InvalidArgument(f"syntax error in pattern: {source}")
            c = pattern[i]
        if c in "]-" and first:
            raise errors.InvalidArgument(f"syntax error in pattern: {source}")
        lo = c
        i += 1
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            hi = pattern[i + 1]
            i += 2
            if hi == "\\":
                if i >= len(pattern):
                    raise errors.InvalidArgument(f"syntax error in pattern: {source}")
                hi = pattern[i]
                i += 1
            if hi < lo:
                raise errors.InvalidArgument(f"syntax error in pattern: {source}")
            items.append(re.escape(lo) + "-" + re.escape(hi))
        else:
            items.append(re.escape(lo))


def exists(root_fd: int, rel: str) -> bool:
    try:
        os.close(openat2(root_fd, rel or ".", os.O_PATH))
    except OSError:
        return False
    return True


def _list_dir(root_fd: int, rel: str) -> list[str]:
    try:
        fd = openat2(root_fd, rel or ".", _DIR)
    except OSError:
        return []
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def _expand(root_fd: int, source: str) -> list[str]:
    """The root-relative paths `source` names (sorted glob matches, or itself)."""
    parts = [p for p in clean(source).split("/") if p]
    found = [""]
    for part in parts:
        if not _GLOB_META.search(part):
            found = [f"{d}/{part}" if d else part for d in found]
            continue
        regex = _glob_regex(part, source)
        found = [
            f"{d}/{name}" if d else name
            for d in found
            for name in _list_dir(root_fd, d)
            if regex.match(name)
        ]
    return [rel for rel in found if exists(root_fd, rel)]


def _kept_path(source: str, rel: str) -> str:
    """--parents: the path kept under dest, `rel` after the source's `/./` pivot if any."""
    text = source.lstrip("/")
    while text.startswith("./"):  # a leading "./" is no pivot
        text = text[2:].lstrip("/")
    text = "/" + text
    pivot = text.find("/./")
    if pivot < 0:
        return rel
    depth = len([p for p in clean(text[:pivot]).split("/") if p])
    return "/".join(rel.split("/")[depth:])


def matches(root_fd: int, sources: list[str], parents: bool) -> list[Match]:
    out: list[Match] = []
    for source in sources:
        found = _expand(root_fd, source)
        if not found:
            raise errors.NotFound(f'failed to compute cache key: "/{clean(source)}": not found')
        for rel in found:
            out.append(Match(source, rel, _kept_path(source, rel) if parents else ""))
    return out


# walking a source --------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """An entry to copy: `rel` below the source ("" is the source itself)."""

    rel: str
    st: os.stat_result
    parent_fd: int  # where `name` is (or -1 for the top: `fd` is opened)
    name: str


class Excluder:
    """--exclude: whether a path below the source is left out, and whether an
    excluded directory must still be walked (a `!` exception may re-include)."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self._matcher = IgnoreMatcher(list(patterns)) if patterns else None

    def skip(self, rel: str, is_dir: bool) -> bool:
        if self._matcher is None or not self._matcher.matches(rel):
            return False
        return not (is_dir and self._matcher.may_include_below(rel))

    def excluded(self, rel: str) -> bool:
        return self._matcher is not None and self._matcher.matches(rel)


def open_top(root_fd: int, rel: str) -> tuple[int, os.stat_result]:
    """An fd on the source, its symlinks followed inside the root."""
    try:
        fd = openat2(root_fd, rel or ".", os.O_PATH)
    except OSError as e:
        raise errors.NotFound(f'failed to compute cache key: "/{rel}": not found: {e}') from None
    return fd, os.fstat(fd)


def reopen(path_fd: int, flags: int) -> int:
    """A readable fd of what an O_PATH fd points at (it is no symlink: it was followed)."""
    return os.open(f"/proc/self/fd/{path_fd}", flags)


def children(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    entries = []
    with os.scandir(dir_fd) as it:
        for entry in it:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                entries.append((entry.name, entry.stat(follow_symlinks=False)))
    entries.sort()
    return entries
