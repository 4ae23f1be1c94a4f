"""The mount-destination race (runc's CVE-2021-30465), made deterministic.

A container that shares a volume with another one can swap a directory for a
symlink between the moment the runtime resolves a mount destination
(`rootfs.secure_join`) and the mount itself. Here the swap is made exactly in
that window, in a child process with a mount namespace of its own, and the
mount is made once with the plain path-based seam (the control, which follows
the link out) and once with `RootedSyscalls` (what the container init uses).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from freight.linux import syscalls
from freight.linux.seam import LinuxSyscalls
from freight.runtime import rootfs
from freight.runtime.rootfd import RootedSyscalls


def _in_child(fn) -> int:
    """Run fn() in a forked child with a private mount namespace; its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.mount(None, "/", None, syscalls.MS_PRIVATE | syscalls.MS_REC, None)
            code = fn()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _race(seam_for, tmp: Path, outside: Path) -> int:
    """0: the tmpfs landed outside the root; 1: it stayed inside (or was refused)."""
    root = tmp / "rootfs"
    (root / "data" / "sub").mkdir(parents=True)
    seam = seam_for(str(root))
    dest = rootfs.secure_join(seam, str(root), "/data/sub")  # resolved: a plain directory
    # ...and now the other container swaps it for a link to the host.
    (root / "data" / "sub").rmdir()
    os.symlink(str(outside), root / "data" / "sub")
    try:
        seam.mount("tmpfs", dest, "tmpfs", 0, "size=1m")
    except OSError:
        return 1
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return 0 if str(outside) in points else 1


def test_swapped_mount_destination_stays_in_the_root(tmp_path):
    """Attack: swap a resolved mount destination for a symlink to a host directory right
    before the mount. Safe outcome: with RootedSyscalls the mount lands inside the root
    (at <root>/<host dir>) or fails; the host directory is never mounted over. The
    control shows the race is real: the path-based seam mounts over the host directory."""
    outside = Path(f"/tmp/freight-race-{secrets.token_hex(4)}")
    outside.mkdir()
    try:
        control = tmp_path / "control"
        control.mkdir()
        assert _in_child(lambda: _race(lambda _root: LinuxSyscalls(), control, outside)) == 0
        rooted = tmp_path / "rooted"
        rooted.mkdir()
        assert _in_child(lambda: _race(RootedSyscalls, rooted, outside)) == 1
        assert os.listdir(outside) == []
    finally:
        shutil.rmtree(outside, ignore_errors=True)
