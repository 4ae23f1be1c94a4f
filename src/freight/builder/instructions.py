"""Typed Dockerfile instructions, made from parser Nodes with variables expanded.

`to_instruction(node, env)` checks an instruction's flags and arguments the
way Docker's builder does and expands `$variables` in the instructions that
allow it (ADD, ARG, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
WORKDIR); RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are kept as
written. Errors are DockerfileErrors naming the instruction's line.

`check(node)` does the same checks without any values (variables are left as
written and checks of their values skipped): `dockerfile.parse` runs it on
every instruction so a malformed Dockerfile fails before any step runs.
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from freight.builder.dockerfile import (
    DockerfileError,
    Heredoc,
    Node,
    chomp,
    heredoc_marker,
    json_array,
    parse_instruction,
)
from freight.builder.shellwords import ExpansionError, expand, expand_raw, expand_words, split_words
from freight.dockerapi import goduration

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$", re.IGNORECASE)
_PORT_RANGE = re.compile(r"^(\d+)-(\d+)(/[a-zA-Z]+)?$")


# the instructions ------------------------------------------------------------------


@dataclass(frozen=True)
class From:
    image: str
    name: str | None  # lower-cased
    platform: str | None
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class RunMount:
    type: str  # bind | cache | tmpfs | secret | ssh
    target: str
    source: str | None = None
    from_: str | None = None
    id: str | None = None
    sharing: str = "shared"
    readonly: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int | None = None  # tmpfs, bytes
    env: str | None = None  # secret exposed as an environment variable


@dataclass(frozen=True)
class Run:
    cmd: list[str]
    prepend_shell: bool
    mounts: list[RunMount] = field(default_factory=list)
    network: str | None = None
    security: str | None = None
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Cmd:
    cmd: list[str]
    prepend_shell: bool
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Entrypoint:
    cmd: list[str]
    prepend_shell: bool
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Env:
    pairs: list[tuple[str, str]]
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Label:
    pairs: list[tuple[str, str]]
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Arg:
    args: list[tuple[str, str | None]]
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Expose:
    ports: list[str]  # "80", "53/udp"; ranges expanded
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Volume:
    paths: list[str]
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class User:
    user: str
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Workdir:
    path: str
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Shell:
    shell: list[str]
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class StopSignal:
    signal: str
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Healthcheck:
    test: list[str] | None  # ["NONE"], ["CMD", ...], ["CMD-SHELL", script]
    interval: int = 0  # nanoseconds; 0 = not set
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Onbuild:
    expression: str  # the trigger as written, heredoc bodies appended
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Maintainer:
    name: str
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Copy:
    sources: list[str]  # context (or --from) paths; heredoc files are in `heredocs`
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: list[str] = field(default_factory=list)
    heredocs: list[Heredoc] = field(default_factory=list)  # name = file name, content final
    line: int = 0
    original: str = ""


@dataclass(frozen=True)
class Add:
    sources: list[str]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    exclude: list[str] = field(default_factory=list)
    heredocs: list[Heredoc] = field(default_factory=list)
    checksum: str | None = None
    keep_git_dir: bool = False
    line: int = 0
    original: str = ""


Instruction = (
    From
    | Run
    | Cmd
    | Entrypoint
    | Env
    | Label
    | Arg
    | Expose
    | Volume
    | User
    | Workdir
    | Shell
    | StopSignal
    | Healthcheck
    | Onbuild
    | Maintainer
    | Copy
    | Add
)


# entry points ------------------------------------------------------------------------


def to_instruction(node: Node, env: Mapping[str, str], escape: str = "\\") -> Instruction:
    """The typed instruction of `node`, variables expanded from `env`."""
    return _build(_Context(node, env, escape, checking=False))


def check(node: Node, escape: str = "\\") -> None:
    """Raise the DockerfileError docker would for a malformed instruction, before any build."""
    _build(_Context(node, {}, escape, checking=True))


def _build(ctx: _Context) -> Instruction:
    try:
        return _BUILDERS[ctx.node.keyword](ctx)
    except ExpansionError as e:
        raise ctx.error(str(e)) from None


class _Context:
    """What a builder needs: the node, expansion, flag values, errors with the line."""

    def __init__(self, node: Node, env: Mapping[str, str], escape: str, *, checking: bool):
        self.node = node
        self.env = env
        self.escape = escape
        self.checking = checking  # no values: `$v` stays as written, value checks skipped

    def error(self, msg: str) -> DockerfileError:
        return DockerfileError(self.node.line, msg)

    def word(self, text: str) -> str:
        return expand(text, self.env, self.escape, keep_unset=self.checking)

    def words(self, text: str) -> list[str]:
        return expand_words(text, self.env, self.escape, keep_unset=self.checking)

    def unknown(self, value: str) -> bool:
        """True when checking and `value` still holds a variable: its value is unknown."""
        return self.checking and "$" in value

    def flags(self, spec: dict[str, str]) -> _Flags:
        return _Flags.parse(self, spec)


class _Flags:
    """Docker's instruction flags: --name=value, --bool[=true|false], repeatable lists."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}

    @classmethod
    def parse(cls, ctx: _Context, spec: dict[str, str]) -> _Flags:
        flags = cls()
        for raw in ctx.node.flags:
            if not raw.startswith("--"):
                raise ctx.error(f"arg should start with -- : {raw}")
            name, eq, value = raw[2:].partition("=")
            kind = spec.get(name)
            if kind is None:
                raise ctx.error(f"unknown flag: {name}")
            if kind != "list" and (name in flags.values):
                raise ctx.error(f"duplicate flag specified: {name}")
            if kind == "bool":
                if eq and not value:
                    raise ctx.error(f"missing a value on flag: {name}")
                lower = value.lower() if eq else "true"
                if lower not in ("true", "false"):
                    raise ctx.error(f"expecting boolean value for flag {name}, not: {value}")
                flags.values[name] = lower
            elif not eq:
                raise ctx.error(f"missing a value on flag: {name}")
            elif kind == "list":
                flags.lists.setdefault(name, []).append(value)
            else:
                flags.values[name] = value
        return flags

    def string(self, name: str) -> str | None:
        return self.values.get(name)

    def boolean(self, name: str) -> bool:
        return self.values.get(name) == "true"

    def many(self, name: str) -> list[str]:
        return list(self.lists.get(name, []))


