"""The ``freight-shell`` entry point: options, the login sequence, errors.

Usage (as a login shell the system supplies these; the rest are for people)::

    freight-shell                  interactive login shell in the user's container
    freight-shell -c CMD           run CMD there (sshd, su -c); also SSH_ORIGINAL_COMMAND
    freight-shell --check          check the configuration, print this user's settings
    freight-shell --prepare        bring the container up, print the exec as JSON
    freight-shell --user NAME ...  act for NAME (root only)

Every failure is one line on stderr starting with ``freight-shell:`` and
exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import os
import sys

from freight.shell.account import AccountError, login_name, lookup, sudo_caller
from freight.shell.config import ConfigError, config_path, load_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from freight.shell.account import Account
    from freight.shell.config import Settings

PROG = "freight-shell"
USAGE = f"usage: {PROG} [-l] [-c COMMAND] [--user NAME] [--check | --prepare]"


class UsageError(Exception):
    """Bad command-line options."""


class Options:
    __slots__ = ("command", "user", "check", "prepare")

    def __init__(self) -> None:
        self.command: str | None = None
        self.user: str | None = None
        self.check = False
        self.prepare = False


def parse_args(args: list[str]) -> Options:
    """Parse by hand: login shells get few options, and argparse costs start time."""
    opts = Options()
    it = iter(args)
    for arg in it:
        if arg in ("-l", "--login"):
            continue  # every session is a login session
        if arg in ("-c", "--user"):
            value = next(it, None)
            if value is None:
                raise UsageError(f"{arg} needs a value")
            setattr(opts, "command" if arg == "-c" else "user", value)
        elif arg.startswith("--user="):
            opts.user = arg.partition("=")[2]
        elif arg in ("--check", "--prepare"):
            setattr(opts, arg[2:], True)
        elif arg in ("-h", "--help"):
            raise UsageError("")
        else:
            raise UsageError(f"unexpected argument {arg!r}")
    return opts


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return run(parse_args(args), os.environ)
    except UsageError as exc:
        print(f"{PROG}: {exc}\n{USAGE}" if str(exc) else USAGE, file=sys.stderr)
        return 2 if str(exc) else 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is one clear line
        print(f"{PROG}: {describe(exc)}", file=sys.stderr)
        return 1


def run(opts: Options, environ: Mapping[str, str]) -> int:
    uid = os.getuid()
    name = login_name(opts.user, uid, environ)
    config = load_config(config_path(environ, trust_env=sudo_caller(uid, environ) is None))
    if not config.allows(name):
        print(f"{PROG}: {name} may not log in here (not in allowed_users)", file=sys.stderr)
        return 1
    account = lookup(name)
    settings = config.settings_for(name)
    if opts.check:
        print(f"{config.path}: ok; {name}: {settings!r}")
        return 0
    if settings.home and not os.path.isdir(account.home):
        raise AccountError(f"home directory {account.home} of {name} does not exist")
    return start_session(opts, settings, account, environ)


def start_session(
    opts: Options, settings: Settings, account: Account, environ: Mapping[str, str]
) -> int:
    """Bring the container up, then become ``freight exec`` (or print it)."""
    from freight.client.http import EngineClient
    from freight.shell.command import exec_argv, freight_cli, wants_tty
    from freight.shell.provision import DaemonEngine, container_name, ensure

    cid, action = ensure(DaemonEngine(EngineClient(settings.host)), settings, account)
    command = opts.command
    if command is None and "SSH_ORIGINAL_COMMAND" in environ:
        command = environ["SSH_ORIGINAL_COMMAND"]  # ForceCommand: what the client asked
    tty = wants_tty() and not opts.prepare
    name = container_name(settings, account)
    argv = exec_argv(
        freight_cli(), settings, account, name, command=command, tty=tty, environ=environ
    )
    if opts.prepare:
        import json

        print(json.dumps({"container": name, "id": cid, "action": action, "argv": argv}))
        return 0
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 127  # not reached: execv raises OSError on failure


def describe(exc: BaseException) -> str:
    """One line for any failure; the daemon's unreachability gets the likely cause."""
    from freight.client.http import DaemonUnreachable

    if isinstance(exc, DaemonUnreachable) and "ermission denied" in exc.reason:
        return (
            f"cannot reach the freight daemon at {exc.host}: permission denied "
            "(see the socket permission model in docs/freight-shell.md)"
        )
    if isinstance(exc, (ConfigError, AccountError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
