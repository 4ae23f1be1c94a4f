"""Images written straight into a registry over its HTTP API (no freight code),
to pull in tests: layers from {path: bytes} maps, gzip/zstd/plain, Docker
schema 2 or OCI, optionally behind a multi-platform index.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

import httpx
import zstandard

BUSYBOX = "/bin/busybox"

DOCKER = {
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "index": "application/vnd.docker.distribution.manifest.list.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "zstd": "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "plain": "application/vnd.docker.image.rootfs.diff.tar",
}
OCI = {
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "index": "application/vnd.oci.image.index.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "plain": "application/vnd.oci.image.layer.v1.tar",
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted(
            {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        )
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1700000000
            info.mode = 0o755 if path.startswith("bin/") else mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(tar: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(tar, compresslevel=1, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(tar)
    return tar


@dataclass
class Pushed:
    digest: str  # of what the tag points at (the index, if any)
    config_digest: str  # of the first (or only) platform's config = image id
    manifest_digest: str
    layer_digests: list[str]


class Factory:
    def __init__(self, host: str, auth: tuple[str, str] | None = None) -> None:
        self.base = f"http://{host}"
        self.http = httpx.Client(auth=auth, timeout=30)

    def close(self) -> None:
        self.http.close()

    def blob(self, repo: str, data: bytes) -> str:
        digest = sha(data)
        if self.http.head(f"{self.base}/v2/{repo}/blobs/{digest}").status_code == 200:
            return digest
        r = self.http.post(f"{self.base}/v2/{repo}/blobs/uploads/")
        r.raise_for_status()
        loc = httpx.URL(self.base).join(r.headers["location"])
        r = self.http.put(loc.copy_merge_params({"digest": digest}), content=data)
        r.raise_for_status()
        return digest

    def manifest(self, repo: str, ref: str, doc: dict, media_type: str) -> tuple[str, bytes]:
        data = json.dumps(doc).encode()
        r = self.http.put(
            f"{self.base}/v2/{repo}/manifests/{ref}",
            content=data,
            headers={"Content-Type": media_type},
        )
        r.raise_for_status()
        return sha(data), data

    def image(
        self,
        repo: str,
        tag: str,
        layers: list[tuple[dict[str, bytes], str]],
        kind: dict[str, str] = DOCKER,
        cmd: list[str] | None = None,
        arch: str = "amd64",
        label: str = "",
    ) -> tuple[str, str, int, list[str]]:
        """Push a manifest (no tag when tag == ""); (manifest digest, config digest, size, layers)."""
        descs, diff_ids = [], []
        for files, how in layers:
            tar = layer_tar(files)
            blob = compress(tar, how)
            diff_ids.append(sha(tar))
            descs.append(
                {"mediaType": kind[how], "digest": self.blob(repo, blob), "size": len(blob)}
            )
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": cmd or ["/bin/busybox", "true"], "Labels": {"t": label or tag}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "test"} for _ in layers],
        }
        config_bytes = json.dumps(config).encode()
        config_digest = self.blob(repo, config_bytes)
        doc = {
            "schemaVersion": 2,
            "mediaType": kind["manifest"],
            "config": {
                "mediaType": kind["config"],
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": descs,
        }
        digest, data = self.manifest(
            repo, tag or sha(json.dumps(doc).encode()), doc, kind["manifest"]
        )
        return digest, config_digest, len(data), [d["digest"] for d in descs]

    def index(self, repo: str, tag: str, entries: list[tuple[str, int, str, str]], kind=OCI) -> str:
        """entries: (manifest digest, size, os, arch)."""
        doc = {
            "schemaVersion": 2,
            "mediaType": kind["index"],
            "manifests": [
                {
                    "mediaType": kind["manifest"],
                    "digest": d,
                    "size": s,
                    "platform": {"os": o, "architecture": a},
                }
                for d, s, o, a in entries
            ],
        }
        return self.manifest(repo, tag, doc, kind["index"])[0]


def busybox_bytes() -> bytes:
    with open(BUSYBOX, "rb") as f:
        return f.read()
