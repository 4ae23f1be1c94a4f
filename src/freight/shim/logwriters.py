"""The shim's log drivers other than json-file, and the one place that opens a driver.

Every writer takes what `jsonlog.LineSplitter` hands it: entries of one
stream, each a line with its newline or a partial line without one.

- ``local``: Docker's local format, each entry framed as
  ``[u32 BE size][protobuf LogEntry][u32 BE size]`` where LogEntry is
  ``{1: source string, 2: time_nano int64, 3: line bytes (no newline), 4: partial bool}``;
  rotated like json-file (the daemon passes Docker's defaults: 20m, 5 files, compressed).
- ``syslog``: one datagram (or stream message) per entry to a unix socket
  (/dev/log by default) or UDP/TCP address; stdout at priority info, stderr at err.
- ``journald``: the journal's native protocol (one datagram of ``FIELD=value``
  lines per entry) to /run/systemd/journal/socket, with Docker's fields.
- syslog and journald also keep a local-format *cache* (Docker's dual
  logging), which is what `logs` reads for them.

The daemon resolves and validates the options (services.logdrivers) and
passes them as one JSON object (`--log-config`); nothing here parses sizes
or templates.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from typing import Any, Protocol

from freight.shim.jsonlog import JsonLog
from freight.shim.logrotate import RotatingFile

_U32 = struct.Struct(">I")
SYSLOG_SEVERITY = {"stdout": 6, "stderr": 3}  # info, err
JOURNAL_PRIORITY = {"stdout": "6", "stderr": "3"}


class LogWriter(Protocol):
    def write(self, stream: str, data: bytes) -> None: ...
    def write_lines(self, stream: str, lines: list[bytes]) -> None: ...
    def write_text_block(self, stream: str, block: bytes) -> None: ...
    def close(self) -> None: ...


class _PerLine:
    """Writers that take one entry at a time: blocks become lines."""

    def write(self, stream: str, data: bytes) -> None:
        self.write_lines(stream, [data])

    def write_text_block(self, stream: str, block: bytes) -> None:
        self.write_lines(stream, [line + b"\n" for line in block[:-1].split(b"\n")])

    def write_lines(self, stream: str, lines: list[bytes]) -> None:
        raise NotImplementedError


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_local_entry(stream: str, time_ns: int, line: bytes) -> bytes:
    """One framed entry of Docker's local format (the newline is not stored)."""
    partial = not line.endswith(b"\n")
    text = line if partial else line[:-1]
    body = (
        b"\x0a" + _varint(len(stream)) + stream.encode()
        + b"\x10" + _varint(time_ns)
        + b"\x1a" + _varint(len(text)) + text
        + (b"\x20\x01" if partial else b"")
    )  # fmt: skip
    size = _U32.pack(len(body))
    return size + body + size


class LocalLog(_PerLine):
    def __init__(self, file: RotatingFile) -> None:
        self.file = file

    def write_lines(self, stream: str, lines: list[bytes]) -> None:
        now = time.time_ns()
        for line in lines:  # entry by entry: rotation never splits one
            self.file.write(encode_local_entry(stream, now, line))

    def close(self) -> None:
        self.file.close()


def _connect(address: str) -> socket.socket:
    """unix:///path, unixgram:///path, udp://host:port, tcp://host:port."""
    scheme, _, rest = address.partition("://")
    if scheme in ("unix", "unixgram"):
        kinds = [socket.SOCK_DGRAM, socket.SOCK_STREAM] if scheme == "unix" else [socket.SOCK_DGRAM]
        last: OSError | None = None
        for kind in kinds:  # Go's syslog tries datagram first, then stream
            sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
            try:
                sock.connect(rest)
                return sock
            except OSError as e:
                sock.close()
                last = e
        assert last is not None
        raise last
    host, _, port = rest.rpartition(":")
    if scheme == "udp":
        return _udp(host.strip("[]"), int(port))
    return socket.create_connection((host.strip("[]"), int(port)), timeout=10)


