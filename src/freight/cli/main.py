"""The ``freight`` entry point: global flags, dispatch, and exit statuses.

Owns: parsing the global options (``-H``, ``-D``, ``--log-level``,
``--version``), finding the command in the lazy table and importing only
its module, and turning errors into docker's messages and exit statuses
(usage errors 125; daemon errors 125 for run and 1 otherwise, as docker;
Ctrl-C 130).

Start time matters: this module imports only ``os``, ``sys`` and the flag
parser. ``json``, ``socket`` and the command modules load on demand.
"""

from __future__ import annotations

import os
import sys

from freight import __version__
from freight.cli.commands import COMMANDS, GROUPS
from freight.cli.flags import Command, Flag, HelpRequested, UsageError, options_table
from freight.cli.session import CliError, Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from freight.cli.contexts import TlsFlags

GLOBAL = Command(
    "",
    "[OPTIONS] COMMAND",
    "A self-sufficient runtime for containers",
    [
        Flag(
            "context",
            "c",
            "string",
            'Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var and default context set with "freight context use")',
        ),
        Flag("debug", "D", help="Enable debug mode"),
        Flag("host", "H", "list", "Daemon socket to connect to"),
        Flag(
            "log-level",
            "l",
            "string",
            'Set the logging level ("debug", "info", "warn", "error", "fatal") (default "info")',
        ),
        Flag("tls", help="Use TLS; implied by --tlsverify"),
        Flag(
            "tlscacert",
            "",
            "string",
            'Trust certs signed only by this CA (default "~/.docker/ca.pem")',
        ),
        Flag(
            "tlscert", "", "string", 'Path to TLS certificate file (default "~/.docker/cert.pem")'
        ),
        Flag("tlskey", "", "string", 'Path to TLS key file (default "~/.docker/key.pem")'),
        Flag("tlsverify", help="Use TLS and verify the remote"),
        Flag("version", "v", help="Print version information and quit"),
    ],
    interspersed=False,
)

_COMMON = ("run", "exec", "ps", "images", "logs", "inspect", "import", "version", "info")


def version_line() -> str:
    return f"Freight version {__version__}, build {build_id()}"


