"""Start the shim's process: create+start a container in a short-lived child, or exec.

The runtime's create touches many of the interpreter's pages (rootfs
plans, cgroup setup); done in the long-lived shim they would be copied
(copy-on-write) into it for good. In a child they vanish when it exits. The
process, the child's descendant, is re-parented to the shim because the
shim is its subreaper.

An exec is different: its start latency is a headline number and its
runtime work is small (a state file, a few opens; the namespace work happens
in the runtime's own short-lived children), so the shim calls `rt.exec`
itself and saves a fork and a round trip.

    shim                                  starter (forked)
    ────                                  ────────────────
    pipes: stdin (--stdin), stdout, stderr
    socketpair ─────────── fork ────────▶ rt.create + TIOCSWINSZ + rt.start
                                          or rt.exec (consoleSize in the process)
      ◀── {"pid": N} | {"error", "exit_code"}  (+ the PTY master, SCM_RIGHTS)
    waitpid(starter)                      _exit

The stdio pipes are made whatever the mode: with a terminal the runtime
ignores them and the shim closes its ends once the master arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from typing import NoReturn

from freight.errors import ExecError
from freight.linux import pty, unixsock
from freight.oci.runtime_spec import Process
from freight.runtime.api import Runtime
from freight.shim.options import Options

_STARTER_DIED = b'{"error": "the starter died", "exit_code": 125}'


@dataclass
class Started:
    """The running process and the shim's ends of its stdio (-1: none)."""

    pid: int
    stdin: int = -1  # write end of the stdin pipe
    stdout: int = -1
    stderr: int = -1
    master: int = -1  # the PTY master, with a terminal (then the pipes are closed)


def start_exec(opts: Options, rt: Runtime, process: Process) -> Started:
    """Exec `process` into the container from this process; ExecError/Conflict on failure."""
    ours, theirs = _stdio(opts.stdin)
    try:
        pid, master = rt.exec(opts.id, process, *theirs)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    return _started(opts, pid, master, ours)


def _started(opts: Options, pid: int, master: int | None, ours: list[int]) -> Started:
    if master is not None:
        for fd in ours:
            os.close(fd)
        return Started(pid, master=master)
    return Started(pid, ours[0] if opts.stdin else -1, ours[-2], ours[-1])


def start_in_child(opts: Options, rt: Runtime, process: Process | None) -> Started:
    """Create+start (process None) or exec `process`; ExecError with Docker's code on failure."""
    ours, theirs = _stdio(opts.stdin)
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        starter = os.fork()
        if starter == 0:
            parent.close()
            _starter_main(opts, rt, process, theirs, child.fileno())
        child.close()
        for fd in theirs:
            os.close(fd)
        reply, master = _receive(parent)
        os.waitpid(starter, 0)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        parent.close()
    if "error" in reply:
        for fd in ours:
            os.close(fd)
        raise ExecError(str(reply["error"]), int(reply.get("exit_code", 125)))
    return _started(opts, int(reply["pid"]), master, ours)


def _stdio(with_stdin: bool) -> tuple[list[int], list[int]]:
    """(our ends, the process's ends): [stdin write,] stdout read, stderr read / stdin, out, err."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if with_stdin:
        in_r, in_w = os.pipe()
        return [in_w, out_r, err_r], [in_r, out_w, err_w]
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return [out_r, err_r], [devnull, out_w, err_w]


def _receive(sock: socket.socket) -> tuple[dict, int | None]:
    """The starter's reply (read to EOF) and the fd that came with it."""
    first, master = unixsock.recv_fd(sock.fileno(), 1 << 16)
    chunks = [first]
    while first and (chunk := sock.recv(1 << 16)):
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or _STARTER_DIED), master
    except BaseException:
        if master is not None:
            os.close(master)
        raise


def _starter_main(
    opts: Options, rt: Runtime, process: Process | None, stdio: list[int], result_fd: int
) -> NoReturn:
    code, master = 0, None
    try:
        if process is not None:
            pid, master = rt.exec(opts.id, process, *stdio)
        else:
            pid, master = rt.create(opts.id, opts.bundle, *stdio)
            if master is not None and opts.console_size:
                pty.set_size(master, *opts.console_size)  # the init is still blocked before exec
            rt.start(opts.id)
        reply: dict[str, object] = {"pid": pid}
    except BaseException as e:  # noqa: BLE001 - every failure must reach the shim
        reply = {"error": str(e), "exit_code": e.exit_code if isinstance(e, ExecError) else 125}
        code = 1
    try:
        data = json.dumps(reply).encode()
        if master is not None and code == 0:
            unixsock.send_fd(result_fd, master, data)
        else:
            with contextlib.suppress(OSError):
                os.write(result_fd, data)
    finally:
        os._exit(code)
