"""A real registry for tests: Debian's docker-registry (CNCF distribution 2.8)
on 127.0.0.1 with its own config and storage dir, optionally behind
htpasswd (Basic) auth. `Registry.stop()` kills only the process it started.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARY = "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT", as in image references
    proc: subprocess.Popen
    root: Path
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(root: Path, users: dict[str, str] | None = None, port: int = 0) -> Registry:
    if not Path(BINARY).exists():
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    auth = ""
    if users:
        if shutil.which("htpasswd") is None:
            pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
        htpasswd = root / "htpasswd"
        htpasswd.touch()
        for user, password in users.items():
            subprocess.run(
                ["htpasswd", "-Bb", str(htpasswd), user, password],
                check=True, capture_output=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {htpasswd}\n"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = root / "registry.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [BINARY, "serve", str(config)], stdout=out, stderr=out, stdin=subprocess.DEVNULL
        )
    reg = Registry(f"127.0.0.1:{port}", proc, root, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=1)  # noqa: S310
            return reg
        except urllib.error.HTTPError:
            return reg  # 401 with auth: it is up
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    reg.stop()
    raise RuntimeError("docker-registry did not start:\n" + reg.log_tail())
