"""Bring a network interface up with ioctl(SIOCSIFFLAGS).

A fresh network namespace has only `lo`, and it is down: nothing can talk to
127.0.0.1 until IFF_UP is set. An ioctl on any AF_INET socket is the smallest
way to do that; netlink would be the general tool, but we need only this.
"""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFNAMSIZ = 16


def set_up(name: str = "lo") -> None:
    """Set IFF_UP on interface `name` in the caller's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # struct ifreq: char ifr_name[16]; short ifr_flags; padding to 40 bytes.
        req = struct.pack("16sh22x", name.encode()[:_IFNAMSIZ], 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, req))[1]
        req = struct.pack("16sh22x", name.encode()[:_IFNAMSIZ], flags | _IFF_UP)
        fcntl.ioctl(sock, _SIOCSIFFLAGS, req)
