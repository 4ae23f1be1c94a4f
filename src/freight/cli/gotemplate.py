"""A subset of Go's ``text/template``, enough for docker's ``--format``.

Owns: parsing and executing templates such as ``{{.ID}}``,
``{{json .Config}}``, ``{{range .Names}}{{.}} {{end}}``,
``{{if .State.Running}}up{{else}}down{{end}}`` and printing values the way
Go's ``fmt`` prints them (``[a b]`` for slices, ``map[k:v]`` for maps,
``<no value>`` for a missing key, ``<nil>`` for null).

Supported: text and actions with ``{{-``/``-}}`` trimming, comments, field
chains on dicts and objects (an object's callable attribute is called, with
arguments: ``{{.Label "k"}}``), variables (``$``, ``$x := ...``, ``range $i,
$v := ...``), string/number/bool/nil literals, pipelines with ``|``,
parentheses, ``if``/``else if``/``else``/``end``, ``range`` (with ``else``),
``with``, and the functions docker registers (json, join, split, lower,
upper, title, pad, truncate) plus Go's builtins (printf, print, println,
index, len, eq, ne, lt, le, gt, ge, and, or, not).
"""

from __future__ import annotations

from freight.client import wirejson as json  # not `json`/`re`: ~10 ms on every `ps`

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    """A template that does not parse or cannot be executed."""


class _Missing:
    """A map key that is not there; Go prints it as ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()

# ---------------------------------------------------------------- lexing

_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")

# The lexer is written by hand, not as a regular expression: compiling the
# pattern took ~5 ms on every CLI start, and ``ps`` formats through here.


def _tokenize(src: str) -> list[tuple[str, str]]:
    """Split an action's text into (kind, text) tokens."""
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(src)
    while pos < n:
        c = src[pos]
        if c in " \t\r\n":
            pos += 1
            continue
        end, kind = _token_end(src, pos, c)
        tokens.append((kind, src[pos:end]))
        pos = end
    return tokens


def _token_end(src: str, pos: int, c: str) -> tuple[int, str]:
    if c == '"':
        return _string_end(src, pos), "str"
    if c == "`":
        end = src.find("`", pos + 1)
        if end < 0:
            raise TemplateError("unterminated raw quoted string")
        return end + 1, "raw"
    if c in _DIGITS or (c == "-" and pos + 1 < len(src) and src[pos + 1] in _DIGITS):
        return _number_end(src, pos + 1), "num"
    if src.startswith(":=", pos):
        return pos + 2, "decl"
    if c == "=":
        return pos + 1, "assign"
    if c == ".":
        return _chain_end(src, pos), "field"
    if c == "$":
        return _chain_end(src, _ident_end(src, pos + 1)), "var"
    if c in _IDENT_START:
        return _ident_end(src, pos), "ident"
    if c in "|(),":
        return pos + 1, "punct"
    raise TemplateError(f"unexpected {src[pos : pos + 10]!r} in command")


def _string_end(src: str, pos: int) -> int:
    i = pos + 1
    while i < len(src):
        if src[i] == "\\":
            i += 2
        elif src[i] == '"':
            return i + 1
        else:
            i += 1
    raise TemplateError("unterminated quoted string")


def _number_end(src: str, i: int) -> int:
    while i < len(src) and (
        src[i] in _DIGITS or src[i] in ".eE" or (src[i] in "+-" and src[i - 1] in "eE")
    ):
        i += 1
    return i


def _ident_end(src: str, i: int) -> int:
    while i < len(src) and src[i] in _IDENT_CHARS:
        i += 1
    return i


def _chain_end(src: str, i: int) -> int:
    """End of a field chain '.A.B' starting at ``i``; a lone '.' is dot."""
    end = i
    while end < len(src) and src[end] == ".":
        stop = _ident_end(src, end + 1)
        if stop == end + 1:  # a '.' with no name after it
            return end + 1 if end == i else end
        end = stop
    return end


# ---------------------------------------------------------------- parse tree


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text


class _Pipeline:
    def __init__(self, decls: list[str], cmds: list[list[Any]], assign: bool = False) -> None:
        self.decls = decls
        self.cmds = cmds
        self.assign = assign


class _Action:
    def __init__(self, pipe: _Pipeline) -> None:
        self.pipe = pipe


class _Branch:
    """if / range / with: a pipeline, a body and an optional else body."""

    def __init__(self, kind: str, pipe: _Pipeline) -> None:
        self.kind = kind
        self.pipe = pipe
        self.body: list[Any] = []
        self.orelse: list[Any] = []


