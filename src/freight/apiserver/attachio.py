"""What an attached client (attach, exec start) receives: a process's output from
its shim, as Docker clients expect it."""

from __future__ import annotations

from freight.dockerapi import stdcopy
from freight.shimapi import frames

OUTPUT_STREAMS = {frames.STDOUT: stdcopy.StreamId.STDOUT, frames.STDERR: stdcopy.StreamId.STDERR}


def output_chunk(kind: int, payload: bytes, tty: bool) -> bytes:
    """Raw bytes with a TTY; Docker's 8-byte multiplexed frames without one."""
    return payload if tty else stdcopy.encode_frame(OUTPUT_STREAMS[kind], payload)
