"""The command freight-shell replaces itself with: ``freight exec`` into the container.

Owns: finding the freight CLI and building its argument list. Handing the
session to the CLI (``os.execv``) means the terminal handling (raw mode,
resize, detach keys, exit status) is the CLI's, and no freight-shell
process lingers for the length of the session.

The shell runs as ``uid:gid`` from passwd, in the home directory, with the
login environment (HOME, USER, LOGNAME, SHELL, and TERM when there is a
terminal). A terminal is asked for only when stdin and stdout both are
one: ``ssh host cmd > file`` must get clean, unmixed output.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from freight.shell.account import Account
    from freight.shell.config import Settings


def freight_cli(executable: str = sys.executable) -> list[str]:
    """The freight CLI: next to our interpreter, else on PATH, else ``-m``."""
    sibling = os.path.join(os.path.dirname(executable), "freight")
    if os.access(sibling, os.X_OK):
        return [sibling]
    import shutil  # only on this fallback: it costs start time

    found = shutil.which("freight")
    return [found] if found else [executable, "-m", "freight.cli.main"]


def wants_tty(stdin_fd: int = 0, stdout_fd: int = 1) -> bool:
    return os.isatty(stdin_fd) and os.isatty(stdout_fd)


def session_env(settings: Settings, account: Account, tty_term: str | None) -> list[str]:
    """The login environment, as ``-e`` values."""
    env = [
        f"HOME={workdir_for(settings, account)}",
        f"USER={account.name}",
        f"LOGNAME={account.name}",
    ]
    env.append(f"SHELL={settings.shell}")
    if tty_term:
        env.append(f"TERM={tty_term}")
    return env


def exec_argv(
    cli: list[str],
    settings: Settings,
    account: Account,
    container: str,
    *,
    command: str | None,
    tty: bool,
    environ: Mapping[str, str],
) -> list[str]:
    """``freight -H HOST exec -i[t] -u UID:GID -w DIR -e ... CONTAINER SHELL -l|-c CMD``."""
    argv = [*cli, "-H", settings.host, "exec", "-i"]
    if tty:
        argv.append("-t")
    argv += ["-u", account.user_spec, "-w", workdir_for(settings, account)]
    term = environ.get("TERM") if tty else None
    for item in session_env(settings, account, term):
        argv += ["-e", item]
    argv += [container, settings.shell]
    argv += ["-c", command] if command is not None else ["-l"]
    return argv


def workdir_for(settings: Settings, account: Account) -> str:
    """Where the shell starts, and its HOME: the home when it is bound in, else /."""
    return account.home if settings.home else "/"
