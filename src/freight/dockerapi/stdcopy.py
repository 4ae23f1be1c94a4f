"""Docker's multiplexed stdio stream framing ("stdcopy").

When a container has no TTY, its stdout and stderr travel over one byte stream
(attach, exec, logs) as frames, each prefixed by an 8-byte header:

    +--------+--------+--------+--------+--------+--------+--------+--------+
    | stream |   0    |   0    |   0    |  payload length (big-endian u32) |
    +--------+--------+--------+--------+--------+--------+--------+--------+
    | payload ...                                                           |

stream is 0 stdin, 1 stdout, 2 stderr, 3 systemerr (a daemon-side error
message written into the stream after the headers were already sent).
Media type on the wire: application/vnd.docker.multiplexed-stream.

    >>> frame = encode_frame(StreamId.STDOUT, b"hi\\n")
    >>> FrameDecoder().feed(frame)
    [Frame(stream=<StreamId.STDOUT: 1>, data=b'hi\\n')]
"""

import enum
import struct
from typing import NamedTuple

HEADER_SIZE = 8
MAX_PAYLOAD = 0xFFFFFFFF

_HEADER = struct.Struct(">BxxxI")


class StreamId(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    SYSTEMERR = 3


class Frame(NamedTuple):
    stream: StreamId
    data: bytes


def encode_header(stream: StreamId, length: int) -> bytes:
    """The 8-byte header announcing `length` payload bytes on `stream`."""
    if not 0 <= length <= MAX_PAYLOAD:
        raise ValueError(f"frame payload of {length} bytes does not fit a stdcopy header")
    return _HEADER.pack(int(stream), length)


def encode_frame(stream: StreamId, data: bytes) -> bytes:
    """One frame: header then payload."""
    return encode_header(stream, len(data)) + data


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole frames back.

    Frames may be split anywhere across `feed` calls; partial frames are kept
    until the rest arrives. An unknown stream id raises ValueError, as
    moby's StdCopy does ("Unrecognized input header").
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= HEADER_SIZE:
            stream_byte, length = _HEADER.unpack_from(self._buffer)
            if stream_byte not in StreamId._value2member_map_:
                raise ValueError(f"Unrecognized input header: {stream_byte}")
            end = HEADER_SIZE + length
            if len(self._buffer) < end:
                break
            frames.append(Frame(StreamId(stream_byte), bytes(self._buffer[HEADER_SIZE:end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def close(self) -> None:
        """Declare end of stream; raise ValueError if a frame was cut short."""
        if self._buffer:
            raise ValueError(f"stream ended inside a frame ({len(self._buffer)} bytes pending)")
