"""The shim's life: start the container (or an exec), relay its stdio, record its exit.

    python -m freight.shim --id ID --bundle DIR --state-dir DIR --log-path FILE
                           --runtime freight|runc --runtime-root DIR --ready-fd N
                           [--stdin] [--tty] [--console-size HxW] [--wait-attach]
    exec mode (no log): the same without --log-path, plus --exec-id EID --process FILE

Sequence (the daemon may die at any point; nothing here depends on it)::

    become child subreaper, write <state-dir>/shim.pid
    listen on <state-dir>/attach.sock (mode 0600)
    --wait-attach: wait for the first client (the daemon) before starting
    stdin: a pipe (--stdin) or /dev/null; stdout/stderr pipes, or one PTY
    runtime create + start, or exec (in a short-lived child, see below)
    ready fd  ◀─ {"pid": N}                         on success
              ◀─ {"error": MSG, "exit_code": 125|126|127}, exit 1   on failure
    relay: output → json-file log (containers) and clients; frames → stdin,
           RESIZE → TIOCSWINSZ; reaping children meanwhile (see `relay`)
    process exited and output drained (or 2 s grace passed)
    <state-dir>/exit.json {"exit_code", "finished_at", "oom_killed"}: temp, fsync, rename
    EXIT frame to every client, attach.sock removed
    containers: runtime delete (removes the cgroup); exit 0

With a TTY (`--tty`, or process.terminal in the exec's process) the
runtime hands back the PTY master; `--console-size` is applied before the
process runs (the container init is still blocked before exec; for an exec
it becomes process.consoleSize). Exit codes follow Docker: the process's
exit status, or 128+N when signal N killed it. Imports stay few and are all
made by the forkserver before it forks: the shim's memory is paid once per
container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from pathlib import Path

from freight.errors import ExecError
from freight.linux import syscalls, unixsock
from freight.oci.runtime_spec import ConsoleSize, Process
from freight.runtime.api import Runtime, open_runtime
from freight.shim.jsonlog import JsonLog, rfc3339_nano
from freight.shim.logwriters import LogWriter, open_log
from freight.shim.options import Options, parse_args
from freight.shim.relay import Relay
from freight.shim.starter import Started, start_exec, start_in_child
from freight.shimapi import frames

WAIT_ATTACH_TIMEOUT = 30.0  # seconds to wait for the first client with --wait-attach

__all__ = ["Options", "parse_args", "run", "main"]


def write_ready(fd: int, body: dict[str, object]) -> None:
    """One JSON line; the daemon may already be gone, which is fine."""
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(body).encode() + b"\n")
    with contextlib.suppress(OSError):
        os.close(fd)


def write_exit(state_dir: Path, exit_code: int, oom_killed: bool, durable: bool = True) -> None:
    """Atomically (temp + rename); `durable` also survives power loss (fsyncs).

    An exec's record lives in the daemon's memory and dies with a reboot
    anyway: it skips the two fsyncs, which are on the exec's exit path.
    """
    body = {"exit_code": exit_code, "finished_at": rfc3339_nano(), "oom_killed": oom_killed}
    tmp, final = state_dir / "exit.json.tmp", state_dir / "exit.json"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, json.dumps(body).encode())
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, final)
    if not durable:
        return
    dir_fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Reaper:
    """Reaps every child (we are subreaper: orphans land here) and notes the init's status."""

    def __init__(self, init_pid: int) -> None:
        self.init_pid = init_pid
        self.status: int | None = None

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self.status = status

    def exited(self) -> bool:
        """Reap what is ready; True once the process's status is known."""
        self.reap()
        return self.status is not None

    def wait(self) -> int:
        while self.status is None:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255 << 8  # the init was never ours to reap: unknown fate
            if pid == self.init_pid:
                self.status = status
        return self.status


def _wakeup_pipe() -> int:
    """SIGCHLD writes a byte into a pipe that select() watches next to the stdio pipes."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, or no byte is written
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    return r


def _setup_process(opts: Options) -> None:
    # The ready (and client) fds were inherited on purpose; the container must not inherit them.
    for fd in (opts.ready_fd, opts.client_fd):
        if fd is not None:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the daemon's terminal may go away
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.setsid()  # already a session leader when the daemon did it for us
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    (opts.state_dir / "shim.pid").write_text(str(os.getpid()))


def _load_process(opts: Options) -> Process:
    """The exec's process, with --tty and --console-size folded in (the runtime applies them)."""
    assert opts.process is not None
    try:
        process = Process.from_json(opts.process.read_bytes())
    except (OSError, ValueError) as e:
        raise ExecError(f"reading the exec's process: {e}", 125) from None
    process.terminal = process.terminal or opts.tty
    if process.terminal and opts.console_size:
        process.console_size = ConsoleSize(*opts.console_size)
    return process


def _connect_stdio(relay: Relay, opts: Options, started: Started) -> None:
    if started.master >= 0:
        relay.set_terminal(started.master, accept_stdin=opts.stdin)
        return
    relay.add_output(started.stdout, frames.STDOUT, "stdout")
    relay.add_output(started.stderr, frames.STDERR, "stderr")
    if started.stdin >= 0:
        relay.set_stdin(started.stdin)


def _start(opts: Options, rt: Runtime, relay: Relay) -> Started:
    process = _load_process(opts) if opts.exec_mode else None
    if opts.client_fd is not None:
        relay.add_client(socket.socket(fileno=opts.client_fd))
    elif opts.wait_attach and not relay.wait_for_client(WAIT_ATTACH_TIMEOUT, opts.ready_fd):
        raise ExecError("no client attached to the process's stdio", 125)
    if process is not None:
        return start_exec(opts, rt, process)
    return start_in_child(opts, rt, None)


def _open_log(opts: Options) -> LogWriter | None:
    if opts.exec_mode:
        return None
    if opts.log_config:
        try:
            return open_log(json.loads(opts.log_config))
        except (OSError, ValueError, KeyError) as e:
            raise ExecError(f"failed to initialize logging driver: {e}", 125) from None
    return JsonLog(opts.log_path) if opts.log_path else None


def run(opts: Options) -> int:
    _setup_process(opts)
    rt = open_runtime(opts.runtime, opts.runtime_root)  # type: ignore[arg-type]
    log: LogWriter | None = None
    relay = Relay(unixsock.listen(opts.socket_path, 0o600), opts.socket_path, _wakeup_pipe(), None)
    try:
        relay.log = log = _open_log(opts)
        started = _start(opts, rt, relay)
    except Exception as e:  # every failure must reach the ready fd
        code = e.exit_code if isinstance(e, ExecError) else 125
        write_ready(opts.ready_fd, {"error": str(e), "exit_code": code})
        relay.finish(None)
        if not opts.exec_mode:
            with contextlib.suppress(Exception):
                rt.delete(opts.id, force=True)
        return 1
    write_ready(opts.ready_fd, {"pid": started.pid})
    _connect_stdio(relay, opts, started)
    reaper = Reaper(started.pid)
    relay.run(reaper.exited)
    code = exit_code_of(reaper.wait())
    if log is not None:
        log.close()
    oom = False
    if not opts.exec_mode:
        with contextlib.suppress(Exception):
            oom = rt.oom_killed(opts.id)
    write_exit(opts.state_dir, code, oom, durable=not opts.exec_mode)
    relay.finish(code)
    if not opts.exec_mode:
        with contextlib.suppress(Exception):
            rt.delete(opts.id, force=True)
    return 0


def main(argv: list[str]) -> int:
    return run(parse_args(argv))
