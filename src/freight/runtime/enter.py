"""`exec`: start one more process inside a running container.

The process must end up in every namespace of the container's init, in its
cgroup, as the exec's user with the exec's capabilities. Three processes
take part, like `create` (see `freight.runtime.sync` for the messages)::

    caller (exec)                 setup child                   process
    ─────────────                 ───────────                   ───────
    open /proc/<init>/ns/*
    re-check the init's start time
    fork ───────────────────────▶ dup2 stdio (no terminal)
                                  join cgroup (every hierarchy)
                                  setns ipc, uts, net, pid,
                                        cgroup, user, then mnt
                                  fork ───────────────────────▶ (inside the pid ns)
      ◀──── {"type": "pid", "pid": N} ──                        setsid
                                  _exit(0)                      terminal: new PTY from
    waitpid(setup child)                                          /dev/pts, master ──▶ console
                                                                rlimits, user, caps, cwd
                                                                look up args[0] on PATH
      ◀────────────────────────────────── {"type": "ready"} ─── (or "error", then _exit)
                                                                execve: the close-on-exec
      EOF ◀──────────────────────────────────────────────────── sync pipe closes
    (terminal: receive the master)

Why this order: every /proc/<init>/ns path is opened before the first setns
(afterwards /proc may be another pid namespace's). The mount namespace comes
last: once in it, the host's paths are gone, including the cgroup files the
setup child writes first. setns(CLONE_NEWPID) only moves the children of the
caller, hence the second fork. The process is reparented to the caller's
nearest child subreaper (the shim) when the setup child exits.

There is no blocked-before-exec state: "ready" is written just before execve,
and an execve failure is still reported as "error" on the open pipe.
"""

from __future__ import annotations

import contextlib
import os
from typing import NoReturn

from freight.linux import syscalls
from freight.runtime import console, init, sync
from freight.runtime.cgroups import Cgroup
from freight.runtime.config import ProcessConfig

# Joined in this order; "mnt" must stay last (see above). "user" comes after the
# namespaces the container may share with the host (a joined netns): once in the
# container's user namespace we have no privilege over those. "time" is never
# created by freight containers, so it is never joined.
NAMESPACES: tuple[tuple[str, int], ...] = (
    ("ipc", syscalls.CLONE_NEWIPC),
    ("uts", syscalls.CLONE_NEWUTS),
    ("net", syscalls.CLONE_NEWNET),
    ("pid", syscalls.CLONE_NEWPID),
    ("cgroup", syscalls.CLONE_NEWCGROUP),
    ("user", syscalls.CLONE_NEWUSER),
    ("mnt", syscalls.CLONE_NEWNS),
)


def open_namespaces(pid: int) -> list[tuple[int, int]]:
    """(flag, fd) for each namespace of `pid` that differs from ours, mnt last.

    Joining a namespace we are already in is skipped: it costs a syscall and
    setns into one's own mount namespace would reset root and cwd for nothing.
    """
    opened: list[tuple[int, int]] = []
    try:
        for name, flag in NAMESPACES:
            fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            opened.append((flag, fd))
            with contextlib.suppress(FileNotFoundError):
                if os.stat(f"/proc/self/ns/{name}").st_ino == os.fstat(fd).st_ino:
                    opened.pop()
                    os.close(fd)
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(namespaces: list[tuple[int, int]]) -> None:
    for _, fd in namespaces:
        with contextlib.suppress(OSError):
            os.close(fd)


def setup_child(
    process: ProcessConfig,
    namespaces: list[tuple[int, int]],
    cgroup: Cgroup,
    stdio: tuple[int, int, int] | None,
    channels: init.Channels,
) -> NoReturn:
    """Join the container's cgroup and namespaces, fork the process, report its pid."""
    code = 1
    try:
        init.make_undumpable()  # before the first setns: see init.make_undumpable
        if stdio is not None:
            init.dup_stdio(stdio)
        cgroup.join(os.getpid())
        for flag, fd in namespaces:
            syscalls.setns(fd, flag)
        close_all(namespaces)
        pid = os.fork()
        if pid == 0:
            exec_process(process, channels)
        sync.send(channels.sync_fd, sync.Message(sync.PID, pid=pid))
        code = 0
    except BaseException as e:  # everything must reach the caller
        init.report(channels.sync_fd, e, "exec setup failed")
    finally:
        os._exit(code)


def exec_process(p: ProcessConfig, ch: init.Channels) -> NoReturn:
    """The exec'd process, inside every namespace: terminal, user, lookup, execve."""
    try:
        os.setsid()  # its own session: a terminal needs it, signals to the shim's group miss it
        if p.terminal:
            console.attach_terminal(p, ch.console_fd, bind_console=False)
            os.close(ch.console_fd)
        path = init.set_up_process(p)
        init.reset_signals()
        init.cloexec_all()
        sync.send(ch.sync_fd, sync.Message(sync.READY))
        env = init.env_dict(p.env)
        init.load_seccomp_late(p)
        os.execve(path, p.args, env)
    except BaseException as e:  # still before exec: the pipe is open
        init.report(ch.sync_fd, e, "exec failed")
    finally:
        os._exit(127)
