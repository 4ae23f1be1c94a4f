"""A pre-imported, single-threaded parent that forks shims on request.

Why: a shim started as a fresh interpreter spends ~200 ms importing and holds
~10 MiB of private memory. Forked from this process, it starts at once and
shares every imported page with it (copy-on-write), which is what makes
start latency and memory per container small.

    python -m freight.shim.forkserver --socket PATH

Protocol, one request per connection (unix stream socket)::

    daemon                                         forkserver
      │  JSON list of shim args (no --ready-fd)       │
      │  + the ready pipe's write end (SCM_RIGHTS)    │
      │  [+ a connected client socket: --client-fd] ─►│ fork ─► child: setsid, stdio to
      │                                               │         <bundle>/shim.log, runs
      │◄── {"pid": N}\\n  (the shim's pid)            │         freight.shim.main.run
      │                                               │
  The daemon then reads the ready pipe exactly as for a directly spawned shim.

The forkserver ignores SIGCHLD, so its children are reaped by the kernel; each
shim restores the default before it forks containers. Shims run in their own
sessions and outlive the forkserver and the daemon.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import sys

# Pre-imported for the forked shims, so no shim (container or exec) imports anything
# itself: exec is on the start-latency path and every import would be private memory.
from freight.runtime import console, enter, native, runc  # noqa: F401
from freight.shim import main as shim

MAX_REQUEST = 1 << 16


def serve(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    gc.collect()
    gc.freeze()  # imported objects stay out of the GC's reach: their pages stay shared
    while True:
        conn, _ = listener.accept()
        with conn:
            _handle(listener, conn)


def _handle(listener: socket.socket, conn: socket.socket) -> None:
    try:
        data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 2)
    except OSError as e:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"error": str(e)}).encode() + b"\n")
        return
    try:
        args = json.loads(data)
        if len(fds) not in (1, 2) or not isinstance(args, list):
            raise ValueError("expected shim args, the ready fd and maybe a client socket")
    except ValueError as e:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"error": str(e)}).encode() + b"\n")
        return
    ready_fd, client = fds[0], fds[1:]
    pid = os.fork()
    if pid == 0:
        listener.close()
        conn.close()
        client_args = ["--client-fd", str(client[0])] if client else []
        _run_child([*args, "--ready-fd", str(ready_fd), *client_args])
    for fd in fds:
        os.close(fd)
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _run_child(argv: list[str]) -> None:
    """Become the shim; never return into the server loop."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setsid()
        opts = shim.parse_args(argv)
        os.chdir(opts.bundle)  # the daemon recognises its shims by their cwd
        _redirect_stdio(opts.bundle / "shim.log")
        code = shim.run(opts)
    except BaseException as e:  # noqa: BLE001 - the child must always _exit
        with contextlib.suppress(Exception):
            print(f"freight-shim: {e!r}", file=sys.stderr, flush=True)
    finally:
        os._exit(code)


def _redirect_stdio(log_path: os.PathLike[str]) -> None:
    null = os.open("/dev/null", os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--socket":
        print("usage: python -m freight.shim.forkserver --socket PATH", file=sys.stderr)
        return 2
    serve(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
