"""Pseudo-terminals: open a pair in a given devpts instance, make it a controlling
terminal, get and set its window size.

A container's PTY must come from the container's own devpts (mounted with
`newinstance,ptmxmode=0666`), so the slave shows up as /dev/pts/N inside it.
`os.openpty` would use whatever /dev/ptmx resolves to, so the pair is opened
by hand from an explicit ptmx path: open the multiplexer, unlock the slave
(TIOCSPTLCK 0: a fresh slave is locked until then, EIO on open), ask its
number (TIOCGPTN) and open /dev/pts/<N> beside the ptmx.

Python's `termios` lacks TIOCGPTN and TIOCSPTLCK; the values are the
asm-generic ones (x86_64, aarch64, riscv64, s390x). The PowerPC ioctl
encoding differs, which is why they are listed by architecture.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

# _IOR('T', 0x30, unsigned int) and _IOW('T', 0x31, int)
_TIOCGPTN = {"ppc64le": 0x40045430}
_TIOCSPTLCK = {"ppc64le": 0x80045431}
TIOCGPTN = _TIOCGPTN.get(os.uname().machine, 0x80045430)
TIOCSPTLCK = _TIOCSPTLCK.get(os.uname().machine, 0x40045431)

_WINSIZE = struct.Struct("HHHH")  # rows, cols, xpixel, ypixel


def open_pair(pts_dir: str = "/dev/pts") -> tuple[int, int, str]:
    """(master fd, slave fd, slave path) of a new PTY from the devpts mounted at `pts_dir`.

    Both fds are close-on-exec and opened O_NOCTTY: whether the slave becomes
    a controlling terminal is the caller's explicit decision (`make_controlling`).
    """
    master = os.open(os.path.join(pts_dir, "ptmx"), os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        path = os.path.join(pts_dir, str(number))
        slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave, path


def make_controlling(fd: int) -> None:
    """Make the terminal on `fd` the caller's controlling terminal (a session leader's)."""
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def set_size(fd: int, height: int, width: int) -> None:
    """TIOCSWINSZ: the kernel sends SIGWINCH to the terminal's foreground process group."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(height, width, 0, 0))


def get_size(fd: int) -> tuple[int, int]:
    """(height, width) of the terminal on `fd`."""
    rows, cols, _, _ = _WINSIZE.unpack(fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def parse_size(text: str) -> tuple[int, int]:
    """ "24x80" → (24, 80); ValueError unless both are in 1..65535."""
    height_s, sep, width_s = text.lower().partition("x")
    height, width = int(height_s), int(width_s) if sep else -1
    if not (0 < height < 1 << 16 and 0 < width < 1 << 16):
        raise ValueError(f"console size {text!r} is not HEIGHTxWIDTH")
    return height, width
