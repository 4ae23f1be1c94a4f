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
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from freight import errors

DEFAULT_ROOT = "/var/lib/freight-registry"
DEFAULT_ADDR = "127.0.0.1:5000"


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
