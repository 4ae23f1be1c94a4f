""".dockerignore: which paths of a build context are left out.

Pure code, no file system: the walkers (the CLI packing a folder, the daemon
filtering a git or URL context) ask it about relative, slash-separated paths.

The semantics are Docker's (moby's patternmatcher, docker's ignore-file
reader), written anew:

- one pattern a line; a line *starting* with `#` is a comment; blanks are
  trimmed; a UTF-8 byte order mark at the start is dropped;
- `!pattern` is an exception: it re-includes what earlier patterns excluded;
  the last matching pattern wins;
- patterns are cleaned like paths (`./a//b/` → `a/b`, a leading `/` dropped);
- `*` is any run of characters but `/`, `?` one such character, `[...]` a
  class (`[^...]` negated), `\\` escapes the next character, `**` any number
  of directories (also none): `**/x`, `a/**/b`, `a/**`;
- a pattern that matches a directory also matches everything below it.

A walker may skip a whole excluded directory only when no exception could
re-include something below it: `may_include_below`.

    m = IgnoreMatcher(read_patterns("*.log\\n!keep.log\\nbuild/\\n"))
    m.matches("a.log")      # True
    m.matches("keep.log")   # False
    m.matches("build/x/y")  # True (its parent matches)
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from freight import errors

_BOM = "\ufeff"


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned, in order (`!` kept in front)."""
    patterns: list[str] = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.removeprefix(_BOM)
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        exception = pattern.startswith("!")
        if exception:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = _clean(pattern)
        patterns.append("!" + pattern if exception else pattern)
    return patterns


def _clean(pattern: str) -> str:
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):  # normpath keeps a leading "//" (POSIX allows it)
        cleaned = "/" + cleaned.lstrip("/")
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


@dataclass(frozen=True)
class _Pattern:
    text: str  # cleaned, without the "!"
    exception: bool
    regex: re.Pattern[str]
    # The pattern's components as regexes (None for one with "**"), for
    # may_include_below.
    parts: tuple[re.Pattern[str] | None, ...]

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


class IgnoreMatcher:
    """Decides for relative paths whether the ignore patterns exclude them."""

    def __init__(self, patterns: list[str]) -> None:
        self._patterns: list[_Pattern] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern:
                continue
            exception = pattern.startswith("!")
            if exception:
                pattern = pattern[1:]
                if not pattern:
                    raise errors.InvalidArgument('illegal exclusion pattern: "!"')
            text = _clean(pattern)
            self._patterns.append(_Pattern(text, exception, _compile(text, raw), _components(text)))

    @property
    def has_exceptions(self) -> bool:
        return any(p.exception for p in self._patterns)

    def matches(self, relpath: str) -> bool:
        """Whether `relpath` (or one of its parent directories) is excluded."""
        path = _clean(relpath)
        if path in (".", "/"):
            return False
        parents = _parents(path)
        excluded = False
        for pattern in self._patterns:
            # An exclusion can only change a path not yet excluded, an exception
            # only one that is: skip the others (and their regex work).
            if pattern.exception != excluded:
                continue
            if pattern.match(path) or any(pattern.match(parent) for parent in parents):
                excluded = not pattern.exception
        return excluded

    def may_include_below(self, reldir: str) -> bool:
        """Whether an exception could re-include some path below directory `reldir`.

        False means a walker may skip an excluded `reldir` without looking
        inside. True is the safe answer when unsure (a `**`, say).
        """
        path = _clean(reldir)
        dirparts = [] if path in (".", "/") else path.split("/")
        return any(_could_reach_below(p.parts, dirparts) for p in self._patterns if p.exception)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _components(text: str) -> tuple[re.Pattern[str] | None, ...]:
    return tuple(_component(part, text) for part in text.split("/"))


def _component(part: str, text: str) -> re.Pattern[str] | None:
    if "**" in part:
        return None
    try:
        return re.compile(_translate(part, text), re.DOTALL)
    except errors.InvalidArgument:
        return None  # a class holding "/" ("a[/]b"): no per-component view, stay safe


def _could_reach_below(patparts: tuple[re.Pattern[str] | None, ...], dirparts: list[str]) -> bool:
    """Could a pattern of these components match `dirparts/...` or a parent of it?"""
    for i, dirpart in enumerate(dirparts):
        if i == len(patparts):
            return True  # the pattern matches a parent of the directory: all of it
        part = patparts[i]
        if part is None:
            return True  # "**" spans any number of directories: assume it can
        if not part.fullmatch(dirpart):
            return False
    return True  # every component so far fits; the rest may name something below


def _compile(pattern: str, raw: str) -> re.Pattern[str]:
    return re.compile("^" + _translate(pattern, raw) + "$", re.DOTALL)


def _translate(pattern: str, raw: str) -> str:
    """The regex body for a glob (`raw` names the pattern in errors)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1  # "**/" is "**": zero or more directories
                if i == n:
                    out.append(".*")  # trailing "**": anything, also across "/"
                else:
                    out.append("(?:.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end, cls = _char_class(pattern, i, raw)
            out.append(cls)
            i = end
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(re.escape("\\"))
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _char_class(pattern: str, start: int, raw: str) -> tuple[int, str]:
    """`[...]` from just after the "[": the index after "]" and the regex class."""
    i, n = start, len(pattern)
    out = ["["]
    if i < n and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < n and (pattern[i] != "]" or first):
        ch = pattern[i]
        if ch == "]" and first:
            raise _bad(raw)  # Go's glob: an empty class is a syntax error
        first = False
        if ch == "\\":
            i += 1
            if i == n:
                raise _bad(raw)
            out.append(re.escape(pattern[i]))
        elif ch == "-":
            out.append("-")
        else:
            out.append(re.escape(ch))
        i += 1
    if i >= n:
        raise _bad(raw)  # no closing "]"
    out.append("]")
    try:
        re.compile("".join(out))
    except re.error:
        raise _bad(raw) from None  # a reversed range, say
    return i + 1, "".join(out)


def _bad(raw: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"syntax error in pattern: {raw!r}")


__all__ = ["IgnoreMatcher", "read_patterns"]