def build_id() -> str:
    """The git short sha of the source tree we run from, else 'dev'.

    Read from .git directly: running ``git`` would cost a process spawn
    on every ``--version``.
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    git = os.path.join(root, ".git")
    try:
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head[:7]
        return _resolve_ref(git, head[5:])[:7] or "dev"
    except OSError:
        return "dev"


def _resolve_ref(git: str, ref: str) -> str:
    try:
        with open(os.path.join(git, ref)) as f:
            return f.read().strip()
    except OSError:
        pass  # packed: look in packed-refs below
    with open(os.path.join(git, "packed-refs")) as f:
        for line in f:
            sha, _, name = line.strip().partition(" ")
            if name == ref:
                return sha
    return ""


def help_text() -> str:
    def rows(items: list[tuple[str, str]]) -> list[str]:
        width = max(len(n) for n, _ in items) + 2
        return [f"  {n.ljust(width)}{s}" for n, s in items]

    common = [(n, COMMANDS[n][2]) for n in _COMMON]
    management = [(n, g[0]) for n, g in GROUPS.items()]
    others = [(n, c[2]) for n, c in COMMANDS.items() if n not in _COMMON]
    lines = [GLOBAL.usage_line().replace("  freight ", "  freight"), "", GLOBAL.summary, ""]
    lines += ["Common Commands:", *rows(common), "", "Management Commands:", *rows(management)]
    lines += ["", "Commands:", *rows(others), "", "Global Options:", options_table(GLOBAL.flags)]
    lines += ["", "Run 'freight COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def group_help(group: str) -> str:
    summary, table = GROUPS[group]
    width = max(len(n) for n in table) + 2
    lines = [f"Usage:  freight {group} COMMAND", "", summary, "", "Commands:"]
    lines += [f"  {n.ljust(width)}{spec[2]}" for n, spec in table.items()]
    lines += ["", f"Run 'freight {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def resolve(args: list[str]) -> tuple[Callable[[Session, list[str]], int] | None, list[str]]:
    """Find the command for ``args``; import its module; return (function, its argv)."""
    name, rest = args[0], args[1:]
    if name in GROUPS:
        if not rest or rest[0] in ("--help", "-h"):
            sys.stdout.write(group_help(name))
            return None, []
        sub = GROUPS[name][1].get(rest[0])
        if sub is None:
            raise UsageError(f"unknown command: freight {name} {rest[0]}")
        spec, rest = sub, rest[1:]
    else:
        spec = COMMANDS.get(name)
        if spec is None:
            raise UsageError(f"unknown command: freight {name}")
    module_name, func, _ = spec
    module = __import__(module_name, fromlist=[func])
    return getattr(module, func), rest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # "freight ps | head": the reader left; say nothing, like docker.
        sys.stderr.close()
        return 0


def run() -> None:
    """The installed command: `main`, then a quick exit.

    The interpreter's orderly shutdown (module teardown, GC) costs ~8 ms that a
    finished CLI has no use for; the output is flushed first, so nothing is lost.
    """
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader left, or the stream was closed
        pass
    os._exit(status)


def _main(argv: list[str]) -> int:
    rest: list[str] = []
    try:
        values, rest = GLOBAL.parse(argv)
        if values["version"]:
            sys.stdout.write(version_line() + "\n")
            return 0
        if not rest:
            sys.stdout.write(help_text())
            return 0
        session = Session(
            (values["host"] or [None])[-1],
            values["debug"],
            values["log_level"] or "info",
            values["context"],
            _tls_flags(values),
        )
        func, cmd_argv = resolve(rest)
        return 0 if func is None else func(session, cmd_argv)
    except HelpRequested as exc:
        sys.stdout.write(help_text() if not exc.command.name else exc.command.help_text())
        return 0
    except UsageError as exc:
        sys.stderr.write(usage_error_text(exc))
        return 125
    except CliError as exc:
        sys.stderr.write(f"freight: {exc.message}\n")
        return exc.status if exc.status is not None else failure_status(rest)
    except Exception as exc:
        return _unexpected(exc, "-D" in argv or "--debug" in argv, failure_status(rest))


def _tls_flags(values: dict) -> TlsFlags | None:
    names = ("tls", "tlsverify", "tlscacert", "tlscert", "tlskey")
    if not any(values[n] for n in names):
        return None
    from freight.cli.contexts import TlsFlags

    return TlsFlags(
        values["tls"],
        True if values["tlsverify"] else None,  # not given: DOCKER_TLS_VERIFY decides
        values["tlscacert"],
        values["tlscert"],
        values["tlskey"],
    )


STATUS_ERROR_COMMANDS = {"run"}  # docker 28's create exits 1 on a daemon error (checked)


def failure_status(command_words: list[str]) -> int:
    """docker exits 125 when run fails, 1 when any other command does."""
    words = [a for a in command_words if not a.startswith("-")][:2]
    if words and words[0] == "container":
        words = words[1:]
    return 125 if words and words[0] in STATUS_ERROR_COMMANDS else 1


def usage_error_text(exc: UsageError) -> str:
    """docker's shapes: count errors say 'See', flag errors say 'Run'."""
    cmd = exc.command
    if cmd is None or not cmd.name:
        return f"freight: {exc.message}\n\nRun 'freight --help' for more information\n"
    if exc.see:
        return (
            f"freight: {exc.message}\nSee 'freight {cmd.name} --help'.\n\n"
            f"{cmd.usage_line()}\n\n{cmd.summary}\n"
        )
    return (
        f"{exc.message}\n\n{cmd.usage_line()}\n\n"
        f"Run 'freight {cmd.name} --help' for more information\n"
    )


def _unexpected(exc: Exception, debug: bool, status: int) -> int:
    http = sys.modules.get("freight.client.http")
    if http is not None and isinstance(exc, http.ClientError):
        sys.stderr.write(f"freight: {exc}\n")
        return status
    if debug:
        raise exc
    sys.stderr.write(f"freight: {type(exc).__name__}: {exc}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
