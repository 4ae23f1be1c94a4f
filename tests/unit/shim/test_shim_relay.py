"""freight.shim.relay without a container: pipes, files and a PTY stand in for the process."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.linux import pty, unixsock
from freight.shim import relay as relay_mod
from freight.shim.jsonlog import JsonLog
from freight.shim.relay import Relay
from freight.shimapi import frames


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[str]:
    # A deep path on purpose: longer than sun_path, as real state dirs can be.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    yield str(deep / "attach.sock")


def make_relay(path: str, log: JsonLog | None = None) -> Relay:
    wake_r, wake_w = os.pipe()
    os.close(wake_w)
    return Relay(unixsock.listen(path), path, wake_r, log)


def read_frames(sock) -> list[tuple[int, bytes]]:
    decoder, got = frames.Decoder(), []
    sock.settimeout(10)
    while chunk := sock.recv(1 << 16):
        got += decoder.feed(chunk)
    sock.close()
    return got


def test_output_reaches_log_and_every_client_then_exit(sock_path: str, tmp_path: Path) -> None:
    log = JsonLog(str(tmp_path / "log.json"))
    relay = make_relay(sock_path, log)
    clients = [unixsock.connect(sock_path) for _ in range(2)]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    relay.add_output(out_r, frames.STDOUT, "stdout")
    relay.add_output(err_r, frames.STDERR, "stderr")
    os.write(out_w, b"one\ntwo")
    os.write(err_w, b"oops\n")
    os.close(out_w)
    os.close(err_w)
    relay.run(lambda: True)
    log.close()
    relay.finish(3)
    for client in clients:
        got = read_frames(client)
        assert b"".join(p for k, p in got if k == frames.STDOUT) == b"one\ntwo"
        assert b"".join(p for k, p in got if k == frames.STDERR) == b"oops\n"
        assert got[-1] == (frames.EXIT, b"3")
    assert (tmp_path / "log.json").read_text().count('"stream":"stdout"') == 2
    assert not os.path.exists(sock_path)


def test_stdin_frames_then_close(sock_path: str, monkeypatch) -> None:
    monkeypatch.setattr(relay_mod, "DRAIN_GRACE", 0.2)
    relay = make_relay(sock_path)
    client = unixsock.connect(sock_path)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    relay.set_stdin(in_w)
    relay.add_output(out_r, frames.STDOUT, "stdout")
    client.sendall(frames.encode(frames.STDIN, b"abc") + frames.encode(frames.CLOSE_STDIN))
    client.sendall(frames.encode(frames.STDIN, b"too late"))
    relay.run(lambda: True)  # the output stays open: ends after DRAIN_GRACE
    relay.finish(0)
    os.close(out_w)
    assert os.read(in_r, 100) == b"abc"
    assert os.read(in_r, 100) == b""  # closed: the process sees EOF
    assert read_frames(client) == [(frames.EXIT, b"0")]


def test_a_stuck_client_is_dropped_and_the_rest_go_on(sock_path: str) -> None:
    total = 4 * relay_mod.CLIENT_BUFFER
    relay = make_relay(sock_path)
    stuck = unixsock.connect(sock_path)  # never reads
    reader = unixsock.connect(sock_path)
    received: list[list[tuple[int, bytes]]] = []
    out_r, out_w = os.pipe()

    def paced_writer() -> None:  # slow enough for the reading thread to keep up
        for _ in range(total // 16384):
            os.write(out_w, b"x" * 16384)
            time.sleep(0.002)
        os.close(out_w)

    threads = [
        threading.Thread(target=lambda: received.append(read_frames(reader))),
        threading.Thread(target=paced_writer),
    ]
    for t in threads:
        t.start()
    relay.add_output(out_r, frames.STDOUT, "stdout")
    relay.run(lambda: False)
    relay.finish(0)
    for t in threads:
        t.join(10)
    assert sum(len(p) for k, p in received[0] if k == frames.STDOUT) == total
    assert received[0][-1] == (frames.EXIT, b"0")
    stuck.settimeout(5)
    cut_off = sum(len(p) for k, p in read_frames(stuck) if k == frames.STDOUT)
    assert 0 < cut_off < total


def test_the_primary_client_holds_output_back_instead(sock_path: str, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"y" * (4 * relay_mod.CLIENT_BUFFER))
    relay = make_relay(sock_path)
    primary = unixsock.connect(sock_path)
    assert relay.wait_for_client(1.0, os.open("/dev/null", os.O_RDONLY))
    received: list[list[tuple[int, bytes]]] = []

    def slow_reader() -> None:
        time.sleep(0.3)
        received.append(read_frames(primary))

    thread = threading.Thread(target=slow_reader)
    thread.start()
    relay.add_output(os.open(big, os.O_RDONLY), frames.STDOUT, "stdout")
    relay.run(lambda: False)
    relay.finish(0)
    thread.join(10)
    assert sum(len(p) for k, p in received[0] if k == frames.STDOUT) == big.stat().st_size
    assert received[0][-1] == (frames.EXIT, b"0")


def test_terminal_resize_and_close_stdin(sock_path: str, monkeypatch) -> None:
    monkeypatch.setattr(relay_mod, "DRAIN_GRACE", 0.2)
    master, slave = os.openpty()
    relay = make_relay(sock_path)
    client = unixsock.connect(sock_path)
    relay.set_terminal(master, accept_stdin=True)
    client.sendall(frames.encode_resize(33, 99) + frames.encode(frames.STDIN, b"hi\n"))
    client.sendall(frames.encode(frames.CLOSE_STDIN))
    time.sleep(0.05)
    relay.run(lambda: True)  # the slave stays open: ends after DRAIN_GRACE
    assert pty.get_size(slave) == (33, 99)
    assert os.read(slave, 100) == b"hi\n"
    assert os.read(slave, 100) == b""  # ^D on an empty line: end of input
    relay.finish(0)
    got = read_frames(client)
    assert b"hi" in b"".join(p for k, p in got if k == frames.STDOUT)  # the terminal's echo
    os.close(slave)


def test_wait_for_client_gives_up_when_the_daemon_is_gone(sock_path: str) -> None:
    relay = make_relay(sock_path)
    ready_r, ready_w = os.pipe()
    os.close(ready_r)  # the reader of the ready pipe is gone
    started = time.monotonic()
    assert not relay.wait_for_client(5.0, ready_w)
    assert time.monotonic() - started < 1
    relay.finish(None)


def test_terminal_output_reaches_the_log_without_waiting_for_a_newline(
    sock_path: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(relay_mod, "DRAIN_GRACE", 0.2)
    master, slave = os.openpty()
    log_path = tmp_path / "log.json"
    relay = make_relay(sock_path, JsonLog(str(log_path)))
    relay.set_terminal(master, accept_stdin=False)
    os.write(slave, b"/ # ")
    relay.run(lambda: True)
    assert '"log":"/ # "' in log_path.read_text()
    relay.finish(0)
    os.close(slave)
