"""``ssh://[user@]host[:port]`` daemon addresses: HTTP over an ssh command's stdio.

As docker does, the client runs ``ssh [-l user] [-p port] -- host freight
system dial-stdio`` and speaks HTTP over that process's stdin/stdout; on the
far side ``dial-stdio`` copies bytes to and from the daemon's socket. The
process gets one end of a socketpair as both stdin and stdout, so the client
keeps an ordinary socket: ``sendall``, ``recv``, ``select`` and half-close
(``shutdown(SHUT_WR)`` becomes EOF on the remote command's stdin) work as
they do on a unix socket. One ssh process per connection, like everything
else in this client.

The ssh binary is ``$FREIGHT_SSH`` if set, else ``ssh`` from PATH.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from socket import socket as Socket

REMOTE_COMMAND = ("freight", "system", "dial-stdio")


class SshTarget:
    __slots__ = ("user", "host", "port")

    def __init__(self, host: str, user: str | None = None, port: int | None = None) -> None:
        self.host = host
        self.user = user
        self.port = port


def parse_target(rest: str) -> SshTarget:
    """``user@host:port`` (the part after ``ssh://``); a path is not allowed, as in docker."""
    authority, slash, path = rest.partition("/")
    if slash and path:
        raise ValueError(f"extra path after the host: {rest!r}")
    user, at, hostport = authority.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else None
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if not host:
        raise ValueError(f"no host in ssh address {rest!r}")
    if port is not None and not port.isdigit():
        raise ValueError(f"invalid port {port!r}")
    return SshTarget(host, user if at else None, int(port) if port else None)


def ssh_command(target: SshTarget) -> list[str]:
    argv = [os.environ.get("FREIGHT_SSH") or "ssh", "-o", "ConnectTimeout=30", "-T"]
    if target.user:
        argv += ["-l", target.user]
    if target.port:
        argv += ["-p", str(target.port)]
    return argv + ["--", target.host, *REMOTE_COMMAND]


_children: list[object] = []  # the ssh processes, kept so they are not reaped as garbage


def dial(target: SshTarget) -> Socket:
    """Start ssh and return our end of its stdio as a socket."""
    import socket
    import subprocess

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = subprocess.Popen(ssh_command(target), stdin=theirs, stdout=theirs, close_fds=True)
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    _children.append(proc)
    return ours
