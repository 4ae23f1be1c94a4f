"""Helpers for the registry server tests: a `freight registry serve` process, HTTP, images.

The server runs as its own process (`freight registry serve --addr 127.0.0.1:0`) on a temp
root, exactly as a user starts it; it prints the port it bound, which the fixture reads.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"listening on https?://[^:]+:(\d+)")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)

    def code(self) -> str:
        return json.loads(self.body)["errors"][0]["code"]


@dataclass
class RegistryProcess:
    root: Path
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | str | None = None,
    ) -> Reply:
        headers = dict(headers or {})
        if isinstance(auth, tuple):
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        elif isinstance(auth, str):
            headers["Authorization"] = f"Bearer {auth}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def cli(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*freight_cli(), "registry", *args, "--root", str(self.root)],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def freight_cli() -> list[str]:
    return [sys.executable, "-c", "from freight.cli.main import run; run()"]


def start_registry(root: Path, *extra: str) -> RegistryProcess:
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"{root.name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                *freight_cli(),
                "registry",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--root",
                str(root),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        m = _LISTENING.search(log.read_text(errors="replace"))
        if m:
            return RegistryProcess(root, int(m.group(1)), proc, log)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"registry did not start: {log.read_text(errors='replace')}")


def blob(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip) of `files`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    return raw, gzip.compress(raw, mtime=0)


@dataclass
class Image:
    manifest: bytes
    config: bytes
    layers: list[bytes]

    @property
    def digest(self) -> str:
        return blob(self.manifest)


def make_image(layer_sizes: tuple[int, ...] = (4096, 8192), seed: bytes = b"") -> Image:
    layers, diff_ids, descriptors = [], [], []
    for i, size in enumerate(layer_sizes):
        content = hashlib.sha256(seed + bytes([i])).digest() * (size // 32 + 1)
        raw, gz = layer_tar({f"file{i}": content[:size] + os.urandom(16)})
        layers.append(gz)
        diff_ids.append(blob(raw))
        descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": blob(gz), "size": len(gz)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": blob(config), "size": len(config)},
            "layers": descriptors,
        }
    ).encode()
    return Image(manifest, config, layers)


def write_oci_layout(path: Path, image: Image, tag: str) -> Path:
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in (image.manifest, image.config, *image.layers):
        (blobs / blob(data).split(":")[1]).write_bytes(data)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": len(image.manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return path


def push_blob(r: RegistryProcess, name: str, data: bytes, auth=None) -> Reply:
    return r.request("POST", f"/v2/{name}/blobs/uploads/?digest={blob(data)}", data, auth=auth)


def push_image(r: RegistryProcess, name: str, tag: str, image: Image, auth=None) -> Reply:
    for data in (image.config, *image.layers):
        assert push_blob(r, name, data, auth).status == 201
    return r.request(
        "PUT",
        f"/v2/{name}/manifests/{tag}",
        image.manifest,
        {"Content-Type": OCI_MANIFEST},
        auth=auth,
    )
