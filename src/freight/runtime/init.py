"""Code that runs in the processes `create` forks: the setup child and the container init.

See `freight.runtime.sync` for the protocol. Both functions run after fork()
of a process that may have had other threads, so they stay straightforward:
no locks, no logging, no threads, and they always leave through os._exit()
so control never returns into the caller's code in a child.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import resource
import signal
from dataclasses import dataclass
from typing import NoReturn

from freight.errors import ExecError
from freight.linux import capabilities, netdev, seccomp, syscalls, userns
from freight.runtime import console, rootfs, sync
from freight.runtime.cgroups import Cgroup
from freight.runtime.config import ContainerConfig, ProcessConfig
from freight.runtime.lookup import find_executable
from freight.runtime.rootfd import RootedSyscalls


def report(fd: int, exc: BaseException, what: str) -> None:
    if isinstance(exc, ExecError):
        msg = sync.Message(sync.ERROR, message=str(exc), exit_code=exc.exit_code)
    else:
        msg = sync.Message(sync.ERROR, message=f"{what}: {exc}", exit_code=125)
    with contextlib.suppress(OSError):  # the caller is gone; nobody is left to tell
        sync.send(fd, msg)


def dup_stdio(stdio: tuple[int, int, int]) -> None:
    # Move the fds out of 0-2 first: the caller's stdout may be our stdin.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in stdio]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


PR_SET_DUMPABLE = 4


def make_undumpable() -> None:
    """Hide this process's /proc/<pid>/{exe,fd,root,mem...} from the container.

    Until execve this process runs the host's python; a process of the container
    (another exec, or one sharing the pid namespace) opening /proc/<pid>/exe
    could write to the host's interpreter once it is no longer busy (the class
    of runc's CVE-2019-5736). Non-dumpable, only a ptracer with CAP_SYS_PTRACE
    on the host may; execve of the container's command resets the flag.
    """
    syscalls.prctl(PR_SET_DUMPABLE, 0)


def _request_maps(ch: Channels) -> None:
    sync.send(ch.sync_fd, sync.Message(sync.USERMAP))
    answer = os.read(ch.map_fd, 1)
    os.close(ch.map_fd)
    if answer != b"1":
        raise ExecError("container setup failed: the user namespace's maps were not written", 125)


def _enter_namespaces(cfg: ContainerConfig, ch: Channels) -> None:
    # Open every path before the first setns: joining a mount namespace
    # changes what the remaining paths resolve to.
    fds = [(flag, os.open(path, os.O_RDONLY | os.O_CLOEXEC)) for flag, path in cfg.join]
    for flag, fd in fds:
        syscalls.setns(fd, flag)
        os.close(fd)
    flags = cfg.unshare_flags
    if flags & syscalls.CLONE_NEWUSER and cfg.idmap is not None:
        # After the joins (a namespace of the host's, like the daemon's netns, can't be
        # joined from inside) and before the other new ones, so the user namespace
        # owns them: mounts, hostname and /proc are then the container root's to make.
        userns.unshare_user(lambda: _request_maps(ch))
        flags &= ~syscalls.CLONE_NEWUSER
    if flags:
        syscalls.unshare(flags)


@dataclass(frozen=True)
class Channels:
    """The fds a child talks through: sync pipe, exec fifo, console socket (with a terminal)."""

    sync_fd: int
    fifo_fd: int = -1
    console_fd: int = -1
    map_fd: int = -1  # with a user namespace: the caller writes b"1" once the maps are set


def setup_child(
    cfg: ContainerConfig,
    plan: rootfs.RootfsPlan,
    cgroup: Cgroup,
    stdio: tuple[int, int, int] | None,
    channels: Channels,
) -> NoReturn:
    """The first child: enter cgroup and namespaces, fork the init, report its pid.

    `stdio` is None with a terminal: the init replaces 0-2 with the PTY slave.
    """
    code = 1
    sync_fd = channels.sync_fd
    try:
        make_undumpable()
        if stdio is not None:
            dup_stdio(stdio)
        cgroup.join(os.getpid())
        _enter_namespaces(cfg, channels)
        pid = os.fork()
        if pid == 0:
            container_init(cfg, plan, channels)
        sync.send(sync_fd, sync.Message(sync.PID, pid=pid))
        code = 0
    except BaseException as e:  # everything must reach the caller
        report(sync_fd, e, "container setup failed")
    finally:
        os._exit(code)


def _set_up_system(cfg: ContainerConfig, plan: rootfs.RootfsPlan) -> None:
    os.setsid()
    if cfg.unshare_flags & syscalls.CLONE_NEWNET:
        netdev.set_up("lo")
    if cfg.hostname:
        syscalls.sethostname(cfg.hostname)
    # Before the rootfs: /proc/sys is read-only in the container. The host's /proc
    # still answers for our namespaces (net.* and kernel.shm* follow the writer's).
    for key, value in cfg.sysctl.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    rooted = RootedSyscalls(plan.rootfs)
    try:
        rootfs.setup(rooted, plan)
    finally:
        rooted.close()
    if cfg.process.oom_score_adj is not None:
        _write_oom_score_adj(cfg, cfg.process.oom_score_adj)


def _write_oom_score_adj(cfg: ContainerConfig, value: int) -> None:
    # A non-dumpable process's /proc/self files belong to the host's root, which a
    # user namespace does not map: dumpable for this one write (before the
    # container has a process that could look), as runc does for its uid maps.
    in_userns = bool(cfg.unshare_flags & syscalls.CLONE_NEWUSER)
    if in_userns:
        syscalls.prctl(PR_SET_DUMPABLE, 1)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    finally:
        if in_userns:
            syscalls.prctl(PR_SET_DUMPABLE, 0)


def switch_user(p: ProcessConfig) -> None:
    """setgroups/setgid/setuid, keeping exactly the spec's capabilities across the change.

    The bounding set is dropped first (needs CAP_SETPCAP, which we still
    have); PR_SET_KEEPCAPS keeps the permitted set through setuid, which
    would otherwise clear it for a non-root uid; capset then sets the rest.
    """
    caps = p.caps
    if caps is not None:
        capabilities.drop_bounding(caps.bounding)
        syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)
    os.setgroups(p.additional_gids)
    os.setresgid(p.gid, p.gid, p.gid)
    os.setresuid(p.uid, p.uid, p.uid)
    if caps is not None:
        syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0)
        capabilities.apply_sets(caps.effective, caps.permitted, caps.inheritable, caps.ambient)


_CAP_SYS_ADMIN = 21


def seccomp_loads_late(p: ProcessConfig) -> bool:
    """Whether the filter can wait until just before execve.

    Installing a filter needs no_new_privs or CAP_SYS_ADMIN. With neither left
    after the switch of user and capabilities, it is loaded before the switch
    (as runc does), and the few syscalls up to execve run under it.
    """
    if p.no_new_privileges:
        return True
    if p.caps is None:
        return p.uid == 0
    return bool(p.caps.effective >> _CAP_SYS_ADMIN & 1)


def _load_seccomp(p: ProcessConfig) -> None:
    if p.seccomp_program is not None:
        seccomp.load_bpf(p.seccomp_program)
    elif p.seccomp is not None:
        seccomp.load(p.seccomp)


def load_seccomp_late(p: ProcessConfig) -> None:
    """The last step before execve (see `seccomp_loads_late`)."""
    if p.seccomp is not None and seccomp_loads_late(p):
        _load_seccomp(p)


def set_up_process(p: ProcessConfig) -> str:
    """rlimits, user and capabilities, no_new_privs, cwd, umask; the path to execve.

    The caller runs `load_seccomp_late` right before its execve.
    """
    for number, soft, hard in p.rlimits:
        resource.setrlimit(number, (soft, hard))
    if p.seccomp is not None and not seccomp_loads_late(p):
        _load_seccomp(p)
    switch_user(p)
    if p.no_new_privileges:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    enter_cwd(p.cwd)
    os.umask(p.umask if p.umask is not None else 0o022)
    return find_executable(p.args[0], p.path_env())


_PROC_LINKS = re.compile(
    r"^/+proc/+(self|thread-self|\d+)(/+task/+\d+)?/+(fd|cwd|root|map_files)(/|$)"
)


def refuse_proc_cwd(cwd: str) -> None:
    """A cwd through /proc's fd/cwd/root links is refused before anything is made of it."""
    if _PROC_LINKS.match(cwd):
        raise ExecError(
            f"working directory {cwd!r} is refused: /proc fd, cwd and root links lead "
            "out of the container",
            126,
        )


