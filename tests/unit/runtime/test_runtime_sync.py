"""freight.runtime.sync: messages survive the pipe, one per line, in order."""

from __future__ import annotations

import os

from freight.runtime import sync


def test_messages_round_trip_through_a_pipe() -> None:
    r, w = os.pipe()
    try:
        sync.send(w, sync.Message(sync.PID, pid=42))
        sync.send(w, sync.Message(sync.ERROR, message='exec: "x": not found', exit_code=127))
        sync.send(w, sync.Message(sync.READY))
        os.close(w)
        reader = sync.Reader(r)
        assert reader.next() == sync.Message(sync.PID, pid=42)
        assert reader.next() == sync.Message(
            sync.ERROR, message='exec: "x": not found', exit_code=127
        )
        assert reader.next() == sync.Message(sync.READY)
        assert reader.next() is None
    finally:
        os.close(r)


def test_long_error_stays_atomic() -> None:
    line = sync.Message(sync.ERROR, message="x" * 10000, exit_code=125).encode()
    assert len(line) < 4096 and line.endswith(b"\n")


def test_create_takes_ready_before_pid() -> None:
    """On a busy host the init can say READY before the setup child reports its pid."""
    from types import SimpleNamespace

    from freight.runtime.native import FreightRuntime

    r, w = os.pipe()
    try:
        sync.send(w, sync.Message(sync.READY))
        sync.send(w, sync.Message(sync.PID, pid=42))
        os.close(w)
        no_userns = SimpleNamespace(idmap=None)
        pid = FreightRuntime._wait_ready(None, sync.Reader(r), None, 0, no_userns)  # type: ignore[arg-type]
        assert pid == 42
    finally:
        os.close(r)
