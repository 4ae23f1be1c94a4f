"""Registry server benchmark: `freight registry serve` beside Debian's docker-registry
(CNCF distribution 2.8), same machine, same client.

    python bench/registry_server.py [--clients 32] [--seconds 5] [--blob-mb 100] [--image-mb 200]

Measures, for each server:

- manifest GETs per second with --clients concurrent keep-alive connections (one
  asyncio load generator in this process: it shares the 2 cores with the server);
- blob GET throughput (MB/s) of a --blob-mb blob, one client reading into a buffer;
- `skopeo copy` push of a --image-mb image (4 uncompressed layers) from an OCI layout,
  and `skopeo copy` pull of it back (MB/s);

and prints the freight/distribution ratio of each. Without docker-registry installed
only freight's figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "integration" / "registry"))

import registry_fixtures  # noqa: E402
from registryserver import start_registry  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(host: str, repo: str, data: bytes) -> None:
    h, p = host.split(":")
    conn = http.client.HTTPConnection(h, int(p), timeout=120)
    conn.request("POST", f"/v2/{repo}/blobs/uploads/")
    resp = conn.getresponse()
    resp.read()
    location = resp.getheader("Location")
    sep = "&" if "?" in location else "?"
    conn.request("PUT", f"{location}{sep}digest={digest(data)}", body=data)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 201, resp.status
    conn.close()


def put_small_image(host: str, repo: str) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()  # fmt: skip
    layer = os.urandom(1024)
    put_blob(host, repo, config)
    put_blob(host, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },  # fmt: skip
            "layers": [{"mediaType": OCI_LAYER, "digest": digest(layer), "size": len(layer)}],
        }
    ).encode()
    h, p = host.split(":")
    conn = http.client.HTTPConnection(h, int(p))
    conn.request(
        "PUT", f"/v2/{repo}/manifests/latest", body=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 201, resp.status
    return manifest


async def _client(host: str, port: int, request: bytes, stop: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    while time.perf_counter() < stop:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"unexpected response: {head[:80]!r}")
        await reader.readexactly(length)
        n += 1
    counts.append(n)
    writer.close()


def manifest_rps(host: str, repo: str, clients: int, seconds: float) -> float:
    h, p = host.split(":")
    request = f"GET /v2/{repo}/manifests/latest HTTP/1.1\r\nHost: {host}\r\nAccept: {ACCEPT}\r\n\r\n".encode()  # fmt: skip

    async def run() -> float:
        counts: list[int] = []
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(_client(h, int(p), request, stop, counts) for _ in range(clients)))
        return sum(counts) / (time.perf_counter() - start)

    return asyncio.run(run())


def blob_mbps(host: str, repo: str, data: bytes, repeats: int = 5) -> float:
    h, p = host.split(":")
    buf = bytearray(1 << 20)
    request = f"GET /v2/{repo}/blobs/{digest(data)} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    best = 0.0
    with socket.create_connection((h, int(p))) as s:
        f = s.makefile("rb", buffering=0)
        for _ in range(repeats):
            start = time.perf_counter()
            s.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            remaining = len(data)
            while remaining:
                got = f.readinto(memoryview(buf)[: min(len(buf), remaining)])
                if not got:
                    raise SystemExit("connection closed mid-blob")
                remaining -= got
            best = max(best, len(data) / (time.perf_counter() - start) / 1e6)
    return best


def write_layout(path: Path, total_mb: int) -> int:
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = []
    size = total_mb * 1024 * 1024 // 4
    for _ in range(4):
        data = os.urandom(size)
        (blobs / digest(data)[7:]).write_bytes(data)
        layers.append({"mediaType": OCI_LAYER, "digest": digest(data), "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]}}).encode()  # fmt: skip
    (blobs / digest(config)[7:]).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": layers,
        }  # fmt: skip
    ).encode()
    (blobs / digest(manifest)[7:]).write_bytes(manifest)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(manifest), "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "big"}}]}  # fmt: skip
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return size * 4


def skopeo(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def measure(name: str, host: str, args: argparse.Namespace, blob: bytes, layout: Path, size: int, work: Path) -> dict:  # fmt: skip
    put_small_image(host, "bench/small")
    put_blob(host, "bench/blob", blob)
    manifest_rps(host, "bench/small", args.clients, 0.5)  # warm up
    rps = manifest_rps(host, "bench/small", args.clients, args.seconds)
    mbps = blob_mbps(host, "bench/blob", blob)
    push = skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{layout}:big", f"docker://{host}/bench/big:v1"
    )
    out = work / f"pull-{name}"
    pull = skopeo(
        "copy", "--src-tls-verify=false", f"docker://{host}/bench/big:v1", f"oci:{out}:big"
    )
    shutil.rmtree(out, ignore_errors=True)
    return {"manifest GET/s": rps, "blob GET MB/s": mbps, "skopeo push s": push, "skopeo pull MB/s": size / pull / 1e6}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--blob-mb", type=int, default=100)
    parser.add_argument("--image-mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="freight-bench-registry-") as tmp:
        work = Path(tmp)
        blob = os.urandom(args.blob_mb * 1024 * 1024)
        size = write_layout(work / "layout", args.image_mb)
        results: dict[str, dict] = {}
        freight = start_registry(work / "freight", "--quiet")
        try:
            results["freight"] = measure(
                "freight", freight.host, args, blob, work / "layout", size, work
            )
        finally:
            freight.stop()
        if Path(registry_fixtures.BINARY).exists():
            dist = registry_fixtures.start_registry(work / "distribution")
            try:
                results["distribution 2.8"] = measure("dist", dist.host, args, blob, work / "layout", size, work)  # fmt: skip
            finally:
                dist.stop()
    keys = list(results["freight"])
    print(f"{'':18}" + "".join(f"{k:>18}" for k in keys))
    for name, row in results.items():
        print(f"{name:18}" + "".join(f"{row[k]:18.1f}" for k in keys))
    if "distribution 2.8" in results:
        d = results["distribution 2.8"]
        print(
            f"{'freight/dist':18}" + "".join(f"{results['freight'][k] / d[k]:18.2f}" for k in keys)
        )
    print(
        f"({args.clients} keep-alive clients for manifests; push/pull of a {args.image_mb} MB image)"
    )


if __name__ == "__main__":
    main()