def _udp(host: str, port: int) -> socket.socket:
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(info[0], socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.connect(info[4])
    return sock


class SyslogLog(_PerLine):
    """Messages of one container to a syslog socket; a lost message is not retried."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.address = str(options["address"])
        self.facility = int(options.get("facility", 3))
        self.tag = str(options.get("tag", ""))
        self.format = str(options.get("format", ""))
        self.hostname = socket.gethostname()
        self.stream_socket = False
        self.sock = _connect(self.address)
        self.stream_socket = self.sock.type == socket.SOCK_STREAM

    def message(self, stream: str, line: bytes, now: float) -> bytes:
        pri = self.facility * 8 + SYSLOG_SEVERITY.get(stream, 6)
        text = line.rstrip(b"\n")
        pid = os.getpid()
        if self.format.startswith("rfc5424"):
            micro = self.format == "rfc5424micro"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            if micro:
                stamp += f".{int(now % 1 * 1_000_000):06d}"
            head = f"<{pri}>1 {stamp}Z {self.hostname} {self.tag} {pid} {self.tag} - "
        elif self.format == "rfc3164" or not self.address.startswith("unix"):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            head = f"<{pri}>{stamp} {self.hostname} {self.tag}[{pid}]: "
        else:  # a local socket: the short form syslogd expects there
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now))
            head = f"<{pri}>{stamp} {self.tag}[{pid}]: "
        return head.encode() + text

    def write_lines(self, stream: str, lines: list[bytes]) -> None:
        now = time.time()
        for line in lines:
            msg = self.message(stream, line, now)
            with contextlib.suppress(OSError):  # syslogd gone: the container goes on
                self.sock.send(msg + b"\n" if self.stream_socket else msg)

    def close(self) -> None:
        self.sock.close()


def journal_field(name: str, value: bytes) -> bytes:
    """NAME=value, or the binary form for values holding a newline."""
    if b"\n" in value:
        return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name.encode() + b"=" + value + b"\n"


class JournaldLog(_PerLine):
    def __init__(self, options: dict[str, Any]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.connect(str(options["socket"]))
        fields: dict[str, str] = options.get("fields", {})
        self.common = b"".join(journal_field(k, v.encode()) for k, v in fields.items())

    def write_lines(self, stream: str, lines: list[bytes]) -> None:
        for line in lines:
            partial = not line.endswith(b"\n")
            msg = journal_field("MESSAGE", line.rstrip(b"\n")) + self.common
            msg += journal_field("PRIORITY", JOURNAL_PRIORITY.get(stream, "6").encode())
            if partial:
                msg += b"CONTAINER_PARTIAL_MESSAGE=true\n"
            with contextlib.suppress(OSError):
                self.sock.send(msg)

    def close(self) -> None:
        self.sock.close()


class Tee:
    """A driver and its read cache (Docker's dual logging)."""

    def __init__(self, *writers: LogWriter) -> None:
        self.writers = writers

    def write(self, stream: str, data: bytes) -> None:
        for w in self.writers:
            w.write(stream, data)

    def write_lines(self, stream: str, lines: list[bytes]) -> None:
        for w in self.writers:
            w.write_lines(stream, lines)

    def write_text_block(self, stream: str, block: bytes) -> None:
        for w in self.writers:
            w.write_text_block(stream, block)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def _rotating(spec: dict[str, Any]) -> RotatingFile:
    return RotatingFile(
        str(spec["path"]),
        int(spec.get("max_size", 0)),
        int(spec.get("max_file", 1)),
        bool(spec.get("compress", False)),
    )


def open_log(config: dict[str, Any]) -> LogWriter | None:
    """The writer for the daemon's `--log-config`; None for the none driver.

    OSError (a socket that does not answer, a file that cannot be opened)
    propagates: the container must not start without its log.
    """
    driver = config.get("driver", "json-file")
    if driver == "none":
        return None
    if driver == "json-file":
        return JsonLog(_rotating(config), config.get("attrs") or None)
    if driver == "local":
        return LocalLog(_rotating(config))
    main: LogWriter
    if driver == "syslog":
        main = SyslogLog(config["syslog"])
    elif driver == "journald":
        main = JournaldLog(config["journald"])
    else:
        raise OSError(f"unknown log driver {driver!r}")
    cache = config.get("cache")
    return Tee(main, LocalLog(_rotating(cache))) if cache else main
