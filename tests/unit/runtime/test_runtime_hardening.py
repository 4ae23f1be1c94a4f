"""Runtime hardening without root: the fd-rooted syscalls, the cwd refusal and the
mount-destination checks of rootfs setup."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from freight.errors import ExecError
from freight.linux.seam import RecordingSyscalls
from freight.linux.syscalls import MS_BIND
from freight.runtime import init, rootfs
from freight.runtime.config import MountOp
from freight.runtime.rootfd import RootedSyscalls


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


def test_rooted_ops_never_follow_a_link_out(tree) -> None:
    """A component swapped for a link to the host after secure_join: every operation
    resolves it inside the root (or fails), nothing appears outside."""
    root, outside = tree
    os.symlink(str(outside), root / "swapped")
    rooted = RootedSyscalls(str(root))
    try:
        for op in (
            lambda: rooted.touch(str(root / "swapped" / "f")),
            lambda: rooted.symlink("x", str(root / "swapped" / "l")),
            lambda: rooted.mkdir_all(str(root / "swapped" / "d"), 0o755),
        ):
            with contextlib.suppress(OSError):
                op()
        assert os.listdir(outside) == []
        assert rooted.kind(str(root / "swapped")) is None  # resolves to <root>/<outside>
    finally:
        rooted.close()


def test_rooted_mkdir_and_touch_inside(tree) -> None:
    root, _ = tree
    (root / "lib").mkdir()
    os.symlink("/lib", root / "l")  # absolute, resolves to <root>/lib
    rooted = RootedSyscalls(str(root))
    try:
        rooted.mkdir_all(str(root / "l" / "a" / "b"), 0o755)
        rooted.touch(str(root / "l" / "a" / "f"))
        assert (root / "lib" / "a" / "b").is_dir() and (root / "lib" / "a" / "f").is_file()
        assert rooted.readlink(str(root / "l")) == "/lib"
        assert rooted.kind(str(root / "l" / "a")) == "dir"
    finally:
        rooted.close()


@pytest.mark.parametrize(
    "cwd", ["/proc/self/fd/7", "/proc/1/cwd", "/proc/thread-self/root/x", "//proc//self/fd/3",
            "/proc/12/task/12/cwd"],
)  # fmt: skip
def test_proc_link_cwd_is_refused(cwd: str) -> None:
    with pytest.raises(ExecError, match="refused"):
        init.refuse_proc_cwd(cwd)


@pytest.mark.parametrize("cwd", ["/proc", "/proc/sys", "/work", "/proc/self"])
def test_other_cwds_pass(cwd: str) -> None:
    init.refuse_proc_cwd(cwd)


def _plan(mounts: list[MountOp], links: dict[str, str] | None = None):
    sys = RecordingSyscalls(dirs={"/r", "/r/proc", "/r/data"}, files={"/src"}, links=links)
    return sys, rootfs.RootfsPlan(rootfs="/r", mounts=mounts)


def _mount(dest: str, kind: str) -> MountOp:
    flags = MS_BIND if kind == "bind" else 0
    return MountOp(destination=dest, type=kind, source="/src", flags=flags, data="")


@pytest.mark.parametrize(
    ("dest", "kind"),
    [("/proc", "bind"), ("/proc/sys", "tmpfs"), ("/data/x", "bind"), ("/dev", "tmpfs")],
)
def test_mounts_on_proc_or_the_root_are_refused(dest: str, kind: str) -> None:
    links = {"/r/data": "/proc", "/r/dev": "/"}
    m = _mount(dest, kind)
    sys, plan = _plan([m], links)
    with pytest.raises(ExecError, match="refused"):
        rootfs.mount_entry(sys, plan, m)
    assert sys.named("mount") == []


def test_proc_itself_and_allowed_binds_pass() -> None:
    proc, cpuinfo = _mount("/proc", "proc"), _mount("/proc/cpuinfo", "bind")
    sys, plan = _plan([proc, cpuinfo])
    rootfs.mount_entry(sys, plan, proc)
    rootfs.mount_entry(sys, plan, cpuinfo)
    assert [c[2] for c in sys.named("mount")] == ["/r/proc", "/r/proc/cpuinfo"]