def _one_argument(ctx: _Context, keyword: str) -> str:
    text = ctx.node.args.strip()
    if not text:
        raise ctx.error(f"{keyword} requires exactly one argument")
    return text


def _no_flags(ctx: _Context) -> None:
    ctx.flags({})


def _optional(ctx: _Context, value: str | None) -> str | None:
    return None if value is None else ctx.word(value)


# FROM ---------------------------------------------------------------------------------


def _from(ctx: _Context) -> From:
    flags = ctx.flags({"platform": "string"})
    args = ctx.node.args.split()
    if not (len(args) == 1 or (len(args) == 3 and args[1].lower() == "as")):
        raise ctx.error("FROM requires either one or three arguments")
    image = ctx.word(args[0])
    if not image:
        raise ctx.error(f"base name ({args[0]}) should not be blank")
    name = None
    if len(args) == 3:
        name = ctx.word(args[2]).lower()
        if not ctx.unknown(name) and not _STAGE_NAME.match(name):
            raise ctx.error(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols"
            )
    platform = _optional(ctx, flags.string("platform")) or None
    return From(image, name, platform, ctx.node.line, ctx.node.original)


# RUN, CMD, ENTRYPOINT, SHELL ------------------------------------------------------------------


def _run(ctx: _Context) -> Run:
    flags = ctx.flags({"mount": "list", "network": "string", "security": "string"})
    mounts = _mounts(ctx, flags.many("mount"))
    network = flags.string("network")
    if network is not None and network not in NETWORK_MODES:
        raise ctx.error(f'unsupported network mode "{network}"')
    security = flags.string("security")
    if security is not None and security not in SECURITY_MODES:
        raise ctx.error(f'unsupported security mode "{security}"')
    cmd, prepend = _command(ctx, "RUN", _heredoc_script(ctx))
    return Run(cmd, prepend, mounts, network, security, ctx.node.line, ctx.node.original)