class _Field:
    def __init__(self, names: list[str], base: Any = None) -> None:
        self.names = names
        self.base = base  # None means dot; else a _Var or a _Pipeline


class _Var:
    def __init__(self, name: str, names: list[str]) -> None:
        self.name = name
        self.names = names


class _Ident:
    def __init__(self, name: str) -> None:
        self.name = name


class _Literal:
    def __init__(self, value: Any) -> None:
        self.value = value


class _Parser:
    def __init__(self, src: str) -> None:
        self.items = _split_actions(src)
        self.pos = 0

    def parse(self) -> list[Any]:
        nodes, end = self._list()
        if end is not None:
            raise TemplateError(f"unexpected {{{{{end}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], str | None]:
        """Parse nodes until {{end}} / {{else ...}}; return the keyword that stopped it."""
        nodes: list[Any] = []
        while self.pos < len(self.items):
            kind, value = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(_Text(value))
                continue
            word = value.split(None, 1)[0] if value.strip() else ""
            if word in ("end", "else"):
                return nodes, value.strip()
            if word in ("if", "range", "with"):
                nodes.append(self._branch(word, value.strip()[len(word) :]))
            elif value.strip().startswith("/*"):
                continue
            else:
                nodes.append(_Action(_parse_pipeline(_tokenize(value))))
        return nodes, None

    def _branch(self, kind: str, rest: str) -> _Branch:
        node = _Branch(kind, _parse_pipeline(_tokenize(rest)))
        node.body, stop = self._list()
        if stop is None:
            raise TemplateError(f"unexpected EOF in {kind}")
        if stop == "else":
            node.orelse, stop = self._list()
            if stop != "end":
                raise TemplateError(f"expected end; found {stop}")
        elif stop.startswith("else "):
            # "else if X" is an if nested in the else branch sharing our {{end}}.
            inner_kind, _, inner_rest = stop[5:].strip().partition(" ")
            node.orelse = [self._branch(inner_kind, inner_rest)]
        elif stop != "end":
            raise TemplateError(f"unexpected {stop}")
        return node


def _split_actions(src: str) -> list[tuple[str, str]]:
    """Alternate text and action items, applying ``{{- `` and `` -}}`` trimming."""
    items: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip()
        if start < 0:
            if text:
                items.append(("text", text))
            return items
        end = src.find("}}", start + 2)
        if end < 0:
            raise TemplateError("unclosed action")
        action = src[start + 2 : end]
        if action[:1] == "-" and action[1:2] in (" ", "\t", "\n", "\r"):
            text, action = text.rstrip(), action[2:]
        trim_next = action[-1:] == "-" and action[-2:-1] in (" ", "\t", "\n", "\r")
        if trim_next:
            action = action[:-2]
        if text:
            items.append(("text", text))
        items.append(("action", action))
        pos = end + 2


def _parse_pipeline(tokens: list[tuple[str, str]]) -> _Pipeline:
    decls: list[str] = []
    assign = False
    if any(k in ("decl", "assign") for k, _ in tokens[:4]):
        while tokens and tokens[0][0] == "var":
            decls.append(tokens.pop(0)[1])
            if tokens and tokens[0] == ("punct", ","):
                tokens.pop(0)
        if not tokens or tokens[0][0] not in ("decl", "assign"):
            raise TemplateError("bad variable declaration")
        assign = tokens.pop(0)[0] == "assign"
    cmds: list[list[Any]] = [[]]
    stream = iter(tokens)
    for kind, value in stream:
        if (kind, value) == ("punct", "|"):
            cmds.append([])
        else:
            cmds[-1].append(_operand(kind, value, stream))
    if not cmds[-1]:
        raise TemplateError("missing value for command")
    return _Pipeline(decls, cmds, assign)


def _operand(kind: str, value: str, stream: Any) -> Any:
    if kind == "field":
        return _Field([] if value == "." else value[1:].split("."))
    if kind == "var":
        name, _, rest = value.partition(".")
        return _Var(name, rest.split(".") if rest else [])
    if kind == "str":
        return _Literal(json.loads(value))
    if kind == "raw":
        return _Literal(value[1:-1])
    if kind == "num":
        return _Literal(float(value) if any(c in value for c in ".eE") else int(value))
    if kind == "ident":
        literals = {"true": True, "false": False, "nil": None}
        return _Literal(literals[value]) if value in literals else _Ident(value)
    if (kind, value) == ("punct", "("):
        return _Field([], _parse_pipeline(_take_group(stream)))
    raise TemplateError(f"unexpected {value!r} in operand")


def _take_group(stream: Any) -> list[tuple[str, str]]:
    depth, inner = 1, []
    for kind, value in stream:
        if (kind, value) == ("punct", "("):
            depth += 1
        elif (kind, value) == ("punct", ")"):
            depth -= 1
            if depth == 0:
                return inner
        inner.append((kind, value))
    raise TemplateError("unclosed left paren")


# ---------------------------------------------------------------- execution


class Template:
    """A parsed template; ``execute(data)`` returns the rendered text."""

    def __init__(self, src: str, funcs: dict[str, Callable[..., Any]] | None = None) -> None:
        self.src = src
        self.funcs = dict(FUNCS)
        if funcs:
            self.funcs.update(funcs)
        self.nodes = _Parser(src).parse()

    def execute(self, data: Any) -> str:
        out: list[str] = []
        _State(self.funcs, data, out).walk(self.nodes, data)
        return "".join(out)


class _State:
    def __init__(self, funcs: dict[str, Callable[..., Any]], root: Any, out: list[str]) -> None:
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out = out

    def walk(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipeline(node.pipe, dot)
                if not node.pipe.decls:
                    self.out.append(go_print(value))
            else:
                self.branch(node, dot)

    def branch(self, node: _Branch, dot: Any) -> None:
        mark = len(self.vars)
        if node.kind == "range":
            self.range(node, dot)
        else:
            value = self.pipeline(node.pipe, dot)
            if truth(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            else:
                self.walk(node.orelse, dot)
        del self.vars[mark:]

    def range(self, node: _Branch, dot: Any) -> None:
        pipe = node.pipe
        value = self.pipeline(_Pipeline([], pipe.cmds), dot)
        if isinstance(value, dict):
            pairs = sorted(value.items(), key=lambda kv: str(kv[0]))
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            pairs = []
        else:
            raise TemplateError(f"range can't iterate over {go_print(value)}")
        if not pairs:
            self.walk(node.orelse, dot)
            return
        mark = len(self.vars)
        for key, item in pairs:
            del self.vars[mark:]
            if len(pipe.decls) == 1:
                self.vars.append((pipe.decls[0], item))
            elif len(pipe.decls) == 2:
                self.vars += [(pipe.decls[0], key), (pipe.decls[1], item)]
            self.walk(node.body, item)

    def pipeline(self, pipe: _Pipeline, dot: Any) -> Any:
        value: Any = MISSING
        for i, cmd in enumerate(pipe.cmds):
            value = self.command(cmd, dot, value, piped=i > 0)
        for name in pipe.decls:
            if pipe.assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise TemplateError(f"undefined variable: {name}")

    def command(self, cmd: list[Any], dot: Any, piped_value: Any, piped: bool) -> Any:
        head, rest = cmd[0], cmd[1:]
        args = [self.arg(a, dot) for a in rest]
        if piped:
            args.append(piped_value)
        if isinstance(head, _Ident):
            fn = self.funcs.get(head.name)
            if fn is None:
                raise TemplateError(f'function "{head.name}" not defined')
            return fn(*args)
        if isinstance(head, _Field) and head.names:
            base = dot if head.base is None else self.pipeline(head.base, dot)
            return _chain(base, head.names, args)
        if isinstance(head, _Var) and head.names:
            return _chain(self.lookup(head.name), head.names, args)
        if args:
            raise TemplateError("can't give argument to non-function")
        return self.arg(head, dot)

    def arg(self, node: Any, dot: Any) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Field):
            base = dot if node.base is None else self.pipeline(node.base, dot)
            return _chain(base, node.names, [])
        if isinstance(node, _Var):
            return _chain(self.lookup(node.name), node.names, [])
        if isinstance(node, _Ident):
            fn = self.funcs.get(node.name)
            if fn is None:
                raise TemplateError(f'function "{node.name}" not defined')
            return fn()
        raise TemplateError("bad argument")

    def lookup(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise TemplateError(f'undefined variable "{name}"')


def _chain(value: Any, names: list[str], args: list[Any]) -> Any:
    for i, name in enumerate(names):
        last = i == len(names) - 1
        value = _field(value, name, args if last else [])
    return value


def _field(value: Any, name: str, args: list[Any]) -> Any:
    if isinstance(value, dict):
        if args:
            raise TemplateError(f"{name} is not a method but has arguments")
        return value.get(name, MISSING)
    if value is None or value is MISSING:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    attr = getattr(value, name, MISSING)
    if attr is MISSING or name.startswith("_"):
        kind = type(value).__name__
        raise TemplateError(f"can't evaluate field {name} in type {kind}")
    return attr(*args) if callable(attr) else attr


# ---------------------------------------------------------------- Go values


def truth(value: Any) -> bool:
    """Go template truthiness: false, 0, nil and empty things are false."""
    return value is not MISSING and bool(value)


def go_print(value: Any) -> str:
    """Print a value as Go's ``fmt.Sprint`` does for decoded JSON."""
    if value is MISSING:
        return "<no value>"
    return _go_value(value)


def _go_value(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{_go_value(k)}:{_go_value(v)}" for k, v in items) + "]"
    if value is MISSING:
        return "<nil>"
    return str(value)


def _go_float(value: float) -> str:
    # Go's %v for float64 is %g with the shortest exact digits, exponent >= 21.
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mant, exp = text.split("e")
        sign = "-" if exp.startswith("-") else "+"
        return f"{mant}e{sign}{exp.lstrip('+-').rjust(2, '0')}"
    return text


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` for printable text."""
    return json.dumps(text, ensure_ascii=False)


# ---------------------------------------------------------------- functions


def _json(value: Any) -> str:
    if value is MISSING:
        value = None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if to_json is None:
        raise TypeError(f"cannot marshal {type(value).__name__}")
    return to_json()


def _title(text: str) -> str:
    # strings.Title upper-cases the first letter of every word, leaving the rest.
    import re

    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        elif value is None or value is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


def _len(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        raise TemplateError(f"len of type {type(value).__name__}") from None


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the common verbs (%s %v %d %q %f %g %x %t)."""
    import re

    queue = list(args)

    def one(m: re.Match[str]) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        if not queue:
            return f"%!{verb}(MISSING)"
        text = _verb(verb, prec, queue.pop(0))
        if width:
            pad = int(width)
            text = (
                text.ljust(pad) if "-" in flags else text.rjust(pad, "0" if "0" in flags else " ")
            )
        return text

    out = re.sub(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])", one, fmt)
    if queue:
        out += "%!(EXTRA " + ", ".join(_go_value(a) for a in queue) + ")"
    return out


def _verb(verb: str, prec: str | None, arg: Any) -> str:
    if verb in "sv":
        text = go_print(arg)
        return text[: int(prec)] if prec and verb == "s" else text
    if verb == "q":
        return go_quote(go_print(arg))
    if verb == "d" and isinstance(arg, (int, float)):
        return str(int(arg))
    if verb in "feEgG" and isinstance(arg, (int, float)):
        return f"{arg:.{prec or 6}{verb}}" if verb != "g" or prec else _go_float(float(arg))
    if verb in "xX":
        data = arg.encode() if isinstance(arg, str) else None
        return data.hex() if data is not None else format(int(arg), verb)
    if verb == "t":
        return go_print(arg)
    return f"%!{verb}({go_print(arg)})"


def _compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(a: Any, b: Any) -> bool:
        try:
            return op(a, b)
        except TypeError:
            raise TemplateError("incompatible types for comparison") from None

    return compare


def _eq(a: Any, *others: Any) -> bool:
    return any(a == b for b in others)


def _and(*args: Any) -> Any:
    for arg in args:
        if not truth(arg):
            return arg
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if truth(arg):
            return arg
    return args[-1]


def _pad(text: Any, left: int, right: int) -> str:
    return " " * left + go_print(text) + " " * right


def _truncate(text: Any, n: int) -> str:
    return go_print(text)[:n]


def _split(text: str, sep: str) -> list[str]:
    return text.split(sep) if sep else list(text)


def _join(items: Any, sep: str) -> str:
    return sep.join(go_print(i) for i in (items or []))


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": _join,
    "split": _split,
    "lower": lambda s: go_print(s).lower(),
    "upper": lambda s: go_print(s).upper(),
    "title": lambda s: _title(go_print(s)),
    "pad": _pad,
    "truncate": _truncate,
    "printf": go_sprintf,
    "print": lambda *a: "".join(go_print(x) for x in a),
    "println": lambda *a: " ".join(go_print(x) for x in a) + "\n",
    "index": _index,
    "len": _len,
    "eq": _eq,
    "ne": lambda a, b: a != b,
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "and": _and,
    "or": _or,
    "not": lambda a: not truth(a),
}

# In a table's header row every function hands its first argument through,
# so "{{upper .Names}}" still heads its column with "NAMES" (docker does this).
HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    name: (lambda v, *_: v)
    for name in ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")
}


def render(src: str, data: Any) -> str:
    """Parse and execute in one go."""
    return Template(src).execute(data)
