"""`image bootstrap debian:bookworm` through mmdebstrap (minutes, needs a Debian mirror)."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed"),
]


def test_debian_image_is_made_and_runs_bash(freightd):
    made = freightd.cli("image", "bootstrap", "debian:bookworm", timeout=900)
    assert made.returncode == 0, made.stderr.decode()
    assert b"Bootstrapped debian:bookworm" in made.stdout
    ran = freightd.cli(
        "run", "--rm", "debian:bookworm", "bash", "-c", "cat /etc/debian_version; id -un"
    )
    assert ran.returncode == 0, ran.stderr.decode()
    version, user = ran.stdout.decode().split()
    assert version.startswith("12.") and user == "root"
    assert freightd.cli("rmi", "debian:bookworm").returncode == 0
