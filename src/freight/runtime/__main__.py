"""`python -m freight.runtime`: the freight OCI runtime's command line, shaped like runc's.

    python -m freight.runtime [--root DIR] create --bundle DIR [--pid-file F] ID
    python -m freight.runtime [--root DIR] start ID
    python -m freight.runtime [--root DIR] state ID
    python -m freight.runtime [--root DIR] kill ID [SIGNAL]
    python -m freight.runtime [--root DIR] delete [--force] ID

The container's stdio is this process's stdio, as with `runc create`.
Errors go to stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from freight.errors import FreightError
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
    create.add_argument("id")
    for name in ("start", "state"):
        sub.add_parser(name).add_argument("id")
    kill = sub.add_parser("kill")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    delete = sub.add_parser("delete")
    delete.add_argument("--force", "-f", action="store_true")
    delete.add_argument("id")
    return p


def run(args: argparse.Namespace) -> None:
    rt = FreightRuntime(args.root)
    if args.command == "create":
        pid = rt.create(args.id, args.bundle, 0, 1, 2)
        if args.pid_file:
            args.pid_file.write_text(str(pid))
    elif args.command == "start":
        rt.start(args.id)
    elif args.command == "state":
        print(json.dumps(rt.state(args.id).to_dict(), indent=2))
    elif args.command == "kill":
        rt.kill(args.id, parse_signal(args.signal))
    elif args.command == "delete":
        rt.delete(args.id, force=args.force)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        run(args)
    except (FreightError, OSError) as e:
        print(f"freight-runtime: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
