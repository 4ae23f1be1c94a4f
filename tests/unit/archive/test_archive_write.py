"""write_layer_from_dir: deterministic tars that apply_layer turns back into the tree."""

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from freight.archive import apply_layer, compute_diff_id, write_layer_from_dir
from freight.oci.digest import Digest

ROOT = os.geteuid() == 0


def make_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (root / "bin").mkdir()
    (root / "bin/sh").write_bytes(b"\x7fELF")
    os.chmod(root / "bin/sh", 0o4755)
    os.link(root / "bin/sh", root / "bin/ash")
    os.symlink("sh", root / "bin/link")
    os.mkfifo(root / "fifo")
    for p in root.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)


def tar_of(src: Path) -> bytes:
    out = io.BytesIO()
    write_layer_from_dir(src, out)
    return out.getvalue()


def test_output_is_deterministic(tmp_path):
    make_tree(tmp_path / "a")
    first = tar_of(tmp_path / "a")
    os.utime(tmp_path / "a/etc/hosts")  # atime/ctime noise must not matter...
    os.utime(tmp_path / "a/etc/hosts", (1, 1_700_000_000))
    assert tar_of(tmp_path / "a") == first
    make_tree(tmp_path / "b")  # ...and neither do inode numbers or creation order
    assert tar_of(tmp_path / "b") == first


def test_entries_are_sorted_relative_with_hardlinks(tmp_path):
    make_tree(tmp_path / "src")
    with tarfile.open(fileobj=io.BytesIO(tar_of(tmp_path / "src"))) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["bin", "bin/ash", "bin/link", "bin/sh", "etc", "etc/hosts", "fifo"]
    ash, sh = members[1], members[3]
    assert ash.isreg() and sh.islnk() and sh.linkname == "bin/ash"
    assert all(m.uname == "" and m.gname == "" for m in members)


def test_round_trip_through_apply(tmp_path):
    make_tree(tmp_path / "src")
    data = tar_of(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    assert apply_layer(io.BytesIO(data), tmp_path / "dst") == len(data)
    assert tar_of(tmp_path / "dst") == data
    assert compute_diff_id(io.BytesIO(data)) == Digest.of(data)
    assert stat.S_IMODE((tmp_path / "dst/bin/sh").stat().st_mode) == 0o4755


@pytest.mark.skipif(not ROOT, reason="overlay whiteouts need mknod and trusted xattrs")
def test_overlay_whiteouts_become_wh_entries(tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc/motd", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "cache").mkdir()
    os.setxattr(upper / "cache", "trusted.overlay.opaque", b"y")
    with tarfile.open(fileobj=io.BytesIO(tar_of(upper))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"cache", "cache/.wh..wh..opq", "etc", "etc/.wh.motd"}
    assert not any(
        k.startswith("SCHILY.xattr.trusted.overlay") for k in members["cache"].pax_headers
    )
    # and back: applying in overlay mode recreates the overlay form
    (tmp_path / "again").mkdir()
    apply_layer(io.BytesIO(tar_of(upper)), tmp_path / "again", whiteouts="overlay")
    assert tar_of(tmp_path / "again") == tar_of(upper)
