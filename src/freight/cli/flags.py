"""Command-line flags parsed the way docker's (cobra/pflag) are.

Owns: flag declarations, parsing (``--name=v``, ``--name v``, ``-abc``
bundles, ``-e=v``, ``-ev``, ``--`` and, for ``run``/``create``/``exec``,
stopping at the first positional so ``freight run img ls -l`` gives ``-l`` to
the container), argument-count checks, and the usage/help text and error
wording docker prints. Exit status for a usage error is 125, like docker's
run/create.

Values are converted when parsed, so a bad ``-m 12x`` fails with docker's
``invalid argument "12x" for "-m, --memory" flag: invalid suffix: 'x'``.
"""

from __future__ import annotations

from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class UsageError(Exception):
    """A command line that does not parse; the CLI prints it with usage."""

    def __init__(self, message: str, command: Command | None = None, see: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        self.see = see  # argument-count errors say "See ..." and put usage after


class HelpRequested(Exception):
    """--help was given; the CLI prints the command's help and exits 0."""

    def __init__(self, command: Command) -> None:
        super().__init__(command.name)
        self.command = command


def _int(text: str) -> int:
    try:
        return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


class Flag:
    """One option. ``kind`` is bool, string, list or int; ``type_name`` shows in help."""

    __slots__ = (
        "long",
        "short",
        "kind",
        "default",
        "help",
        "type_name",
        "convert",
        "dest",
        "hidden",
    )

    def __init__(
        self,
        long: str,
        short: str = "",
        kind: str = "bool",
        help: str = "",
        *,
        default: Any = None,
        type_name: str | None = None,
        convert: Callable[[str], Any] | None = None,
        hidden: bool = False,
    ) -> None:
        self.long = long
        self.short = short
        self.kind = kind
        self.help = help
        self.default = default if default is not None else _DEFAULTS[kind]()
        self.type_name = type_name if type_name is not None else _TYPE_NAMES[kind]
        self.convert = convert or (_int if kind == "int" else None)
        self.dest = long.replace("-", "_")
        self.hidden = hidden

    def label(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"

    def value(self, text: str) -> Any:
        if self.convert is None:
            return text
        try:
            return self.convert(text)
        except ValueError as exc:
            raise UsageError(
                f'invalid argument "{text}" for "{self.label()}" flag: {exc}'
            ) from None


_DEFAULTS: dict[str, Callable[[], Any]] = {
    "bool": lambda: False,
    "string": lambda: None,
    "list": list,
    "int": lambda: None,
}
_TYPE_NAMES = {"bool": "", "string": "string", "list": "list", "int": "int"}
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class Command:
    """A command's interface: usage line, flags, and how many arguments it takes."""

    def __init__(
        self,
        name: str,
        usage: str,
        summary: str,
        flags: list[Flag] | None = None,
        *,
        min_args: int = 0,
        max_args: int | None = None,
        interspersed: bool = True,
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.name = name  # "run" or "image bootstrap"
        self.usage = usage
        self.summary = summary
        self.flags = list(flags or [])
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed
        self.aliases = aliases

    def parse(self, argv: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Return (values by flag dest, positional arguments)."""
        try:
            values, args = parse_flags(self.flags, argv, self.interspersed)
        except UsageError as exc:
            exc.command = self
            raise
        except _Help:
            raise HelpRequested(self) from None
        self.check_args(args)
        return values, args

    def check_args(self, args: list[str]) -> None:
        n, lo, hi = len(args), self.min_args, self.max_args
        quoted = f'"freight {self.name}"'
        plural = "s" if (lo if n < lo else hi) != 1 else ""
        if hi == 0 and n > 0:
            message = f"{quoted} accepts no arguments."
        elif lo == hi and n != lo:
            message = f"{quoted} requires exactly {lo} argument{plural}."
        elif n < lo:
            message = f"{quoted} requires at least {lo} argument{plural}."
        elif hi is not None and n > hi:
            message = f"{quoted} requires at most {hi} argument{plural}."
        else:
            return
        raise UsageError(message, self, see=True)

    def usage_line(self) -> str:
        return f"Usage:  freight {self.name} {self.usage}".rstrip()

    def help_text(self) -> str:
        parts = [self.usage_line(), "", self.summary]
        if self.aliases:
            parts += ["", "Aliases:", "  " + ", ".join(self.aliases)]
        visible = [f for f in self.flags if not f.hidden]
        if visible:
            parts += ["", "Options:", options_table(visible)]
        return "\n".join(parts) + "\n"


def options_table(flags: list[Flag]) -> str:
    """The Options block: '  -a, --all             Show all ...'."""
    heads = []
    for flag in flags:
        head = f"-{flag.short}, --{flag.long}" if flag.short else f"    --{flag.long}"
        heads.append(f"  {head} {flag.type_name}".rstrip())
    width = max(len(h) for h in heads) + 3
    return "\n".join(h.ljust(width) + f.help for h, f in zip(heads, flags, strict=True))


class _Help(Exception):
    pass


def parse_flags(
    flags: list[Flag], argv: list[str], interspersed: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """pflag's algorithm over ``argv``; raises UsageError with pflag's wording."""
    by_long = {f.long: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    values: dict[str, Any] = {f.dest: _fresh(f.default) for f in flags}
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args += argv[i:]
            break
        if arg.startswith("--"):
            i = _long(arg, argv, i, by_long, values)
        elif arg.startswith("-") and arg != "-":
            i = _shorts(arg, argv, i, by_short, values)
        elif interspersed:
            args.append(arg)
        else:
            args += argv[i - 1 :]
            break
    return values, args


def _fresh(default: Any) -> Any:
    return list(default) if isinstance(default, list) else default


def _long(
    arg: str, argv: list[str], i: int, by_long: dict[str, Flag], values: dict[str, Any]
) -> int:
    name, eq, text = arg[2:].partition("=")
    flag = by_long.get(name)
    if flag is None:
        if name == "help":
            raise _Help
        raise UsageError(f"unknown flag: --{name}")
    if flag.kind == "bool":
        _set_bool(flag, text if eq else "true", values)
        return i
    if not eq:
        if i >= len(argv):
            raise UsageError(f"flag needs an argument: --{name}")
        text, i = argv[i], i + 1
    _set(flag, text, values)
    return i


def _shorts(
    arg: str, argv: list[str], i: int, by_short: dict[str, Flag], values: dict[str, Any]
) -> int:
    letters = arg[1:]
    j = 0
    while j < len(letters):
        c = letters[j]
        flag = by_short.get(c)
        if flag is None:
            if c == "h" and "h" not in by_short:
                raise _Help
            raise UsageError(f"unknown shorthand flag: '{c}' in {arg}")
        rest = letters[j + 1 :]
        if flag.kind == "bool":
            if rest.startswith("="):
                _set_bool(flag, rest[1:], values)
                return i
            _set_bool(flag, "true", values)
            j += 1
            continue
        if rest:
            _set(flag, rest[1:] if rest.startswith("=") else rest, values)
            return i
        if i >= len(argv):
            raise UsageError(f"flag needs an argument: '{c}' in {arg}")
        _set(flag, argv[i], values)
        return i + 1
    return i


def _set_bool(flag: Flag, text: str, values: dict[str, Any]) -> None:
    if text in _TRUE:
        values[flag.dest] = True
    elif text in _FALSE:
        values[flag.dest] = False
    else:
        message = f'strconv.ParseBool: parsing "{text}": invalid syntax'
        raise UsageError(f'invalid argument "{text}" for "{flag.label()}" flag: {message}')


def _set(flag: Flag, text: str, values: dict[str, Any]) -> None:
    value = flag.value(text)
    if flag.kind == "list":
        values[flag.dest].append(value)
    else:
        values[flag.dest] = value


def key_value_map(items: list[str], strict_flag: str | None = None) -> dict[str, str]:
    """KEY=VALUE options (labels, driver options); a bare KEY has an empty value,
    unless `strict_flag` names the flag ("-o, --opt"), which then refuses it as docker does."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq and strict_flag:
            raise CliError(
                f'invalid argument "{item}" for "{strict_flag}" flag: invalid key value pair format'
            )
        out[key] = value
    return out
