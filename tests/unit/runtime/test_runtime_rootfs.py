"""freight.runtime.rootfs planned against the recording syscall fake (no root needed)."""

from __future__ import annotations

import os

from freight.linux import syscalls as sc
from freight.linux.mountopts import parse_mount_options
from freight.linux.seam import RecordingSyscalls
from freight.runtime import rootfs
from freight.runtime.config import MountOp

R = "/b/rootfs"


def op(dest: str, mtype: str, source: str, options: list[str]) -> MountOp:
    flags, prop, data = parse_mount_options(options)
    if mtype == "bind":
        flags |= sc.MS_BIND
    return MountOp(dest, mtype, source, flags, data, prop)


def plan(**kw: object) -> rootfs.RootfsPlan:
    mounts = kw.pop("mounts", [op("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"])])
    return rootfs.RootfsPlan(rootfs=R, mounts=mounts, **kw)  # type: ignore[arg-type]


def test_order_private_bind_mounts_pivot() -> None:
    fake = RecordingSyscalls()
    rootfs.setup(fake, plan())
    kinds = [c[0] for c in fake.calls]
    assert fake.calls[0] == ("mount", None, "/", None, sc.MS_PRIVATE | sc.MS_REC, None)
    assert fake.calls[1] == ("mount", R, R, "bind", sc.MS_BIND | sc.MS_REC, None)
    assert (
        "mount",
        "proc",
        R + "/proc",
        "proc",
        sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV,
        None,
    ) in fake.calls
    assert kinds[-5:] == ["chdir", "pivot_root", "mount", "umount", "chdir"]
    assert ("pivot_root", ".", ".") in fake.calls
    assert ("umount", ".", sc.MNT_DETACH) in fake.calls


def test_destination_symlink_cannot_escape_rootfs() -> None:
    fake = RecordingSyscalls(links={R + "/proc": "/../../etc"})
    rootfs.setup(fake, plan())
    targets = [c[2] for c in fake.named("mount")]
    assert R + "/etc" in targets
    assert all(t.startswith(R) or t in ("/", ".") for t in targets)


def test_bind_file_is_touched_then_remounted_readonly() -> None:
    fake = RecordingSyscalls(files={"/b/hosts"})
    m = op("/etc/hosts", "bind", "/b/hosts", ["rbind", "ro", "rprivate"])
    rootfs.setup(fake, plan(mounts=[m]))
    dest = R + "/etc/hosts"
    assert ("touch", dest) in fake.calls
    assert ("mount", "/b/hosts", dest, "bind", sc.MS_BIND | sc.MS_REC, None) in fake.calls
    assert (
        "mount",
        None,
        dest,
        None,
        sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY,
        None,
    ) in fake.calls
    assert ("mount", None, dest, None, sc.MS_PRIVATE | sc.MS_REC, None) in fake.calls


def test_missing_bind_source_fails() -> None:
    fake = RecordingSyscalls()
    m = op("/data", "bind", "/nope", ["rbind"])
    try:
        rootfs.setup(fake, plan(mounts=[m]))
    except FileNotFoundError as e:
        assert e.filename == "/nope"
    else:
        raise AssertionError("expected FileNotFoundError")


def test_dev_tmpfs_gets_devices_and_links() -> None:
    fake = RecordingSyscalls()
    rootfs.setup(fake, plan(mounts=[op("/dev", "tmpfs", "tmpfs", ["nosuid", "mode=755"])]))
    nodes = {c[1]: c for c in fake.named("mknod")}
    assert nodes[R + "/dev/null"][2] == 0o20666 and nodes[R + "/dev/null"][3] == os.makedev(1, 3)
    assert {R + f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom", "tty")} == set(
        nodes
    )
    assert ("symlink", "pts/ptmx", R + "/dev/ptmx") in fake.calls
    assert ("symlink", "/proc/self/fd", R + "/dev/fd") in fake.calls


def test_devices_fall_back_to_bind_without_mknod() -> None:
    fake = RecordingSyscalls(deny_mknod=True)
    rootfs.setup(fake, plan(mounts=[op("/dev", "tmpfs", "tmpfs", [])]))
    assert ("mount", "/dev/null", R + "/dev/null", "bind", sc.MS_BIND, None) in fake.calls


def test_masked_readonly_and_readonly_root_after_pivot() -> None:
    fake = RecordingSyscalls(dirs={"/proc/acpi", "/proc/sys"}, files={"/proc/kcore"})
    p = plan(
        masked_paths=["/proc/acpi", "/proc/kcore", "/proc/missing"],
        readonly_paths=["/proc/sys"],
        readonly=True,
    )
    rootfs.setup(fake, p)
    after = fake.calls[[c[0] for c in fake.calls].index("pivot_root") :]
    assert ("mount", "tmpfs", "/proc/acpi", "tmpfs", sc.MS_RDONLY, None) in after
    assert ("mount", "/dev/null", "/proc/kcore", "bind", sc.MS_BIND, None) in after
    assert not [c for c in fake.named("mount") if c[2] == "/proc/missing"]
    assert ("mount", "/proc/sys", "/proc/sys", "bind", sc.MS_BIND | sc.MS_REC, None) in after
    assert after[-1] == ("mount", None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY, None)


def test_cwd_created_before_pivot() -> None:
    fake = RecordingSyscalls()
    rootfs.setup(fake, plan(cwd="/work/dir"))
    i = fake.calls.index(("mkdir_all", R + "/work/dir", 0o755))
    assert i < [c[0] for c in fake.calls].index("pivot_root")


def test_cgroup_v1_is_tmpfs_with_binds_and_links() -> None:
    fake = RecordingSyscalls(dirs={"/sys/fs/cgroup/memory/c"})
    m = op("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "ro"])
    p = plan(
        mounts=[m],
        cgroup_binds=[("/sys/fs/cgroup/memory/c", "memory")],
        cgroup_links=[("cpu,cpuacct", "cpu")],
    )
    rootfs.setup(fake, p)
    dest = R + "/sys/fs/cgroup"
    assert (
        "mount",
        "tmpfs",
        dest,
        "tmpfs",
        sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
        "mode=755",
    ) in fake.calls
    assert (
        "mount",
        "/sys/fs/cgroup/memory/c",
        dest + "/memory",
        "bind",
        sc.MS_BIND,
        None,
    ) in fake.calls
    assert ("symlink", "cpu,cpuacct", dest + "/cpu") in fake.calls
    remounts = [c for c in fake.named("mount") if c[2] == dest and c[4] & sc.MS_REMOUNT]
    assert remounts and remounts[-1][4] & sc.MS_RDONLY


def test_cgroup_v2_binds_own_directory() -> None:
    fake = RecordingSyscalls(dirs={"/sys/fs/cgroup/c"})
    m = op("/sys/fs/cgroup", "cgroup", "cgroup", ["ro"])
    rootfs.setup(fake, plan(mounts=[m], cgroup_binds=[("/sys/fs/cgroup/c", "")]))
    dest = R + "/sys/fs/cgroup"
    assert ("mount", "/sys/fs/cgroup/c", dest, "bind", sc.MS_BIND, None) in fake.calls
    assert (
        "mount",
        None,
        dest,
        None,
        sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY,
        None,
    ) in fake.calls
