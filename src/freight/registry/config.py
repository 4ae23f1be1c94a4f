"""The registry server's settings: defaults, the TOML config file, then command-line flags.

# /etc/freight/registry.toml
addr = "127.0.0.1:5000"
root = "/var/lib/freight-registry"
public = ["library/*"]          # repositories anyone may pull (globs)
read_only = false               # maintenance: refuse every write with 405
upload_expiry = 86400           # seconds before an untouched upload is removed
token_expiry = 300              # lifetime of issued tokens, seconds
realm = ""                      # token URL in challenges (default: this server's /token)
tls_cert = ""
tls_key = ""
max_manifest_size = 4194304

[storage.s3]                    # optional: blobs and metadata in an S3-compatible bucket
bucket = "registry"             # (accounts and the token key stay under `root`)
region = "us-east-1"
endpoint_url = "http://127.0.0.1:9000"   # empty: AWS
access_key = ""                 # empty: boto3's usual credential chain
secret_key = ""
prefix = "freight"              # key prefix inside the bucket
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from freight import errors

DEFAULT_ROOT = "/var/lib/freight-registry"
DEFAULT_ADDR = "127.0.0.1:5000"


_S3_KEYS = ("bucket", "region", "endpoint_url", "access_key", "secret_key", "prefix")


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    region: str = ""
    endpoint_url: str = ""
    access_key: str = ""
    secret_key: str = ""
    prefix: str = ""


@dataclass(frozen=True)
class Config:
    addr: str = DEFAULT_ADDR
    root: str = DEFAULT_ROOT
    public: list[str] = field(default_factory=list)
    read_only: bool = False
    upload_expiry: int = 86400
    token_expiry: int = 300
    realm: str = ""
    service: str = "freight-registry"
    tls_cert: str = ""
    tls_key: str = ""
    max_manifest_size: int = 4 * 1024 * 1024
    storage: dict[str, dict[str, str]] = field(default_factory=dict)

    def s3_settings(self) -> S3Settings | None:
        """The `[storage.s3]` table, checked; None selects the filesystem driver."""
        unknown = sorted(set(self.storage) - {"s3", "filesystem"})
        if unknown:
            raise errors.InvalidArgument(f"unknown storage drivers {unknown}: expected s3")
        table = self.storage.get("s3")
        if table is None:
            return None
        if not isinstance(table, dict):
            raise errors.InvalidArgument("storage.s3 must be a table")
        bad = sorted(set(table) - set(_S3_KEYS))
        if bad:
            raise errors.InvalidArgument(f"storage.s3: unknown keys {bad}")
        if not all(isinstance(v, str) for v in table.values()):
            raise errors.InvalidArgument("storage.s3: every value must be a string")
        if not table.get("bucket"):
            raise errors.InvalidArgument("storage.s3: bucket is required")
        return S3Settings(**table)

    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.addr.rpartition(":")
        if not sep or not port.isdigit():
            raise errors.InvalidArgument(f"invalid --addr {self.addr!r}: expected HOST:PORT")
        return host.strip("[]") or "0.0.0.0", int(port)


def load(path: str | None, **overrides: object) -> Config:
    """The config file's values (if any) with non-None `overrides` applied on top."""
    config = Config()
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise errors.NotFound(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise errors.InvalidArgument(f"invalid config file {path}: {exc}") from None
        known = {f.name for f in fields(Config)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise errors.InvalidArgument(f"invalid config file {path}: unknown keys {unknown}")
        config = replace(config, **data)
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
