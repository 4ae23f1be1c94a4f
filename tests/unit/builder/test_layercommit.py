"""builder.layercommit: an upper dir settled to what its layer tar says."""

from __future__ import annotations

import os
from pathlib import Path

from freight.builder import layercommit


def test_overlay_features_that_point_into_lower_dirs_forbid_reuse(tmp_path: Path) -> None:
    for name in ("redirect_dir", "metacopy", "index"):
        (tmp_path / name).write_text("N\n")
    assert layercommit.in_place_supported(tmp_path)
    (tmp_path / "metacopy").write_text("Y\n")
    assert not layercommit.in_place_supported(tmp_path)
    assert layercommit.in_place_supported(tmp_path / "absent")  # no overlay params at all


def test_settle_removes_stubs_keeps_parent_times_and_clamps(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "etc").mkdir(parents=True)
    (upper / "proc").mkdir()
    (upper / "cache").mkdir()  # the step's own mount point, empty
    (upper / "data").mkdir()  # a mount point the step wrote into
    (upper / "data" / "x").write_text("kept")
    (upper / "etc" / "hosts").write_text("")  # the runtime's stub
    (upper / "etc" / "resolv.conf").write_text("")  # the image has one: a change
    (upper / "etc" / "motd").write_text("hello")
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "resolv.conf").write_text("nameserver 1.1.1.1\n")
    os.utime(upper / "etc", (1_000, 1_000))
    os.chmod(upper, 0o700)

    layercommit.settle(upper, [lower], ["cache", "data"], max_mtime=2_000_000_000)

    assert sorted(os.listdir(upper)) == ["data", "etc"]
    assert sorted(os.listdir(upper / "etc")) == ["motd", "resolv.conf"]
    assert os.stat(upper / "etc").st_mtime == 1_000  # as before the stub went
    assert (os.stat(upper).st_mode & 0o777) == 0o755


def test_settle_clamps_every_mtime_to_the_epoch(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "a" / "b").mkdir(parents=True)
    (upper / "a" / "b" / "f").write_text("x")
    os.symlink("f", upper / "a" / "b" / "link")
    old = upper / "a" / "old"
    old.write_text("y")
    os.utime(old, (500, 500))

    layercommit.settle(upper, [], [], max_mtime=1_000)

    for path in [upper / "a", upper / "a" / "b", upper / "a" / "b" / "f"]:
        assert os.lstat(path).st_mtime == 1_000
    assert os.lstat(upper / "a" / "b" / "link").st_mtime == 1_000
    assert os.stat(old).st_mtime == 500  # older than the epoch: as it was
