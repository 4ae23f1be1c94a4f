"""freight.linux.pty and freight.linux.unixsock: PTY pairs, window sizes, fd passing."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from freight.linux import pty, unixsock


@pytest.mark.parametrize(("text", "size"), [("24x80", (24, 80)), ("1X65535", (1, 65535))])
def test_parse_size(text: str, size: tuple[int, int]) -> None:
    assert pty.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "80", "0x80", "24x0", "24x65536", "axb", "-1x5"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        pty.parse_size(text)


def test_open_pair_from_a_devpts() -> None:
    if not os.access("/dev/pts/ptmx", os.R_OK | os.W_OK):
        pytest.skip("/dev/pts/ptmx is not accessible (host devpts with ptmxmode=000)")
    master, slave, path = pty.open_pair("/dev/pts")
    try:
        assert path.startswith("/dev/pts/") and os.ttyname(slave) == path
        pty.set_size(master, 30, 100)
        assert pty.get_size(slave) == (30, 100)
        os.write(master, b"x\n")
        assert os.read(slave, 10) == b"x\n"
    finally:
        os.close(master)
        os.close(slave)


def test_fd_passing_over_a_socketpair() -> None:
    a, b = socket.socketpair()
    r, w = os.pipe()
    try:
        unixsock.send_fd(a.fileno(), w, b"hello")
        message, fd = unixsock.recv_fd(b.fileno())
        assert message == b"hello" and fd is not None and fd != w
        os.write(fd, b"through the copy")
        os.close(fd)
        assert os.read(r, 100) == b"through the copy"
        a.close()
        assert unixsock.recv_fd(b.fileno()) == (b"", None)
    finally:
        for s in (a, b):
            s.close()
        os.close(r)
        os.close(w)


def test_listen_and_connect_beyond_sun_path(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 100) / ("y" * 100)
    deep.mkdir(parents=True)
    path = str(deep / "attach.sock")
    with unixsock.listen(path, 0o600) as listener:
        assert os.stat(path).st_mode & 0o777 == 0o600
        with unixsock.connect(path) as client:
            conn, _ = listener.accept()
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
            conn.close()