def _command(ctx: _Context, keyword: str, script: str | None = None) -> tuple[list[str], bool]:
    """Exec form (JSON array) or shell form; `script` replaces the text (heredocs)."""
    if ctx.node.json_args is not None:
        return list(ctx.node.json_args), False
    text = script if script is not None else ctx.node.args.strip()
    if not text:
        raise ctx.error(f"{keyword} requires at least one argument")
    return [text], True


def _heredoc_script(ctx: _Context) -> str | None:
    """RUN's heredocs as one script for the shell, as BuildKit runs them.

    `RUN <<EOF` alone runs the body itself (a `#!` body as its own executable);
    a longer command line gets the bodies appended after it, so the shell in the
    container does the redirection: `RUN cat <<EOF > /f`.
    """
    docs = ctx.node.heredocs
    if not docs or ctx.node.json_args is not None:
        return None
    args = ctx.node.args.strip()
    if len(docs) == 1 and heredoc_marker(args) is not None:
        body = chomp(docs[0].content) if docs[0].chomp else docs[0].content
        return _shebang_script(body) if body.startswith("#!") else body
    return args + "".join(f"\n{d.content}{d.name}" for d in docs)


def _shebang_script(body: str) -> str:
    """Run a `#!` heredoc as an executable file (the shell can't interpret it)."""
    marker = "FREIGHT_HEREDOC"
    while marker in body:
        marker += "_"
    return (
        'set -e; f="$(mktemp)"; trap \'rm -f "$f"\' EXIT\n'
        f"cat > \"$f\" <<'{marker}'\n{body}{'' if body.endswith(chr(10)) else chr(10)}{marker}\n"
        'chmod +x "$f"; "$f"'
    )


def _cmd(ctx: _Context) -> Cmd:
    _no_flags(ctx)
    cmd, prepend = _command(ctx, "CMD")
    return Cmd(cmd, prepend, ctx.node.line, ctx.node.original)


def _entrypoint(ctx: _Context) -> Entrypoint:
    _no_flags(ctx)
    cmd, prepend = _command(ctx, "ENTRYPOINT")
    return Entrypoint(cmd, prepend, ctx.node.line, ctx.node.original)


def _shell(ctx: _Context) -> Shell:
    _no_flags(ctx)
    if ctx.node.json_args is None:
        raise ctx.error("SHELL requires the arguments to be in JSON form")
    if not ctx.node.json_args:
        raise ctx.error("SHELL requires at least one argument")
    return Shell(list(ctx.node.json_args), ctx.node.line, ctx.node.original)


# RUN --mount ------------------------------------------------------------------------------


def _mounts(ctx: _Context, specs: list[str]) -> list[RunMount]:
    mounts: list[RunMount] = []
    ssh_count = 0
    for spec in specs:
        mount = _mount(ctx, spec, ssh_count)
        ssh_count += mount.type == "ssh"
        mounts.append(mount)
    return mounts


