"""``freight daemon start|stop``: run freightd in the background, or end it.

Owns: spawning ``freightd`` detached (own session, stdio to
``<exec-root>/freightd.log``), waiting until ``/_ping`` answers (10 s, then
showing the log's tail), and stopping it by SIGTERM to the pid in
``<exec-root>/freightd.pid``, waiting until the process is gone.

The exec root, and the socket to ping, are read from the freightd flags
passed through (``--exec-root``, ``-H/--host``), defaulting to freightd's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from freight.cli.flags import Command, Flag
from freight.cli.session import CliError, Session
from freight.client.http import DEFAULT_HOST, ClientError, EngineClient

DEFAULT_EXEC_ROOT = "/run/freight"
START_TIMEOUT = 10.0
_POLL = 0.05

START = Command(
    "daemon start",
    "[FREIGHTD OPTIONS...]",
    "Start freightd in the background; options are passed to freightd",
    interspersed=False,
)
STOP = Command(
    "daemon stop",
    "[OPTIONS]",
    "Stop the running freightd",
    [
        Flag(
            "exec-root", "", "string", 'Root of freightd\'s runtime state (default "/run/freight")'
        ),
        Flag("pidfile", "p", "string", 'freightd\'s pid file (default "EXEC_ROOT/freightd.pid")'),
        Flag("timeout", "t", "int", "Seconds to wait for freightd to exit (default 30)"),
    ],
    max_args=0,
)


def flag_value(args: list[str], *names: str) -> str | None:
    """The last value of ``--name v`` / ``--name=v`` among passed-through flags."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "=") and name.startswith("--"):
                value = arg[len(name) + 1 :]
    return value


def freightd_command() -> list[str]:
    # Prefer the freightd installed next to this interpreter (same venv).
    sibling = os.path.join(os.path.dirname(sys.executable), "freightd")
    if os.access(sibling, os.X_OK):
        return [sibling]
    return [sys.executable, "-m", "freight.daemon.main"]


def _pingable(host: str) -> bool:
    try:
        EngineClient(host, timeout=2.0).request("GET", "/_ping").read()
    except (ClientError, OSError):
        return False
    return True


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read()[-16384:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_main(session: Session, argv: list[str]) -> int:
    if argv[:1] in (["--help"], ["-h"]):
        session.out(START.help_text())
        return 0
    exec_root = flag_value(argv, "--exec-root") or DEFAULT_EXEC_ROOT
    host = flag_value(argv, "-H", "--host") or session.host or DEFAULT_HOST
    if _pingable(host):
        session.out(f"freightd is already running at {host}\n")
        return 0
    os.makedirs(exec_root, exist_ok=True)
    log_path = os.path.join(exec_root, "freightd.log")
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            freightd_command() + argv, stdin=devnull, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _pingable(host):
            session.out(f"freightd started (pid {proc.pid}), log: {log_path}\n")
            return 0
        if proc.poll() is not None:
            raise CliError(
                f"freightd exited with status {proc.returncode}; {log_path} ends with:\n{_tail(log_path)}"
            )
        time.sleep(_POLL)
    raise CliError(
        f"freightd (pid {proc.pid}) did not answer at {host} within {START_TIMEOUT:g}s; "
        f"{log_path} ends with:\n{_tail(log_path)}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def stop_main(session: Session, argv: list[str]) -> int:
    opts, _ = STOP.parse(argv)
    pidfile = opts["pidfile"] or os.path.join(
        opts["exec_root"] or DEFAULT_EXEC_ROOT, "freightd.pid"
    )
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        raise CliError(f"freightd is not running (no pid in {pidfile})") from None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise CliError(f"freightd is not running (stale pid {pid} in {pidfile})") from None
    timeout = opts["timeout"] if opts["timeout"] is not None else 30
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise CliError(f"freightd (pid {pid}) is still running {timeout}s after SIGTERM")
        time.sleep(_POLL)
    session.out(f"freightd (pid {pid}) stopped\n")
    return 0
