"""Shell-like words of a Dockerfile: quote removal and `$variable` expansion.

Docker's builder expands a small, fixed subset of POSIX shell syntax in the
arguments of ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
WORKDIR and ARG (RUN/CMD/ENTRYPOINT are left to the shell in the container):

    'single'   literal             "double"   $ expands, \\ escapes " $ \\
    \\x         x (escape char)     $v ${v}    value, "" when unset
    ${v:-w} ${v-w}  default        ${v:+w} ${v+w}  alternative
    ${v:?m} ${v?m}  error m        ${v#p} ${v##p} ${v%p} ${v%%p}  trim glob
    ${v/p/r} ${v//p/r}  replace first/all matches of glob p

`expand` treats its input as one word (whitespace is kept); `expand_words`
splits like the shell does: on unquoted whitespace, also inside the values of
unquoted variables. `split_words` splits without expanding, keeping quotes,
as the parser does for ENV/LABEL/ARG before each word is expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from freight.errors import InvalidArgument

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ExpansionError(InvalidArgument):
    """A word could not be expanded: bad syntax, unmatched quote, ${v:?}."""


class _Words:
    """Collects the words of a shell-split result.

    Characters from quotes or escapes always belong to a word (so `""` is an
    empty word); plain characters and variable values split on whitespace.
    """

    def __init__(self) -> None:
        self.words: list[str] = []
        self.current = ""
        self.in_word = False

    def plain(self, text: str) -> None:
        for ch in text:
            if ch.isspace():
                if self.in_word:
                    self.words.append(self.current)
                    self.current = ""
                    self.in_word = False
            else:
                self.current += ch
                self.in_word = True

    def raw(self, text: str) -> None:
        self.current += text
        self.in_word = True

    def result(self) -> list[str]:
        if self.in_word:
            return [*self.words, self.current]
        return list(self.words)


class _Lexer:
    """One pass over `text`; `raw_quotes`/`raw_escapes` keep those characters
    in the output (used for heredoc bodies and glob patterns)."""

    def __init__(
        self,
        text: str,
        env: Mapping[str, str],
        escape: str,
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
        heredoc: bool = False,
    ) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.heredoc = heredoc  # quotes are plain text; only $ and escapes are special

    # scanning ---------------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    # words ------------------------------------------------------------------

    def run(self, stop: str = "", raw_escapes: bool | None = None) -> tuple[str, list[str]]:
        """Process up to (and consuming) a character of `stop`, or to the end."""
        raw_esc = self.raw_escapes if raw_escapes is None else raw_escapes
        out: list[str] = []
        words = _Words()
        while self.pos < len(self.text):
            ch = self.peek()
            if stop and ch in stop:
                self.next()
                return "".join(out), words.result()
            if self.heredoc and ch != "$":
                part = self.heredoc_char()
                words.raw(part)
            elif ch == "'":
                part = self.single_quote()
                words.raw(part)
            elif ch == '"':
                part = self.double_quote()
                words.raw(part)
            elif ch == "$":
                part = self.dollar()
                words.plain(part)
            else:
                self.next()
                if ch == self.escape:
                    escaped = self.next()
                    if not escaped:
                        break  # an escape at the very end is dropped
                    part = ch + escaped if raw_esc else escaped
                    words.raw(part)
                else:
                    part = ch
                    words.plain(part)
            out.append(part)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def heredoc_char(self) -> str:
        """A heredoc body's character: an escape only protects `$` and itself."""
        ch = self.next()
        if ch == self.escape and self.peek() in ("$", self.escape) and self.peek():
            return self.next()
        return ch

    def single_quote(self) -> str:
        self.next()
        out = ["'"] if self.raw_quotes else []
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                break
            out.append(ch)
        if self.raw_quotes:
            out.append("'")
        return "".join(out)

    def double_quote(self) -> str:
        self.next()
        out = ['"'] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                break
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue  # an escape right before the end: dropped
                if following in ('"', "$", self.escape):
                    self.next()
                    out.append(ch + following if self.raw_escapes else following)
                    continue
            out.append(ch)
        if self.raw_quotes:
            out.append('"')
        return "".join(out)

    # $ ------------------------------------------------------------------------

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self.next()
        start = self.pos
        while (c := self.peek()) and (c.isalnum() or c == "_"):
            self.next()
        return self.text[start : self.pos]

    def lookup(self, name: str) -> str | None:
        return self.env.get(name)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        self.next()
        first = self.peek()
        if not first:
            raise ExpansionError("syntax error: missing '}'")
        if first in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if not op:
            raise ExpansionError("syntax error: missing '}'")
        if op == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.skip_unset else ""
            return value
        if op == "/":
            return self.replace(name)
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("-", "+", "?", "#", "%"):
            raise ExpansionError(f"unsupported modifier ({':' * colon}{op}) in substitution")
        glob_op = op in ("#", "%")
        if colon and glob_op:
            raise ExpansionError(f"unsupported modifier (:{op}) in substitution")
        word = self.modifier_word(glob_op)
        value = self.lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + ":" * colon + op + word + "}"
        unset = value is None or (colon and value == "")
        if op == "-":
            return word if unset else value or ""
        if op == "+":
            return "" if unset else word
        if op == "?":
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if colon and value == "":
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        return _trim(value or "", word, op)

    def modifier_word(self, raw_escapes: bool) -> str:
        try:
            word, _ = self.run("}", raw_escapes=raw_escapes)
        except ExpansionError:
            if self.pos >= len(self.text):
                raise ExpansionError("syntax error: missing '}'") from None
            raise
        return word

    def replace(self, name: str) -> str:
        every = self.peek() == "/"
        if every:
            self.next()
        try:
            pattern, _ = self.run("/}", raw_escapes=True)
        except ExpansionError:
            raise ExpansionError("syntax error: missing '}'") from None
        replacement = ""
        if self.text[self.pos - 1] == "/":
            replacement = self.modifier_word(True)
        value = self.lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + "/" + "/" * every + pattern + "/" + replacement + "}"
        regex = _glob_regex(pattern, self.escape)
        value = value or ""
        if not pattern:
            return value
        if every:
            return regex.sub(lambda _m: replacement, value)
        return regex.sub(lambda _m: replacement, value, count=1)