def _mount(ctx: _Context, spec: str, ssh_index: int) -> RunMount:
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as e:
        raise ctx.error(f"failed to parse csv mount: {e}") from None
    m: dict[str, object] = {"type": "bind"}
    readonly: bool | None = None
    sharing: str | None = None
    for item in fields:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in ("ro", "readonly"):
                readonly = True
            elif key in ("rw", "readwrite"):
                readonly = False
            elif key == "required":
                _only_for(ctx, m, key, ("secret", "ssh"))
                m["required"] = True
            else:
                raise ctx.error(f"invalid field '{item}' must be a key=value pair")
            continue
        value = ctx.word(value)
        if key == "type":
            if value.lower() not in MOUNT_TYPES:
                raise ctx.error(f'unsupported mount type "{value}"')
            m["type"] = value.lower()
        elif key == "from":
            m["from_"] = value
        elif key in ("source", "src"):
            m["source"] = value
        elif key in ("target", "dst", "destination"):
            m["target"] = value
        elif key in ("readonly", "ro"):
            readonly = _mount_bool(ctx, key, value)
        elif key in ("readwrite", "rw"):
            readonly = not _mount_bool(ctx, key, value)
        elif key == "required":
            _only_for(ctx, m, key, ("secret", "ssh"))
            m["required"] = _mount_bool(ctx, key, value)
        elif key == "sharing":
            if value.lower() not in SHARING_MODES:
                raise ctx.error(f'unsupported sharing value "{value}"')
            sharing = value.lower()
        elif key == "id":
            m["id"] = value
        elif key in ("mode", "uid", "gid"):
            m[key] = _mount_int(ctx, key, value, 8 if key == "mode" else 10)
        elif key == "size":
            _only_for(ctx, m, key, ("tmpfs",))
            m["size"] = _size(ctx, value)
        elif key == "env":
            _only_for(ctx, m, key, ("secret",))
            m["env"] = value
        else:
            raise ctx.error(f"unexpected key '{key}' in '{item}'")
    return _finish_mount(ctx, m, readonly, sharing, ssh_index)


