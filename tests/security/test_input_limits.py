"""Bounded input at the API edge and in the archives it accepts: oversized and
over-nested JSON, oversized headers, decompression bombs, deep and huge tars.
Every refusal is a 4xx with a message naming the limit, and the daemon keeps
serving. Each test states the attack and the safe outcome.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import tarfile

import pytest
import zstandard

from freight import errors
from freight.apiserver.http import MAX_HEADER_BYTES, MAX_JSON_BODY, MAX_JSON_DEPTH
from freight.archive import apply


def _request(freightd, head: bytes, body: bytes = b"", timeout: float = 20) -> tuple[int, bytes]:
    """One raw HTTP/1.1 request over the daemon's socket: (status, body)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(freightd.host.removeprefix("unix://"))
        try:
            s.sendall(head)
            if body:
                s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered early and closed: read what it said
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                header, _, rest = data.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in header.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def _post_json(freightd, path: str, body: bytes) -> tuple[int, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return _request(freightd, head, body)


def _alive(freightd) -> bool:
    return (
        _request(freightd, b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")[0] == 200
    )


def test_json_body_over_the_limit_is_413(freightd):
    """Attack: a 17 MiB JSON body for /containers/create, to make the daemon buffer
    without bound. Safe outcome: 413 with a message naming the 16 MiB limit, before the
    body is read; the daemon keeps serving."""
    body = b'{"Image":"busybox","Env":["' + b"A" * (MAX_JSON_BODY + 1024) + b'"]}'
    status, reply = _post_json(freightd, "/containers/create", body)
    assert status == 413, reply
    assert "16 MiB" in json.loads(reply)["message"], reply
    assert _alive(freightd)


def test_json_body_without_length_over_the_limit_is_413(freightd):
    """Attack: the same body sent chunked (no Content-Length to check up front).
    Safe outcome: the daemon stops reading at the limit and answers 413."""
    chunk = b"[" + b"1," * (1 << 19)
    pieces = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(18))
    head = (
        b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    status, reply = _request(freightd, head, pieces + b"0\r\n\r\n")
    assert status == 413, reply
    assert _alive(freightd)


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_400(freightd, opener):
    """Attack: 100 000 levels of [[[[...]]]] (or {"a":{"a":...}}), which makes a recursive
    decoder raise RecursionError (a 500, or a crash). Safe outcome: 400 naming the
    nesting limit; the daemon keeps serving."""
    closer = b"]" if opener == b"[" else b"}"
    body = opener * 100_000 + b"1" + closer * 100_000
    status, reply = _post_json(freightd, "/containers/create", body)
    assert status == 400, reply
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in json.loads(reply)["message"]
    assert _alive(freightd)


def test_nesting_just_over_the_limit_is_400(freightd):
    """Attack: nesting that the decoder handles (200 levels) but deeper than any Docker
    body, inside a valid create body. Safe outcome: 400, not a deep walk later."""
    body = b'{"Image":"busybox","Labels":' + b'{"a":' * 200 + b"1" + b"}" * 201
    status, reply = _post_json(freightd, "/containers/create", body)
    assert status == 400 and b"nested deeper" in reply, reply


def test_deeply_nested_filters_is_400(freightd):
    """Attack: the same nesting in the `filters` query parameter of GET /containers/json.
    Safe outcome: 400 naming the limit."""
    deep = "%5B" * 50_000 + "%5D" * 50_000
    head = f"GET /containers/json?filters={deep} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    status, reply = _request(freightd, head.encode())
    assert status == 400 and b"nested deeper" in reply, reply


def test_oversized_headers_and_url_are_431(freightd):
    """Attack: a 2 MiB header (and a 2 MiB URL) to make the HTTP parser buffer without
    bound. Safe outcome: 431 with a message naming the 1 MiB limit; the daemon serves on."""
    big = "a" * (2 * MAX_HEADER_BYTES)
    for head in (
        f"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: {big}\r\n\r\n",
        f"GET /_ping?x={big} HTTP/1.1\r\nHost: d\r\n\r\n",
    ):
        status, reply = _request(freightd, head.encode())
        assert status == 431, reply
        assert "1024 KiB" in json.loads(reply)["message"], reply
    assert _alive(freightd)


def _tar_of_zeros(size: int) -> bytes:
    """A zstd stream of a tar holding one `size`-byte file of zeros, compressed on the fly."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as z:
        z.write(info.tobuf())
        block = b"\0" * (1 << 20)
        for _ in range(size // len(block)):
            z.write(block)
        z.write(b"\0" * (2 * 512))
    return out.getvalue()


def test_decompression_bomb_layer_is_refused(tmp_path, monkeypatch):
    """Attack: a zstd layer of a few KiB that expands to gigabytes of zeros (a
    decompression bomb) to fill the disk. Safe outcome: extraction stops once the output
    is past the grace size and more than MAX_RATIO times the input, with an error naming
    the ratio. (The grace is lowered here so the test writes 8 MiB, not 256.)"""
    monkeypatch.setattr(apply, "RATIO_GRACE", 8 << 20)
    bomb = _tar_of_zeros(64 << 20)
    assert len(bomb) * apply.MAX_RATIO < 64 << 20
    with pytest.raises(errors.InvalidArgument, match="expands more than 2000 times"):
        apply.apply_layer(io.BytesIO(bomb), tmp_path, privileged=False)
    assert (tmp_path / "zeros").stat().st_size < 16 << 20


def test_layer_over_the_size_limit_is_refused(tmp_path):
    """Attack: a layer larger than allowed once uncompressed. Safe outcome: refused with an
    error naming the limit, having written no more than it."""
    with pytest.raises(errors.InvalidArgument, match="larger than 4194304 bytes"):
        apply.apply_layer(io.BytesIO(_tar_of_zeros(8 << 20)), tmp_path, max_size=4 << 20)


def test_entry_count_limit(tmp_path):
    """Attack: millions of tiny entries (inode exhaustion). Safe outcome: refused past the
    entry limit with an error naming it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(120):
            tar.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    buf.seek(0)
    with pytest.raises(errors.InvalidArgument, match="more than 100 entries"):
        apply.apply_layer(buf, tmp_path, max_entries=100)


def test_build_context_bomb_through_the_api(freightd):
    """Attack: POST /build with a tiny zstd context that expands to 300 MiB. Safe outcome:
    the build fails with the ratio error (the stream is refused past 256 MiB written), the
    daemon keeps serving."""
    bomb = _tar_of_zeros(300 << 20)
    head = (
        f"POST /build?t=bomb HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
        f"Content-Length: {len(bomb)}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, reply = _request(freightd, head, bomb, timeout=60)
    assert b"expands more than 2000 times" in reply, (status, reply[-500:])
    assert _alive(freightd)


def test_deeply_nested_json_in_headers_and_query(freightd):
    """Attack: the nesting bomb in the JSON the daemon takes from a header (X-Registry-Auth,
    base64) and from a query parameter (buildargs). Safe outcome: 400, never a 500 from
    RecursionError; the daemon keeps serving."""
    auth = base64.urlsafe_b64encode(b"[" * 200_000 + b"]" * 200_000).decode()
    head = (
        f"POST /images/create?fromImage=localhost:1/none&tag=x HTTP/1.1\r\nHost: d\r\n"
        f"X-Registry-Auth: {auth}\r\nConnection: close\r\n\r\n"
    )
    status, reply = _request(freightd, head.encode())
    assert status == 400, reply
    deep = "%5B" * 50_000 + "%5D" * 50_000
    head = (
        f"POST /build?buildargs={deep} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
        f"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    status, reply = _request(freightd, head.encode())
    assert status == 400, reply
    assert _alive(freightd)


def test_bounded_stream_limits(tmp_path):
    """Attack: an image archive (docker load) that is a decompression bomb, or simply too
    large. Safe outcome: the reader refuses it, naming what and which limit."""
    from freight.archive.compression import Bounded

    reader = Bounded(io.BytesIO(_tar_of_zeros(32 << 20)), "image archive", 1 << 40, grace=4 << 20)
    with pytest.raises(errors.InvalidArgument, match="image archive expands more than 2000"):
        while reader.read(1 << 20):
            pass
    reader = Bounded(io.BytesIO(b"\0" * (3 << 20)), "image archive", 2 << 20)
    with pytest.raises(errors.InvalidArgument, match="larger than 2097152 bytes"):
        while reader.read(1 << 20):
            pass


def test_image_load_bomb_through_the_cli(freightd):
    """Attack: `freight load` of a tiny zstd archive that expands to 300 MiB of zeros.
    Safe outcome: the load fails with the ratio error, nothing is loaded, the daemon serves
    on."""
    result = freightd.cli("load", input=_tar_of_zeros(300 << 20), timeout=60)
    out = (result.stdout + result.stderr).decode()
    assert result.returncode != 0 and "expands more than 2000 times" in out, out
    assert _alive(freightd)


def test_cp_archive_limits(tmp_path, monkeypatch):
    """Attack: PUT /containers/{id}/archive (docker cp) with a huge or many-entry tar, to
    fill the disk or the daemon's memory (tarfile keeps every header unless told not to).
    Safe outcome: refused past the size and entry limits, naming them."""
    from freight.archive import inroot

    root_fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        monkeypatch.setattr(inroot, "MAX_EXTRACT_SIZE", 4 << 20)
        with pytest.raises(errors.InvalidArgument, match="archive is larger than 4194304"):
            inroot.extract(
                io.BytesIO(_tar_of_zeros(8 << 20)), root_fd, "/", inroot.ExtractOptions()
            )
        monkeypatch.setattr(inroot, "MAX_EXTRACT_ENTRIES", 50)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for i in range(60):
                tar.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
        buf.seek(0)
        with pytest.raises(errors.InvalidArgument, match="more than 50 entries"):
            inroot.extract(buf, root_fd, "/", inroot.ExtractOptions())
    finally:
        os.close(root_fd)