def _glob_regex(pattern: str, escape: str = "\\", anchored: str = "") -> re.Pattern[str]:
    """A shell glob (`*`, `?`, `[...]`, escapes) as a regular expression."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == escape and i < len(pattern):
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < len(pattern) and pattern[i] in "!^" else i)
            if end < 0:
                out.append(re.escape("["))
                continue
            body = pattern[i:end]
            i = end + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append("[" + "^" * negate + body + "]")
        else:
            out.append(re.escape(ch))
    expr = "".join(out)
    if anchored == "start":
        expr = "^(?:" + expr + ")"
    elif anchored == "end":
        expr = "(?:" + expr + ")$"
    try:
        return re.compile(expr, re.DOTALL)
    except re.error as e:
        raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {e}") from None


def _trim(value: str, word: str, op: str) -> str:
    """${v#p} ${v##p} ${v%p} ${v%%p}: remove the shortest/longest matching prefix/suffix."""
    greedy = word.startswith(op)
    if greedy:
        word = word[1:]
    regex = _glob_regex(word)
    if op == "#":
        ends = range(len(value), -1, -1) if greedy else range(len(value) + 1)
        for end in ends:
            if regex.fullmatch(value[:end]):
                return value[end:]
        return value
    starts = range(len(value) + 1) if greedy else range(len(value), -1, -1)
    for start in starts:
        if regex.fullmatch(value[start:]):
            return value[:start]
    return value


def expand(
    word: str, env: Mapping[str, str], escape: str = "\\", *, keep_unset: bool = False
) -> str:
    """One word, variables expanded and quotes/escapes removed; whitespace kept.

    `keep_unset` leaves variables missing from `env` as written (`$v`, `${v:-x}`).
    """
    text, _ = _Lexer(word, env, escape, skip_unset=keep_unset).run()
    return text


def expand_words(
    text: str, env: Mapping[str, str], escape: str = "\\", *, keep_unset: bool = False
) -> list[str]:
    """Expand and split into words like a shell: unquoted whitespace, also inside
    unquoted variable values, separates words; `""` is an empty word."""
    _, words = _Lexer(text, env, escape, skip_unset=keep_unset).run()
    return words


def expand_raw(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """A heredoc body (`<<EOF`, unquoted marker): variables expanded as in a shell
    heredoc. Quotes are plain text (an apostrophe is fine); `\\$` is a literal
    `$`, `\\\\` one backslash, any other escape is kept as written."""
    out, _ = _Lexer(text, env, escape, heredoc=True).run()
    return out


def lex_words(
    text: str, escape: str = "\\", *, raw: bool = True, skip_unset: bool = True
) -> list[str]:
    """Shell words without any environment: quotes/escapes kept when `raw`,
    unset variables left as written. The parser uses it to find heredoc markers."""
    lexer = _Lexer(text, {}, escape, raw_quotes=raw, raw_escapes=raw, skip_unset=skip_unset)
    _, words = lexer.run()
    return words


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Whitespace-separated words, quotes and escapes kept as written.

    A quoted part never splits (`a="b c"` is one word) and makes an empty
    word possible (`""`). An escape keeps the next character in the word; an
    escape at the very end is dropped.
    """
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        i += 1
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i == n:
                    continue
                word.append(ch)
                ch = text[i]
                i += 1
            word.append(ch)
            continue
        if ch.isspace():
            if in_word:
                words.append("".join(word))
                word = []
                in_word = False
            continue
        in_word = True
        if ch in ("'", '"'):
            quote = ch
        elif ch == escape:
            if i == n:
                continue
            word.append(ch)
            ch = text[i]
            i += 1
        word.append(ch)
    if in_word:
        words.append("".join(word))
    return words


__all__ = [
    "ExpansionError",
    "expand",
    "expand_raw",
    "expand_words",
    "lex_words",
    "split_words",
]