def enter_cwd(cwd: str) -> None:
    """chdir into the container's `cwd`, refusing one that leads out of its root.

    After pivot_root every symlink resolves inside the root, but a magic link
    (/proc/self/fd/N of an fd the runtime still holds: runc's CVE-2024-21626)
    jumps anywhere. getcwd() fails with ENOENT for a cwd the root cannot reach.
    """
    refuse_proc_cwd(cwd)
    os.chdir(cwd)
    try:
        here = os.getcwd()
    except FileNotFoundError:
        here = ""
    if not here.startswith("/"):
        os.chdir("/")
        raise ExecError(f"working directory {cwd!r} is outside the container's root", 126)


def reset_signals() -> None:
    # Ignored signals survive execve: Python ignores SIGPIPE and SIGXFSZ, and
    # the shim ignores SIGHUP. The container must start with defaults.
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _wait_for_start(fifo_fd: int) -> None:
    """Block until `start` opens the fifo for reading.

    The fifo lives in the host's state dir, invisible after pivot_root, so
    we held an O_PATH fd and reopen it through /proc/self/fd.
    """
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo_fd)


def cloexec_all() -> None:
    """Every fd but 0-2 closes at execve: nothing of the runtime, shim or daemon leaks.

    close_range(CLOEXEC) needs no /proc (an image may cover or lack it); the
    listing of /proc/self/fd is the fallback for kernels before 5.11.
    """
    if syscalls.close_range_cloexec(3):
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the fd listdir itself used, now closed
                os.set_inheritable(fd, False)


def env_dict(entries: list[str]) -> dict[str, str]:
    env = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


def container_init(cfg: ContainerConfig, plan: rootfs.RootfsPlan, ch: Channels) -> NoReturn:
    """PID 1 of the new namespaces: set everything up, report ready, wait for start, exec."""
    ready = False
    try:
        refuse_proc_cwd(cfg.process.cwd)
        _set_up_system(cfg, plan)
        if cfg.process.terminal:
            console.attach_terminal(cfg.process, ch.console_fd, bind_console=True)
            os.close(ch.console_fd)
        path = set_up_process(cfg.process)
        reset_signals()
        sync.send(ch.sync_fd, sync.Message(sync.READY))
        os.close(ch.sync_fd)
        ready = True
        _wait_for_start(ch.fifo_fd)
        cloexec_all()
        env = env_dict(cfg.process.env)
        load_seccomp_late(cfg.process)
        os.execve(path, cfg.process.args, env)
    except BaseException as e:  # report, then leave through _exit
        if not ready:
            report(ch.sync_fd, e, "container init failed")
        else:
            os.write(2, f"freight: exec {cfg.process.args[0]}: {e}\n".encode(errors="replace"))
    finally:
        os._exit(127)
