"""A blocking TLS connection that can half-close, for attach/exec over tcp:// + TLS.

TLS has no half-close of its own: a client ends its side with a close_notify
alert and may go on reading (docker's CloseWrite on a tls.Conn), which is how
``run -i`` tells the daemon that stdin is over while the output keeps
coming. ``ssl.SSLSocket`` cannot do that (``unwrap`` waits for the peer's
close_notify and throws away what arrives meanwhile), so the TLS state
machine runs here over memory BIOs and we move the bytes:

    socket ──one record at a time──► incoming BIO ──SSLObject.read──► recv()
    sendall() ──SSLObject.write──► outgoing BIO ──────────────► socket

Records are taken from the socket one at a time (5-byte header, then the
body), so what is not read yet stays in the kernel and ``select()`` on the
socket still tells whether there is more; and the incoming BIO is empty
whenever ``close_write`` runs, so OpenSSL has nothing to discard there.

One thread at a time uses a connection.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

_HEADER = 5
_PLAINTEXT = 65536  # more than a record's 16 KiB: each read takes a whole record
_WRITE_CHUNK = 65536


class TlsStream:
    """A client TLS connection over a connected socket; the handshake runs at creation."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._raw = raw
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._plain = b""  # decrypted bytes a short recv() left
        self._write_closed = False
        self._handshake()

    def _handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                self._flush()
                return
            self._flush()
            if not self._feed_record():
                raise ConnectionResetError("the daemon closed the connection in the TLS handshake")

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self._raw.sendall(data)

    def _feed_record(self) -> bool:
        """Move one TLS record from the socket to the incoming BIO; False at EOF."""
        header = self._read_exact(_HEADER)
        if not header:
            self._in.write_eof()
            return False
        body = self._read_exact(int.from_bytes(header[3:5], "big"))
        self._in.write(header + body)
        return True

    def _read_exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n:
            data = self._raw.recv(n)
            if not data:
                if parts:
                    raise ConnectionResetError("the connection ended inside a TLS record")
                return b""
            parts.append(data)
            n -= len(data)
        return b"".join(parts)

    def recv(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" once the daemon ended its side (close_notify or EOF)."""
        if not self._plain:
            self._plain = self._read_plain()
        data, self._plain = self._plain[:n], self._plain[n:]
        return data

    def _read_plain(self) -> bytes:
        while True:
            try:
                data = self._tls.read(_PLAINTEXT)
            except ssl.SSLWantReadError:
                self._flush()  # e.g. an answer to a TLS 1.3 key update
                if not self._feed_record():
                    return b""
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify after ours, or an EOF without one
            self._flush()
            return data

    def sendall(self, data: bytes) -> None:
        if self._write_closed:
            raise BrokenPipeError("the TLS connection's write side is closed")
        view = memoryview(data)
        while view:
            written = self._tls.write(view[:_WRITE_CHUNK])
            view = view[written:]
            self._flush()

    def close_write(self) -> None:
        """Send close_notify and keep reading: the daemon sees EOF, output still flows."""
        if self._write_closed:
            return
        self._write_closed = True
        with contextlib.suppress(ssl.SSLWantReadError):
            self._tls.unwrap()  # sends close_notify, then wants the daemon's: not yet
        self._flush()

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.close_write()

    def fileno(self) -> int:
        return self._raw.fileno()

    def settimeout(self, value: float | None) -> None:
        self._raw.settimeout(value)

    def close(self) -> None:
        self._raw.close()
