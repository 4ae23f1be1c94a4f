"""Dockerfile text -> parser directives and one `Node` per instruction.

Follows Docker's (BuildKit's) line grammar:

    # syntax=...  # escape=`  # check=...   directives: only before anything else
    # comment                               whole-line comments, also inside continuations
    RUN a \\                                 escape char at the end of a line continues it;
        b                                   empty continuation lines are skipped
    RUN <<EOF ... EOF                       heredocs for RUN, COPY and ADD (and ONBUILD of those)
    CMD ["a", "b"]                          JSON string array: exec form, else shell form

A Node keeps the raw text (flags, args, JSON words, heredocs); the typed,
expanded instruction is made from it by `instructions.to_instruction`,
because expansion needs the build's ARG/ENV values at that step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from freight.builder.shellwords import ExpansionError, lex_words
from freight.errors import InvalidArgument

KEYWORDS = frozenset(
    {
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)
# Instructions whose arguments may be a JSON string array (exec form).
JSON_KEYWORDS = frozenset({"add", "cmd", "copy", "entrypoint", "run", "shell", "volume"})
HEREDOC_KEYWORDS = frozenset({"add", "copy", "run"})
DIRECTIVES = frozenset({"syntax", "escape", "check"})

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be parsed or an instruction that is malformed."""

    def __init__(self, line: int, msg: str) -> None:
        super().__init__(f"dockerfile parse error on line {line}: {msg}")
        self.line = line
        self.msg = msg


@dataclass
class Heredoc:
    name: str  # the terminator word, quotes removed
    content: str  # the lines between marker and terminator, newlines kept, as written
    expand: bool  # False when any part of the marker word was quoted: <<'EOF'
    chomp: bool  # <<-EOF: leading tabs are stripped from content and terminator


@dataclass
class Node:
    keyword: str  # lower-case
    flags: list[str]  # raw "--from=x" words, quotes removed
    args: str  # the rest of the line, continuations joined
    json_args: list[str] | None  # exec form, for the instructions that allow it
    heredocs: list[Heredoc]
    line: int  # first line, 1-based
    end_line: int  # last line, heredoc terminators included
    original: str  # the instruction as written, continuations joined

    @property
    def is_json(self) -> bool:
        return self.json_args is not None


@dataclass
class Dockerfile:
    directives: dict[str, str] = field(default_factory=dict)
    escape: str = "\\"
    nodes: list[Node] = field(default_factory=list)


def chomp(content: str) -> str:
    """`<<-EOF`: leading tabs of every line removed."""
    return re.sub(r"(?m)^\t+", "", content)


def parse(text: str) -> Dockerfile:
    """The whole Dockerfile: directives, then every instruction."""
    lines = _split_lines(text)
    directives, escape, start = _directives(lines)
    nodes = _Scanner(lines, start, escape).nodes()
    if not nodes:
        raise DockerfileError(1, "file with no instructions")
    _check_stage_order(nodes)
    # Deferred: instructions builds on this module; the check makes a malformed
    # instruction fail the build before any step runs, as docker does.
    from freight.builder.instructions import check

    for node in nodes:
        check(node, escape)
    return Dockerfile(directives=directives, escape=escape, nodes=nodes)


def parse_instruction(text: str, escape: str = "\\") -> Node:
    """One instruction (an ONBUILD trigger), heredoc bodies may follow its line."""
    nodes = _Scanner(_split_lines(text), 0, escape).nodes()
    if len(nodes) != 1:
        raise DockerfileError(1, f"expected one instruction, found {len(nodes)}")
    return nodes[0]


