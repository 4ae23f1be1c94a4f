"""A process's terminal: a new PTY from the container's devpts, made its stdio and
controlling terminal, with the master handed back to the runtime's caller.

runc does the same through `--console-socket`; here the socket is one end
of a socketpair the caller created before forking, so nothing touches the
filesystem. Runs in the container init (after pivot_root, before the user
switch: binding /dev/console needs CAP_SYS_ADMIN) and in an exec'd process
(after setns into the container's mount namespace), always after setsid():
only a session leader without a terminal can acquire one (TIOCSCTTY).

The slave belongs to the process's uid and to group 5 (tty), mode 0620,
as Docker's containers show it, so `mesg` and `write` behave as usual.
"""

from __future__ import annotations

import os

from freight.linux import pty, syscalls, unixsock
from freight.runtime.config import ProcessConfig

TTY_GID = 5
CONSOLE_MESSAGE = b"console"


def attach_terminal(p: ProcessConfig, console_fd: int, bind_console: bool) -> None:
    """Make a new PTY's slave fds 0-2 and the controlling terminal; send the master away."""
    master, slave, path = pty.open_pair("/dev/pts")
    try:
        os.fchown(slave, p.uid, TTY_GID)
        os.fchmod(slave, 0o620)
        if bind_console:
            _bind_console(path)
        if p.console_size:
            pty.set_size(master, *p.console_size)
        for target in (0, 1, 2):
            os.dup2(slave, target)
        pty.make_controlling(0)
        unixsock.send_fd(console_fd, master, CONSOLE_MESSAGE)
    finally:
        os.close(master)
        os.close(slave)


def _bind_console(slave_path: str) -> None:
    """Bind the slave over /dev/console (created as an empty file first, like runc)."""
    if not os.path.exists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    syscalls.mount(slave_path, "/dev/console", None, syscalls.MS_BIND)


def receive_master(sock_fd: int) -> int:
    """The master fd a child sent; OSError if it died before sending one."""
    message, fd = unixsock.recv_fd(sock_fd)
    if fd is None:
        raise OSError("the process did not send its terminal")
    if message != CONSOLE_MESSAGE:
        os.close(fd)
        raise OSError(f"unexpected console message {message!r}")
    return fd
