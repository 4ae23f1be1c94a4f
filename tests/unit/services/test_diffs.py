"""`docker diff` from an upper dir and its lower dirs (plain directories, no mounts).

Whiteouts need CAP_MKNOD and opaque dirs a trusted.* xattr, so those cases
run only as root; the integration tests cover them through a real container.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freight.services.diffs import Change, Kind, changes, layer_dirs
from freight.snapshots import Mount

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts need CAP_MKNOD")


def write(path: Path, data: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


def same_time(a: Path, b: Path) -> None:
    st = os.stat(b)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_added_and_changed(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower / "etc/motd", "old")
    write(upper / "etc/motd", "new")
    write(upper / "srv/new/file")
    assert changes(upper, [lower]) == [
        Change("/etc", Kind.MODIFIED),
        Change("/etc/motd", Kind.MODIFIED),
        Change("/srv", Kind.ADDED),
        Change("/srv/new", Kind.ADDED),
        Change("/srv/new/file", Kind.ADDED),
    ]


def test_copied_up_directory_with_the_same_mtime_is_not_a_change(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "var").mkdir(parents=True)
    (upper / "var").mkdir(parents=True)
    same_time(upper / "var", lower / "var")
    assert changes(upper, [lower]) == []


def test_runtime_mount_point_stubs_are_not_changes(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    write(upper / "etc/hosts", "")
    write(upper / "etc/resolv.conf", "")
    same_time(upper / "etc", lower / "etc")
    assert changes(upper, [lower]) == []


def test_lower_dirs_are_searched_nearest_first(tmp_path: Path) -> None:
    top, bottom, upper = tmp_path / "top", tmp_path / "bottom", tmp_path / "upper"
    write(bottom / "deep/file")
    (top / "deep").mkdir(parents=True)
    write(upper / "deep/file", "changed")
    same_time(upper / "deep", top / "deep")  # compared with the nearest lower
    assert changes(upper, [top, bottom]) == [Change("/deep/file", Kind.MODIFIED)]


@root_only
def test_whiteout_is_deleted_and_parent_changed(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower / "etc/group")
    (upper / "etc").mkdir(parents=True)
    same_time(upper / "etc", lower / "etc")
    os.mknod(upper / "etc/group", 0o020000, os.makedev(0, 0))
    assert changes(upper, [lower]) == [
        Change("/etc", Kind.MODIFIED),
        Change("/etc/group", Kind.DELETED),
    ]


@root_only
def test_opaque_directory_deletes_what_was_below(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower / "cache/old1")
    write(lower / "cache/old2")
    write(upper / "cache/new")
    try:
        os.setxattr(upper / "cache", "trusted.overlay.opaque", b"y")
    except OSError as e:
        pytest.skip(f"no trusted xattrs here: {e}")
    assert changes(upper, [lower]) == [
        Change("/cache", Kind.MODIFIED),
        Change("/cache/new", Kind.ADDED),
        Change("/cache/old1", Kind.DELETED),
        Change("/cache/old2", Kind.DELETED),
    ]


def test_layer_dirs_of_overlay_and_bind_mounts() -> None:
    overlay = Mount("overlay", "overlay", ["lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w"])
    assert layer_dirs([overlay]) == (Path("/u"), [Path("/l1"), Path("/l2")])
    assert layer_dirs([Mount("bind", "/fs", ["rw", "rbind"])]) == (Path("/fs"), [])
