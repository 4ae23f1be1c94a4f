"""Escape attempts through image layers: every entry stays inside the snapshot.

Each layer is imported with `freight import` (the daemon's real extraction)
and, where it is accepted, looked at from inside a container. Each test
states the attack and the safe outcome.
"""

from __future__ import annotations

import os
import shutil

import pytest
from sec_images import Entry, canary_dir, import_image, listing, output


@pytest.fixture
def canary():
    path = canary_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_dotdot_entry_is_refused(freightd, canary):
    """Attack: a layer entry named ../../../../<host dir>/pwned climbs out of the
    snapshot directory onto the host. Safe outcome: the import is refused with an error
    naming the entry; nothing is written on the host."""
    evil = "../" * 30 + canary.lstrip("/") + "/pwned"
    name, out = import_image(freightd, [Entry(evil, data=b"x")])
    assert name == "", out
    assert "path escapes the layer root" in out and "pwned" in out, out
    assert listing(canary) == ["HOSTSECRET"]


def test_absolute_symlink_then_file_through_it(freightd, canary):
    """Attack: an entry `evil -> <host dir>` (absolute symlink), then a file `evil/pwned`
    written through it. Safe outcome: the link resolves inside the image (as it would for
    the container): the file lands at <image>/<host dir>/pwned, the host dir is untouched."""
    entries = [Entry("evil", "symlink", target=canary), Entry("evil/pwned", data=b"inside\n")]
    name, out = import_image(freightd, entries)
    assert name, out
    assert listing(canary) == ["HOSTSECRET"]
    result = freightd.cli("run", "--rm", name, "/bin/busybox", "cat", f"{canary}/pwned")
    assert result.returncode == 0 and result.stdout == b"inside\n", output(result)


def test_relative_symlink_climbing_out(freightd, canary):
    """Attack: `up -> ../../../../../../..` then `up/<host dir>/pwned`: a relative link that
    climbs above the root. Safe outcome: `..` stops at the image root, so the file is the
    image's <host dir>/pwned, never the host's."""
    entries = [
        Entry("up", "symlink", target="../" * 12),
        Entry(f"up/{canary.lstrip('/')}/pwned", data=b"inside\n"),
    ]
    name, out = import_image(freightd, entries)
    assert name, out
    assert listing(canary) == ["HOSTSECRET"]
    result = freightd.cli("run", "--rm", name, "/bin/busybox", "cat", f"{canary}/pwned")
    assert result.stdout == b"inside\n", output(result)


def test_hardlink_to_outside(freightd, canary):
    """Attack: hard links naming a host file — `../../../<host dir>/HOSTSECRET` and the
    absolute `<host dir>/HOSTSECRET` — to read (or later write) it from the container.
    Safe outcome: the climbing link is refused; the absolute one means "the layer's own
    file", which does not exist, so it is refused too; the host file keeps one link."""
    secret = os.path.join(canary, "HOSTSECRET")
    climbing = "../" * 30 + secret.lstrip("/")
    name, out = import_image(freightd, [Entry("leak", "hardlink", target=climbing)])
    assert name == "" and "leak" in out, out
    name, out = import_image(freightd, [Entry("leak", "hardlink", target=secret)])
    assert name == "" and "leak" in out, out
    assert os.stat(secret).st_nlink == 1


def test_symlinked_parent_replaced_later(freightd, canary):
    """Attack: a directory `d`, then `d` replaced by a symlink to the host dir, then
    `d/pwned`: a later entry tries to write through a link swapped in by an earlier one.
    Safe outcome: the write resolves inside the image root."""
    entries = [
        Entry("d", "dir", mode=0o755),
        Entry("d", "symlink", target=canary),
        Entry("d/pwned", data=b"inside\n"),
    ]
    name, out = import_image(freightd, entries)
    assert name, out
    assert listing(canary) == ["HOSTSECRET"]


def test_deep_paths_are_refused(freightd):
    """Attack: an entry 300 directories deep, which would make every recursive walk of the
    snapshot (removal, diff, copy-up) fail with RecursionError. Safe outcome: the import is
    refused with an error naming the depth limit."""
    name, out = import_image(freightd, [Entry("a/" * 300 + "f", data=b"x")])
    assert name == "" and "deeper than 256 directories" in out, out
