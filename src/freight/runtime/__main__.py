"""`python -m freight.runtime`: the freight OCI runtime's command line, shaped like runc's.

    python -m freight.runtime [--root DIR] create --bundle DIR [--pid-file F]
                                                  [--console-socket S] ID
    python -m freight.runtime [--root DIR] start ID
    python -m freight.runtime [--root DIR] exec --process FILE [--tty] [--console-socket S]
                                                [--detach] [--pid-file F] ID
    python -m freight.runtime [--root DIR] state ID
    python -m freight.runtime [--root DIR] kill ID [SIGNAL]
    python -m freight.runtime [--root DIR] delete [--force] ID

The container's stdio is this process's stdio, as with `runc create`. With
a terminal (`process.terminal`, or `exec --tty`) the PTY master is sent to
the unix socket `--console-socket` names, as runc does; there is no
foreground PTY proxy, so a terminal needs that socket. `exec` without
`--detach` waits for the process and exits with its status (128+N for
signal N). Errors go to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from freight.errors import FreightError, InvalidArgument
from freight.linux import syscalls, unixsock
from freight.oci.runtime_spec import Process
from freight.runtime.native import FreightRuntime
from freight.runtime.state import DEFAULT_ROOT


def parse_signal(text: str) -> int:
    """ "9", "KILL" or "SIGKILL" → 9."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise FreightError(f"unknown signal {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="freight-runtime")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create")
    create.add_argument("--bundle", "-b", type=Path, default=Path("."))
    create.add_argument("--pid-file", type=Path)
    create.add_argument("--console-socket")
    create.add_argument("id")
    exec_ = sub.add_parser("exec")
    exec_.add_argument("--process", "-p", type=Path, required=True)
    exec_.add_argument("--tty", "-t", action="store_true")
    exec_.add_argument("--console-socket")
    exec_.add_argument("--detach", "-d", action="store_true")
    exec_.add_argument("--pid-file", type=Path)
    exec_.add_argument("id")
    for name in ("start", "state"):
        sub.add_parser(name).add_argument("id")
    kill = sub.add_parser("kill")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    delete = sub.add_parser("delete")
    delete.add_argument("--force", "-f", action="store_true")
    delete.add_argument("id")
    return p


def _send_console(path: str | None, master: int | None) -> None:
    if master is None:
        return
    try:
        if path is None:
            raise InvalidArgument("a terminal needs --console-socket")
        with unixsock.connect(path) as sock:
            unixsock.send_fd(sock.fileno(), master, os.ttyname(master).encode())
    finally:
        os.close(master)


def _exec(rt: FreightRuntime, args: argparse.Namespace) -> int:
    process = Process.from_json(args.process.read_bytes())
    process.terminal = process.terminal or args.tty
    if process.terminal and args.console_socket is None:
        raise InvalidArgument("a terminal needs --console-socket")
    if not args.detach:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)  # the process is reparented to us
    pid, master = rt.exec(args.id, process, 0, 1, 2)
    if args.pid_file:
        args.pid_file.write_text(str(pid))
    _send_console(args.console_socket, master)
    if args.detach:
        return 0
    while True:
        reaped, status = os.waitpid(-1, 0)
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def run(args: argparse.Namespace) -> int:
    rt = FreightRuntime(args.root)
    if args.command == "create":
        pid, master = rt.create(args.id, args.bundle, 0, 1, 2)
        if args.pid_file:
            args.pid_file.write_text(str(pid))
        _send_console(args.console_socket, master)
    elif args.command == "exec":
        return _exec(rt, args)
    elif args.command == "start":
        rt.start(args.id)
    elif args.command == "state":
        print(json.dumps(rt.state(args.id).to_dict(), indent=2))
    elif args.command == "kill":
        rt.kill(args.id, parse_signal(args.signal))
    elif args.command == "delete":
        rt.delete(args.id, force=args.force)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (FreightError, OSError) as e:
        print(f"freight-runtime: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
