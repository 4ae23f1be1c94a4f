"""The shim's life: create and start the container, copy its output, record its exit.

    python -m freight.shim --id ID --bundle DIR --state-dir DIR --log-path FILE
                           --runtime freight|runc --runtime-root DIR --ready-fd N

Sequence (the daemon may die at any point; nothing here depends on it)::

    become child subreaper, write <state-dir>/shim.pid
    stdout/stderr pipes, stdin /dev/null
    runtime create + start (in this process: no extra interpreter)
    ready fd  ◀─ {"pid": N}                         on success
              ◀─ {"error": MSG, "exit_code": 125|126|127}, exit 1   on failure
    copy both pipes into the json-file log, reaping children meanwhile
    init exited and pipes drained (or 2 s grace passed)
    <state-dir>/exit.json {"exit_code", "finished_at", "oom_killed"}: temp, fsync, rename
    runtime delete (removes the cgroup), exit 0

Exit codes follow Docker: the init's exit status, or 128+N when signal N
killed it. Imports stay few: the shim's memory is paid once per container.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from freight.errors import ExecError
from freight.linux import syscalls
from freight.runtime.api import Runtime, open_runtime
from freight.shim.jsonlog import JsonLog, LineSplitter, rfc3339_nano

DRAIN_GRACE = 2.0  # seconds to wait for pipe EOF after the init exited
_OPTIONS = ("id", "bundle", "state-dir", "log-path", "runtime", "runtime-root", "ready-fd")


@dataclass
class Options:
    id: str
    bundle: Path
    state_dir: Path
    log_path: str
    runtime: str
    runtime_root: Path
    ready_fd: int


def parse_args(argv: list[str]) -> Options:
    """--key value pairs only; argparse costs more memory than the whole shim loop."""
    values: dict[str, str] = {}
    it = iter(argv)
    for arg in it:
        key = arg.removeprefix("--")
        if key not in _OPTIONS:
            raise SystemExit(f"freight-shim: unknown option {arg}")
        values[key] = next(it, "")
    missing = [k for k in _OPTIONS if k not in values]
    if missing:
        raise SystemExit(f"freight-shim: missing --{missing[0]}")
    return Options(
        values["id"],
        Path(values["bundle"]),
        Path(values["state-dir"]),
        values["log-path"],
        values["runtime"],
        Path(values["runtime-root"]),
        int(values["ready-fd"]),
    )


def write_ready(fd: int, body: dict[str, object]) -> None:
    """One JSON line; the daemon may already be gone, which is fine."""
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(body).encode() + b"\n")
    with contextlib.suppress(OSError):
        os.close(fd)


def write_exit(state_dir: Path, exit_code: int, oom_killed: bool) -> None:
    body = {"exit_code": exit_code, "finished_at": rfc3339_nano(), "oom_killed": oom_killed}
    tmp, final = state_dir / "exit.json.tmp", state_dir / "exit.json"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, json.dumps(body).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, final)
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


def copy_output(streams: dict[int, LineSplitter], reaper: Reaper) -> None:
    """Copy pipes to the log until both close; after the init dies, allow DRAIN_GRACE."""
    wake = _wakeup_pipe()
    reaper.reap()  # the init may have died before the handler existed
    deadline: float | None = None
    while streams:
        if reaper.status is not None and deadline is None:
            deadline = time.monotonic() + DRAIN_GRACE
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = select.select([*streams, wake], [], [], timeout)[0]
        if not ready and deadline is not None:
            break  # a daemonised grandchild still holds the pipe: stop waiting
        for fd in ready:
            if fd == wake:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake, 512)
                reaper.reap()
                continue
            data = os.read(fd, 65536)
            if data:
                streams[fd].feed(data)
            else:
                streams.pop(fd).close()
                os.close(fd)
    for splitter in streams.values():
        splitter.close()


def _setup_process(opts: Options) -> None:
    # The ready fd was inherited on purpose; the container must not inherit it.
    with contextlib.suppress(OSError):
        os.set_inheritable(opts.ready_fd, False)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the daemon's terminal may go away
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.setsid()  # already a session leader when the daemon did it for us
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    (opts.state_dir / "shim.pid").write_text(str(os.getpid()))


def _start_in_child(opts: Options, rt: Runtime) -> tuple[int, int, int]:
    """Run create+start in a short-lived child and return what `_start` returns.

    The runtime's work touches many of the interpreter's pages; done here they
    would be copied (copy-on-write) into this long-lived process for good. In a
    child they vanish when it exits. The container's init, the child's
    descendant, is re-parented to us because we are its subreaper.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    result_r, result_w = os.pipe()
    starter = os.fork()
    if starter == 0:
        os.close(result_r)
        _starter_main(opts, rt, out_w, err_w, result_w)
    for fd in (out_w, err_w, result_w):
        os.close(fd)
    with os.fdopen(result_r, "rb") as result:
        reply = json.loads(result.read() or b'{"error": "the starter died", "exit_code": 125}')
    os.waitpid(starter, 0)
    if "error" in reply:
        os.close(out_r)
        os.close(err_r)
        raise ExecError(reply["error"], int(reply["exit_code"]))
    return int(reply["pid"]), out_r, err_r


def _starter_main(opts: Options, rt: Runtime, out_w: int, err_w: int, result_w: int) -> None:
    code = 0
    try:
        devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        pid = rt.create(opts.id, opts.bundle, devnull, out_w, err_w)
        rt.start(opts.id)
        reply: dict[str, object] = {"pid": pid}
    except BaseException as e:  # noqa: BLE001 - every failure must reach the shim
        reply = {"error": str(e), "exit_code": e.exit_code if isinstance(e, ExecError) else 125}
        code = 1
    try:
        os.write(result_w, json.dumps(reply).encode())
    finally:
        os._exit(code)


def run(opts: Options) -> int:
    _setup_process(opts)
    rt = open_runtime(opts.runtime, opts.runtime_root)  # type: ignore[arg-type]
    try:
        pid, out_r, err_r = _start_in_child(opts, rt)
    except Exception as e:  # every failure must reach the ready fd
        code = e.exit_code if isinstance(e, ExecError) else 125
        write_ready(opts.ready_fd, {"error": str(e), "exit_code": code})
        with contextlib.suppress(Exception):
            rt.delete(opts.id, force=True)
        return 1
    write_ready(opts.ready_fd, {"pid": pid})
    log = JsonLog(opts.log_path)
    reaper = Reaper(pid)
    copy_output({out_r: LineSplitter("stdout", log), err_r: LineSplitter("stderr", log)}, reaper)
    log.close()
    status = reaper.wait()
    oom = False
    with contextlib.suppress(Exception):
        oom = rt.oom_killed(opts.id)
    write_exit(opts.state_dir, exit_code_of(status), oom)
    with contextlib.suppress(Exception):
        rt.delete(opts.id, force=True)
    return 0


def main(argv: list[str]) -> int:
    return run(parse_args(argv))