def _finish_mount(
    ctx: _Context, m: dict[str, object], readonly: bool | None, sharing: str | None, ssh: int
) -> RunMount:
    kind = str(m["type"])
    if sharing is not None and kind != "cache":
        raise ctx.error(f"invalid cache sharing set for {kind} mount")
    if kind not in ("cache", "secret", "ssh"):
        for key in ("mode", "uid", "gid"):
            if m.get(key) is not None:
                raise ctx.error(f'{key} not allowed for "{kind}" type mounts')
    if kind == "secret":
        if m.get("from_"):
            raise ctx.error("secret mount should not have a from")
        if m.get("source") and m.get("id"):
            raise ctx.error("both source and id can't be set")
        if not (m.get("source") or m.get("id") or m.get("target") or m.get("env")):
            raise ctx.error("invalid secret mount. one of source, target required")
        m["id"] = m.get("id") or m.get("source") or posixpath.basename(str(m.get("target", "")))
        m.setdefault("target", "" if m.get("env") else f"/run/secrets/{m['id']}")
    elif kind == "ssh":
        m.setdefault("id", "default")
        m.setdefault("target", f"/run/buildkit/ssh_agent.{ssh}")
        m.setdefault("mode", 0o600)
    elif not m.get("target"):
        raise ctx.error(f"mount type {kind} requires a target")
    if readonly is None:
        readonly = kind not in ("cache", "tmpfs")
    return RunMount(
        type=kind,
        target=str(m["target"]),
        source=_opt_str(m.get("source")),
        from_=_opt_str(m.get("from_")),
        id=_opt_str(m.get("id")),
        sharing=sharing or "shared",
        readonly=readonly,
        mode=_opt_int(m.get("mode")),
        uid=_opt_int(m.get("uid")),
        gid=_opt_int(m.get("gid")),
        required=bool(m.get("required", False)),
        size=_opt_int(m.get("size")),
        env=_opt_str(m.get("env")),
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _only_for(ctx: _Context, m: dict[str, object], key: str, kinds: tuple[str, ...]) -> None:
    if m["type"] not in kinds:
        raise ctx.error(f"unexpected key '{key}' for mount type '{m['type']}'")


def _mount_bool(ctx: _Context, key: str, value: str) -> bool:
    lower = value.lower()
    if lower in ("1", "t", "true"):
        return True
    if lower in ("0", "f", "false"):
        return False
    raise ctx.error(f"invalid value for {key}: {value}")


def _mount_int(ctx: _Context, key: str, value: str, base: int) -> int | None:
    if ctx.unknown(value):
        return None
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if not 0 <= number < 2**32 or not value.isdigit():
        raise ctx.error(f"invalid value {value} for {key}")
    return number


def _size(ctx: _Context, value: str) -> int | None:
    if ctx.unknown(value):
        return None
    m = _SIZE.match(value.strip())
    if not m:
        raise ctx.error(f"invalid size: '{value}'")
    scale = 1024 ** " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * scale)


# ENV, LABEL, ARG ---------------------------------------------------------------------------


def _pairs(ctx: _Context, keyword: str) -> list[tuple[str, str]]:
    """`K=V ...` pairs, or the legacy `K V...` form (one pair, value = rest of line)."""
    words = split_words(ctx.node.args, ctx.escape)
    if not words:
        raise ctx.error(f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = ctx.node.args.strip().split(None, 1)
        if len(parts) < 2:
            raise ctx.error(f"{keyword} must have two arguments")
        return [(ctx.word(parts[0]), ctx.word(parts[1]))]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise ctx.error(
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        if not key:
            raise ctx.error(f"{keyword} names can not be blank")
        pairs.append((ctx.word(key), ctx.word(value)))
    return pairs


def _env(ctx: _Context) -> Env:
    _no_flags(ctx)
    return Env(_pairs(ctx, "ENV"), ctx.node.line, ctx.node.original)


def _label(ctx: _Context) -> Label:
    _no_flags(ctx)
    return Label(_pairs(ctx, "LABEL"), ctx.node.line, ctx.node.original)


def _arg(ctx: _Context) -> Arg:
    _no_flags(ctx)
    words = split_words(ctx.node.args, ctx.escape)
    if not words:
        raise ctx.error("ARG requires at least one argument")
    args: list[tuple[str, str | None]] = []
    for word in words:
        name, eq, value = word.partition("=")
        if eq and not name:
            raise ctx.error("ARG names can not be blank")
        args.append((ctx.word(name), ctx.word(value) if eq else None))
    return Arg(args, ctx.node.line, ctx.node.original)


# EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER -----------------------------------------


def _expose(ctx: _Context) -> Expose:
    _no_flags(ctx)
    raw = ctx.node.args.split()
    if not raw:
        raise ctx.error("EXPOSE requires at least one argument")
    ports: list[str] = []
    for word in raw:
        for port in ctx.words(word):
            ports += _port_specs(ctx, port)
    return Expose(ports, ctx.node.line, ctx.node.original)


def _port_specs(ctx: _Context, spec: str) -> list[str]:
    """One EXPOSE word: a port or a range (`8000-8002/udp` -> three ports)."""
    if ctx.unknown(spec):
        return [spec]
    m = _PORT_RANGE.match(spec)
    if m:
        first, last, proto = int(m.group(1)), int(m.group(2)), (m.group(3) or "").lower()
        if first > last or last > 65535:
            raise ctx.error(f"invalid range specified for container port: {spec}")
        return [f"{p}{proto}" for p in range(first, last + 1)]
    port, slash, proto = spec.rpartition(":")[2].partition("/")
    if not port.isdigit() or int(port) > 65535:
        raise ctx.error(f"invalid containerPort: {port}")
    return [port + (slash + proto.lower() if slash else "")]


def _volume(ctx: _Context) -> Volume:
    _no_flags(ctx)
    words = ctx.node.json_args if ctx.node.json_args is not None else ctx.node.args.split()
    if not words:
        raise ctx.error("VOLUME requires at least one argument")
    paths = [ctx.word(w) for w in words]
    if any(not p.strip() for p in paths):
        raise ctx.error("VOLUME specified can not be an empty string")
    return Volume(paths, ctx.node.line, ctx.node.original)


def _user(ctx: _Context) -> User:
    _no_flags(ctx)
    return User(ctx.word(_one_argument(ctx, "USER")), ctx.node.line, ctx.node.original)


def _workdir(ctx: _Context) -> Workdir:
    _no_flags(ctx)
    path = ctx.word(_one_argument(ctx, "WORKDIR"))
    if not path and not ctx.checking:
        raise ctx.error("WORKDIR requires exactly one argument")
    return Workdir(path, ctx.node.line, ctx.node.original)


def _stopsignal(ctx: _Context) -> StopSignal:
    _no_flags(ctx)
    signal = ctx.word(_one_argument(ctx, "STOPSIGNAL"))
    if not ctx.unknown(signal) and not re.fullmatch(r"[A-Za-z0-9+\-]+", signal):
        raise ctx.error(f"Invalid signal: {signal}")
    return StopSignal(signal, ctx.node.line, ctx.node.original)


def _maintainer(ctx: _Context) -> Maintainer:
    _no_flags(ctx)
    name = _one_argument(ctx, "MAINTAINER")
    return Maintainer(name, ctx.node.line, ctx.node.original)


# HEALTHCHECK ----------------------------------------------------------------------------------


def _healthcheck(ctx: _Context) -> Healthcheck:
    flags = ctx.flags(
        {
            "interval": "string",
            "timeout": "string",
            "start-period": "string",
            "start-interval": "string",
            "retries": "string",
        }
    )
    parts = ctx.node.args.strip().split(None, 1)
    if not parts:
        raise ctx.error("HEALTHCHECK requires at least one argument")
    kind = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    line, original = ctx.node.line, ctx.node.original
    if kind == "NONE":
        if rest:
            raise ctx.error("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(["NONE"], line=line, original=original)
    if kind != "CMD":
        raise ctx.error(f'Unknown type "{parts[0]}" in HEALTHCHECK (try CMD)')
    try:
        exec_form = json_array(rest)
    except ValueError as e:
        raise ctx.error(str(e)) from None
    if exec_form is not None:
        test = ["CMD", *exec_form]
    else:
        test = ["CMD-SHELL", rest.strip()] if rest.strip() else ["CMD"]
    if len(test) == 1:
        raise ctx.error("Missing command after HEALTHCHECK CMD")
    return Healthcheck(
        test,
        interval=_interval(ctx, "interval", flags.string("interval")),
        timeout=_interval(ctx, "timeout", flags.string("timeout")),
        start_period=_interval(ctx, "start-period", flags.string("start-period")),
        start_interval=_interval(ctx, "start-interval", flags.string("start-interval")),
        retries=_retries(ctx, flags.string("retries")),
        line=line,
        original=original,
    )


def parse_duration(text: str) -> int:
    """A Go duration ("1m30s", "1.5h", "250ms", "0") in nanoseconds; ValueError if malformed
    (one message for every malformation, as the builder reports it)."""
    try:
        return goduration.parse_ns(text)
    except ValueError:
        raise ValueError(f'time: invalid duration "{text}"') from None


def _interval(ctx: _Context, name: str, value: str | None) -> int:
    if not value:
        return 0
    try:
        ns = parse_duration(value)
    except ValueError as e:
        raise ctx.error(str(e)) from None
    if ns == 0:
        return 0
    if ns < 1_000_000:
        raise ctx.error(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _retries(ctx: _Context, value: str | None) -> int:
    if not value:
        return 0
    try:
        retries = int(value)
    except ValueError:
        raise ctx.error(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
    if retries < 0:
        raise ctx.error(f"--retries cannot be negative ({retries})")
    return retries


# ONBUILD ----------------------------------------------------------------------------------------


def _onbuild(ctx: _Context) -> Onbuild:
    _no_flags(ctx)
    args = ctx.node.args.strip()
    if not args:
        raise ctx.error("ONBUILD requires at least one argument")
    trigger = args.split(None, 1)[0].upper()
    if trigger == "ONBUILD":
        raise ctx.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise ctx.error(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", ctx.node.original)
    expression += "".join(f"\n{d.content}{d.name}" for d in ctx.node.heredocs)
    try:
        check(parse_instruction(expression, ctx.escape), ctx.escape)
    except DockerfileError as e:
        raise ctx.error(e.msg) from None
    return Onbuild(expression, ctx.node.line, ctx.node.original)


# COPY, ADD ----------------------------------------------------------------------------------------


def _sources_and_dest(ctx: _Context, keyword: str) -> tuple[list[str], str, list[Heredoc]]:
    words = ctx.node.json_args if ctx.node.json_args is not None else ctx.node.args.split()
    if len(words) < 2:
        raise ctx.error(
            f"{keyword} requires at least two arguments, but only one was provided. "
            "Destination could not be determined."
        )
    *srcs, dest = words
    if heredoc_marker(dest) is not None:
        raise ctx.error(f"{keyword} cannot accept a heredoc as a destination")
    bodies = {d.name: d for d in ctx.node.heredocs}
    sources: list[str] = []
    docs: list[Heredoc] = []
    for src in srcs:
        marker = heredoc_marker(src)
        if marker is None:
            sources.append(ctx.word(src))
            continue
        found = bodies.get(marker.name)
        content = found.content if found else ""
        if marker.chomp:
            content = chomp(content)
        if marker.expand and not ctx.checking:
            content = expand_raw(content, ctx.env, ctx.escape)
        docs.append(Heredoc(marker.name, content, marker.expand, marker.chomp))
    return sources, ctx.word(dest), docs


def _chmod(ctx: _Context, value: str | None) -> str | None:
    if value is None:
        return None
    mode = ctx.word(value)
    if ctx.unknown(mode):
        return mode
    if not re.fullmatch(r"[0-7]{1,5}", mode) or int(mode, 8) > 0o7777:
        raise ctx.error(
            f"invalid chmod parameter {mode}. it should be octal string and between 0 and 07777"
        )
    return mode


def _copy(ctx: _Context) -> Copy:
    flags = ctx.flags(
        {
            "chown": "string",
            "chmod": "string",
            "from": "string",
            "link": "bool",
            "parents": "bool",
            "exclude": "list",
        }
    )
    sources, dest, docs = _sources_and_dest(ctx, "COPY")
    return Copy(
        sources,
        dest,
        from_=_optional(ctx, flags.string("from")) or None,
        chown=_optional(ctx, flags.string("chown")) or None,
        chmod=_chmod(ctx, flags.string("chmod")),
        link=flags.boolean("link"),
        parents=flags.boolean("parents"),
        exclude=[ctx.word(e) for e in flags.many("exclude")],
        heredocs=docs,
        line=ctx.node.line,
        original=ctx.node.original,
    )


def _add(ctx: _Context) -> Add:
    flags = ctx.flags(
        {
            "chown": "string",
            "chmod": "string",
            "link": "bool",
            "exclude": "list",
            "checksum": "string",
            "keep-git-dir": "bool",
        }
    )
    sources, dest, docs = _sources_and_dest(ctx, "ADD")
    return Add(
        sources,
        dest,
        chown=_optional(ctx, flags.string("chown")) or None,
        chmod=_chmod(ctx, flags.string("chmod")),
        link=flags.boolean("link"),
        exclude=[ctx.word(e) for e in flags.many("exclude")],
        heredocs=docs,
        checksum=_optional(ctx, flags.string("checksum")) or None,
        keep_git_dir=flags.boolean("keep-git-dir"),
        line=ctx.node.line,
        original=ctx.node.original,
    )


_BUILDERS: dict[str, Callable[[_Context], Instruction]] = {
    "add": _add,
    "arg": _arg,
    "cmd": _cmd,
    "copy": _copy,
    "entrypoint": _entrypoint,
    "env": _env,
    "expose": _expose,
    "from": _from,
    "healthcheck": _healthcheck,
    "label": _label,
    "maintainer": _maintainer,
    "onbuild": _onbuild,
    "run": _run,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "user": _user,
    "volume": _volume,
    "workdir": _workdir,
}

__all__ = [
    "MOUNT_TYPES",
    "Add",
    "Arg",
    "Cmd",
    "Copy",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "Instruction",
    "Label",
    "Maintainer",
    "Onbuild",
    "Run",
    "RunMount",
    "Shell",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
    "check",
    "parse_duration",
    "to_instruction",
]
