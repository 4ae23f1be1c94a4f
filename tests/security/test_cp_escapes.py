"""Escape attempts through `cp` (GET/PUT /containers/{id}/archive): the container
controls every path in its root, symlinks included, even while the copy runs.
Each test states the attack and the safe outcome.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile
import time

import pytest
from sec_images import canary_dir, listing, output


@pytest.fixture
def canary():
    path = canary_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def box(freightd):
    """A running busybox container; removed afterwards."""
    name = f"seccp-{secrets.token_hex(3)}"
    result = freightd.cli("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert result.returncode == 0, output(result)
    yield name
    freightd.cli("rm", "-f", name)


def _sh(freightd, box: str, script: str) -> str:
    result = freightd.cli("exec", box, "sh", "-c", script)
    assert result.returncode == 0, output(result)
    return result.stdout.decode()


def test_cp_into_symlink_to_root(freightd, box, tmp_path):
    """Attack: the container makes /dest a symlink to "/" and the user copies a file to
    box:/dest/: a host-side resolution would write into the host's root. Safe outcome: the
    file lands in the container's own root directory; the host's / has no such file."""
    _sh(freightd, box, "ln -s / /dest")
    marker = f"freight-cp-{secrets.token_hex(4)}"
    src = tmp_path / marker
    src.write_text("payload\n")
    result = freightd.cli("cp", str(src), f"{box}:/dest/")
    assert result.returncode == 0, output(result)
    assert not os.path.exists(f"/{marker}")
    assert _sh(freightd, box, f"cat /{marker}") == "payload\n"


def test_cp_into_symlink_to_host_dir(freightd, box, tmp_path, canary):
    """Attack: /dest is a symlink to a path that exists on the host (<canary>).
    Safe outcome: the copy goes to the container's <canary> directory; the host's is untouched."""
    _sh(freightd, box, f"mkdir -p {canary} && ln -s {canary} /dest")
    src = tmp_path / "pwned"
    src.write_text("payload\n")
    result = freightd.cli("cp", str(src), f"{box}:/dest/")
    assert result.returncode == 0, output(result)
    assert listing(canary) == ["HOSTSECRET"]
    assert _sh(freightd, box, f"cat {canary}/pwned") == "payload\n"


def test_cp_out_follows_links_inside_only(freightd, box, tmp_path, canary):
    """Attack: /leak is a symlink to a host file (<canary>/HOSTSECRET) and the user copies
    box:/leak out, with and without -L. Safe outcome: without -L the archive holds the link
    itself; with -L it is resolved in the container, where no such file exists: an error,
    never the host's secret."""
    _sh(freightd, box, f"ln -s {canary}/HOSTSECRET /leak")
    result = freightd.cli("cp", f"{box}:/leak", "-")
    assert result.returncode == 0, output(result)
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        (member,) = tar.getmembers()
        assert member.issym() and member.linkname == f"{canary}/HOSTSECRET"
    result = freightd.cli("cp", "-L", f"{box}:/leak", str(tmp_path / "out"))
    assert result.returncode != 0, output(result)
    assert b"host-secret" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists() or b"host-secret" not in (tmp_path / "out").read_bytes()


def test_cp_archive_entries_cannot_climb(freightd, box, canary):
    """Attack: a tar sent to PUT /archive with `../../<canary>/pwned` and a symlink entry
    followed by a file through it. Safe outcome: the climbing entry is refused (or kept
    inside); the host dir is untouched whatever the daemon answers."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("hop")
        link.type, link.linkname = tarfile.SYMTYPE, canary
        tar.addfile(link)
        for name in ("hop/pwned", "../" * 20 + canary.lstrip("/") + "/pwned2"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"x\n"))
    freightd.cli("cp", "-", f"{box}:/tmp", input=buf.getvalue())
    assert listing(canary) == ["HOSTSECRET"]


def test_symlink_race_during_cp(freightd, box, tmp_path, canary):
    """Attack: while cp runs in both directions, the container swaps /tmp/race between a
    directory and a symlink to <canary> (a host path) as fast as it can, hoping a copy
    resolves the path once and then follows the link on the host. Safe outcome: every cp
    finishes in bounded time, nothing reaches the host dir, nothing of the host is read."""
    script = (
        f"mkdir -p {canary}; "
        "while :; do mkdir -p /tmp/d && mv -T /tmp/d /tmp/race 2>/dev/null; "
        f"ln -sfn {canary} /tmp/l && mv -T /tmp/l /tmp/race 2>/dev/null; done"
    )
    result = freightd.cli("exec", "-d", box, "sh", "-c", script)
    assert result.returncode == 0, output(result)
    src = tmp_path / "pwned"
    src.write_text("payload\n")
    deadline = time.monotonic() + 4
    rounds = 0
    while time.monotonic() < deadline:
        freightd.cli("cp", str(src), f"{box}:/tmp/race/", timeout=10)
        out = freightd.cli("cp", f"{box}:/tmp/race/HOSTSECRET", "-", timeout=10)
        assert b"host-secret" not in out.stdout
        rounds += 1
    assert rounds >= 3
    assert listing(canary) == ["HOSTSECRET"]


def test_cp_into_stopped_container_symlink(freightd, tmp_path, canary):
    """Attack: as above, but the container has exited (cp then works on its stored root,
    not through a running process): /dest -> <host dir> and /up -> ../../../../.. .
    Safe outcome: both copies land inside the container's root; the host is untouched."""
    name = f"seccp-{secrets.token_hex(3)}"
    script = f"mkdir -p {canary} && ln -s {canary} /dest && ln -s {'../' * 8} /up"
    result = freightd.cli("run", "--name", name, "busybox", "sh", "-c", script)
    assert result.returncode == 0, output(result)
    try:
        src = tmp_path / "pwned"
        src.write_text("payload\n")
        for dest in ("/dest/", f"/up{canary}/"):
            result = freightd.cli("cp", str(src), f"{name}:{dest}")
            assert result.returncode == 0, output(result)
        assert listing(canary) == ["HOSTSECRET"]
        out = freightd.cli("cp", f"{name}:{canary}/pwned", "-")
        assert out.returncode == 0 and b"payload" in out.stdout, output(out)
    finally:
        freightd.cli("rm", "-f", name)
