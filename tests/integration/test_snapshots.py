"""Mount what the overlay snapshotter returns and look through it (root only).

Mounting is done here with mount(8), in the test only; in freight the
returned mounts are performed by freight.linux.
"""

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from freight.archive import apply_layer
from freight.snapshots import Mount, OverlaySnapshotter

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root"),
]


@contextmanager
def mounted(mounts: list[Mount], target: Path) -> Iterator[Path]:
    (m,) = mounts
    target.mkdir(exist_ok=True)
    args = ["mount", "-o", ",".join(m.options)]
    args += ["-t", m.type, m.source] if m.type != "bind" else [m.source]
    subprocess.run([*args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def layer(*entries: tuple[str, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def s(tmp_path):
    snapshotter = OverlaySnapshotter(tmp_path / "snap")
    # base: /etc/motd, /etc/keep, /cache/old; top: deletes /etc/motd, makes /cache opaque
    snapshotter.prepare("x0")
    apply_layer(
        layer(
            ("etc", None),
            ("etc/motd", b"hi"),
            ("etc/keep", b"k"),
            ("cache", None),
            ("cache/old", b"o"),
        ),
        snapshotter.upper_dir("x0"),
    )
    snapshotter.commit("base", "x0")
    snapshotter.prepare("x1", "base")
    apply_layer(
        layer(
            ("etc/.wh.motd", b""), ("cache", None), ("cache/.wh..wh..opq", b""), ("cache/new", b"n")
        ),
        snapshotter.upper_dir("x1"),
        whiteouts="overlay",
    )
    snapshotter.commit("top", "x1")
    yield snapshotter
    snapshotter.close()


def test_container_rootfs_sees_lowers_honours_whiteouts_and_writes_upper(s, tmp_path):
    mounts = s.prepare("ctr", "top")
    with mounted(mounts, tmp_path / "rootfs") as root:
        assert (root / "etc/keep").read_text() == "k"
        assert not (root / "etc/motd").exists()
        assert sorted(os.listdir(root / "cache")) == ["new"]
        (root / "etc/written").write_text("w")
        (root / "etc/keep").unlink()
    upper = s.upper_dir("ctr")
    assert (upper / "etc/written").read_text() == "w"
    assert (upper / "etc/keep").lstat().st_rdev == 0  # the kernel's whiteout
    assert not (s.upper_dir("ctr").parent.parent / "1/fs/etc/written").exists()


def test_single_active_snapshot_is_a_bind(s, tmp_path):
    mounts = s.prepare("scratch")
    with mounted(mounts, tmp_path / "rootfs") as root:
        (root / "f").write_text("x")
    assert (s.upper_dir("scratch") / "f").read_text() == "x"


@pytest.mark.parametrize("parent", ["base", "top"])
def test_views_are_read_only(s, tmp_path, parent):
    mounts = s.view("v", parent)
    with mounted(mounts, tmp_path / "view") as root:
        assert (root / "etc/keep").read_text() == "k"
        assert (root / "etc/motd").exists() == (parent == "base")
        with pytest.raises(OSError):
            (root / "new").write_text("x")