def heredoc_marker(word: str) -> Heredoc | None:
    """The heredoc a word like `<<EOF`, `<<-"EOF"`, `2<<EOF` opens, with no content yet."""
    m = _HEREDOC_WORD.match(word)
    if not m or not m.group(3):
        return None
    rest = m.group(3)
    try:
        plain = lex_words(rest, raw=False)
        raw = lex_words(rest, raw=True)
    except ExpansionError:
        return None
    if len(plain) != 1 or len(raw) != 1:
        return None
    quotes = plain[0].count("'") + plain[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(name=plain[0], content="", expand=quotes == raw_quotes, chomp=m.group(2) == "-")


# lines and directives ---------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _directives(lines: list[str]) -> tuple[dict[str, str], str, int]:
    """Directives are the leading `# key=value` comments; anything else ends them."""
    found: dict[str, str] = {}
    for number, line in enumerate(lines):
        m = _DIRECTIVE.match(line.lstrip(" \t"))
        if not m or m.group(1).lower() not in DIRECTIVES:
            return found, _escape(found), number
        key = m.group(1).lower()
        if key in found:
            raise DockerfileError(number + 1, f"only one {key} parser directive can be used")
        found[key] = m.group(2)
        if key == "escape" and m.group(2) not in ("\\", "`"):
            raise DockerfileError(
                number + 1, f"invalid escape token '{m.group(2)}' does not match ` or \\"
            )
    return found, _escape(found), len(lines)


def _escape(directives: dict[str, str]) -> str:
    return directives.get("escape", "\\")


def _is_comment(line: str) -> bool:
    return line.lstrip(" \t").startswith("#")


# instructions ------------------------------------------------------------------------


class _Scanner:
    def __init__(self, lines: list[str], start: int, escape: str) -> None:
        self.lines = lines
        self.pos = start
        self.escape = escape
        self.continuation = re.compile(re.escape(escape) + r"[ \t]*$")

    def nodes(self) -> list[Node]:
        nodes: list[Node] = []
        while self.pos < len(self.lines):
            node = self._next()
            if node is not None:
                nodes.append(node)
        return nodes

    def _strip_continuation(self, line: str) -> tuple[str, bool]:
        m = self.continuation.search(line)
        if m:
            return line[: m.start()], False
        return line, True

    def _next(self) -> Node | None:
        first = self.lines[self.pos]
        self.pos += 1
        start = self.pos
        if _is_comment(first):
            return None
        line, done = self._strip_continuation(first.lstrip(" \t"))
        if done and not line.strip():
            return None
        while not done and self.pos < len(self.lines):
            raw = self.lines[self.pos]
            self.pos += 1
            if _is_comment(raw) or not raw.strip(" \t"):
                continue  # comments and empty lines inside a continuation vanish
            more, done = self._strip_continuation(raw)
            line += more
        if not line.strip():
            return None
        node = _node_from_line(line, start, self.escape)
        target = node.keyword
        if target == "onbuild":
            target = _split_keyword(node.args)[0].lower()
        if target in HEREDOC_KEYWORDS and "<<" in line:
            node.heredocs = self._heredocs(line, start)
        node.end_line = self.pos
        return node

    def _heredocs(self, line: str, start: int) -> list[Heredoc]:
        try:
            words = lex_words(line)
        except ExpansionError:
            return []  # an unbalanced quote: no heredocs, as the shell would see it
        docs = [doc for word in words if (doc := heredoc_marker(word)) is not None]
        for doc in docs:
            body: list[str] = []
            while True:
                if self.pos >= len(self.lines):
                    raise DockerfileError(start, "unterminated heredoc")
                raw = self.lines[self.pos]
                self.pos += 1
                candidate = raw.lstrip("\t") if doc.chomp else raw
                if candidate == doc.name:
                    break
                body.append(raw + "\n")
            doc.content = "".join(body)
        return docs


_WHITESPACE = re.compile(r"\s+")


def _split_keyword(line: str) -> tuple[str, str]:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def _node_from_line(line: str, number: int, escape: str) -> Node:
    word, rest = _split_keyword(line)
    keyword = word.lower()
    if keyword not in KEYWORDS:
        raise DockerfileError(number, f"unknown instruction: {word.upper()}")
    flags, args = _extract_flags(rest)
    json_args = None
    if keyword in JSON_KEYWORDS:
        try:
            json_args = json_array(args)
        except ValueError as e:
            raise DockerfileError(number, str(e)) from None
    return Node(
        keyword=keyword,
        flags=flags,
        args=args,
        json_args=json_args,
        heredocs=[],
        line=number,
        end_line=number,
        original=line,
    )


def json_array(text: str) -> list[str] | None:
    """`["a", "b"]` as a list; None when the text is not a JSON array (shell form).

    A JSON array holding something other than strings is an error, as in docker.
    """
    text = text.lstrip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise ValueError(_NOT_STRINGS)
    return value


def _extract_flags(rest: str) -> tuple[list[str], str]:
    """Leading `--name[=value]` words (quotes inside them removed) and what follows."""
    flags: list[str] = []
    i = 0
    n = len(rest)
    while True:
        while i < n and rest[i].isspace():
            i += 1
        if not rest.startswith("--", i):
            return flags, rest[i:]
        word: list[str] = []
        quote = ""
        while i < n:
            ch = rest[i]
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    word.append(ch)
            elif ch in ("'", '"'):
                quote = ch
            elif ch.isspace():
                break
            else:
                word.append(ch)
            i += 1
        flag = "".join(word)
        if flag == "--":
            return flags, rest[i:].lstrip()
        flags.append(flag)


def _check_stage_order(nodes: list[Node]) -> None:
    for node in nodes:
        if node.keyword == "from":
            return
        if node.keyword != "arg":
            raise DockerfileError(node.line, "no build stage in current context")


__all__ = [
    "DIRECTIVES",
    "KEYWORDS",
    "Dockerfile",
    "DockerfileError",
    "Heredoc",
    "Node",
    "chomp",
    "heredoc_marker",
    "json_array",
    "parse",
    "parse_instruction",
]
