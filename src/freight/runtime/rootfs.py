"""Build the container's root filesystem view inside its new mount namespace.

Runs in the container init, before the command is looked up, in this order
(each step needs the one before)::

    1. make every mount private (rootfsPropagation) so nothing leaks to the host
    2. bind the rootfs onto itself: pivot_root needs a mount point
    3. spec mounts in order (proc, /dev tmpfs, devpts, shm, mqueue, sysfs,
       cgroup, binds such as /etc/hosts); destinations resolved inside the
       rootfs so a symlink in the image cannot point a mount at the host
    4. device nodes and /dev symlinks (only with a tmpfs /dev)
    5. cwd created while we are still root and the root is still writable
    6. pivot_root(".", ".") then lazily detach the old root
    7. readonlyPaths, maskedPaths, and finally a read-only root if asked

All system calls go through the `Syscalls` seam so tests can record them. In
the container init the seam is `rootfd.RootedSyscalls`: every path under the
rootfs is re-opened through an fd on it (openat2 RESOLVE_IN_ROOT) at the moment
of the mount, so a symlink swapped in after `secure_join` (through a volume
another container shares) still resolves inside the root. Destinations on /proc
(other than proc itself) and on the root itself are refused.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from freight.errors import ExecError
from freight.linux import syscalls as sc
from freight.linux.seam import Syscalls
from freight.oci.runtime_spec import Device
from freight.runtime.config import DEFAULT_DEVICES, MountOp

_DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)
_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
_HARDENED = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


@dataclass
class RootfsPlan:
    """What rootfs setup needs to know, cut out of ContainerConfig and the cgroup."""

    rootfs: str
    mounts: list[MountOp]
    propagation: int = sc.MS_PRIVATE | sc.MS_REC
    devices: list[Device] = field(default_factory=list)
    cwd: str = "/"
    readonly: bool = False
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    cgroup_binds: list[tuple[str, str]] = field(default_factory=list)
    cgroup_links: list[tuple[str, str]] = field(default_factory=list)


def secure_join(sys: Syscalls, root: str, unsafe: str) -> str:
    """`root`/`unsafe` with symlinks resolved as if `root` were "/": never escapes root."""
    parts = unsafe.split("/")
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        link = sys.readlink(os.path.join(root, *resolved, part))
        if link is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > 255:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), unsafe)
        if link.startswith("/"):
            resolved = []
        parts = link.split("/") + parts
    return os.path.join(root, *resolved)


def setup(sys: Syscalls, plan: RootfsPlan) -> None:
    """Steps 1-7 above; raises OSError naming the failing step's path."""
    sys.mount(None, "/", None, plan.propagation, None)
    sys.mount(plan.rootfs, plan.rootfs, "bind", sc.MS_BIND | sc.MS_REC, None)
    for m in plan.mounts:
        mount_entry(sys, plan, m)
    if any(m.destination == "/dev" and not m.is_bind for m in plan.mounts):
        create_devices(sys, plan.rootfs, plan.devices)
        create_dev_links(sys, plan.rootfs)
    make_cwd(sys, plan)
    pivot(sys, plan.rootfs)
    for path in plan.readonly_paths:
        make_readonly(sys, path)
    for path in plan.masked_paths:
        mask(sys, path)
    if plan.readonly:
        sys.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY, None)


def make_cwd(sys: Syscalls, plan: RootfsPlan) -> None:
    """Create the working directory inside the root; an error names it."""
    try:
        sys.mkdir_all(secure_join(sys, plan.rootfs, plan.cwd), 0o755)
    except OSError as e:
        raise ExecError(
            f"working directory {plan.cwd!r} cannot be made in the container: {e.strerror}", 126
        ) from None


# Files a bind may cover inside /proc (lxcfs-style views), as runc allows; nothing else.
PROC_BIND_ALLOWED = frozenset(
    {
        "proc/cpuinfo", "proc/diskstats", "proc/meminfo", "proc/stat", "proc/swaps",
        "proc/uptime", "proc/loadavg", "proc/slabinfo", "proc/net/dev",
        "proc/sys/kernel/ns_last_pid",
    }
)  # fmt: skip


def check_destination(plan: RootfsPlan, m: MountOp, dest: str) -> None:
    """Nothing is mounted over the root itself, and only proc itself goes on /proc. A volume or bind there (`VOLUME /proc`, `-v x:/proc`,
    or a path that leads into /proc through a symlink) would hide the masked and
    read-only paths, or put them on files the container controls."""
    rel = os.path.relpath(dest, plan.rootfs)
    if rel == ".":
        # e.g. an image's /dev -> "/": the mount would cover the whole root.
        raise ExecError(
            f"mount destination {m.destination!r} is refused: it resolves to the "
            "container's root directory",
            125,
        )
    if rel != "proc" and not rel.startswith("proc/"):
        return
    if (rel == "proc" and m.type == "proc") or (m.is_bind and rel in PROC_BIND_ALLOWED):
        return
    raise ExecError(
        f"mount destination {m.destination!r} is refused: it is /proc or inside it "
        f"(/{rel}), where only proc itself may be mounted",
        125,
    )


def mount_entry(sys: Syscalls, plan: RootfsPlan, m: MountOp) -> None:
    dest = secure_join(sys, plan.rootfs, m.destination)
    check_destination(plan, m, dest)
    if m.type in ("cgroup", "cgroup2"):
        mount_cgroup(sys, dest, m, plan.cgroup_binds, plan.cgroup_links)
    elif m.is_bind:
        mount_bind(sys, m.source, dest, m.flags)
    else:
        sys.mkdir_all(dest, 0o755)
        try:
            sys.mount(m.source, dest, m.type, m.flags, m.data or None)
        except PermissionError:
            if m.type != "sysfs":
                raise
            # In a user namespace sysfs mounts only with a network namespace of
            # that user namespace; with the daemon's (joined) one, bind the host's /sys
            # as runc does. The spec's nosuid,nodev,noexec keep its locked flags set.
            mount_bind(sys, "/sys", dest, m.flags | sc.MS_BIND | sc.MS_REC)
    for flag in m.propagation:
        sys.mount(None, dest, None, flag, None)


def mount_bind(sys: Syscalls, source: str, dest: str, flags: int) -> None:
    """Bind `source` on `dest` (dir or file as the source is), then apply flags by remount.

    The kernel ignores ro/nosuid/... on the bind call itself; they only take
    effect through a second MS_REMOUNT|MS_BIND call.
    """
    kind = sys.kind(source)
    if kind is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), source)
    if kind == "dir":
        sys.mkdir_all(dest, 0o755)
    else:
        sys.mkdir_all(os.path.dirname(dest), 0o755)
        if sys.kind(dest) is None:
            sys.touch(dest)
    sys.mount(source, dest, "bind", flags & (sc.MS_BIND | sc.MS_REC), None)
    rest = flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    if rest:
        sys.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | rest, None)


def mount_cgroup(
    sys: Syscalls,
    dest: str,
    m: MountOp,
    binds: list[tuple[str, str]],
    links: list[tuple[str, str]],
) -> None:
    """Show the container its own cgroup directories at `dest`.

    v2: bind the container's cgroup dir itself. v1: a tmpfs holding one bind
    per hierarchy plus alias symlinks (cpu -> cpu,cpuacct), like runc.
    """
    flags = (m.flags | sc.MS_BIND) & ~sc.MS_REC
    sys.mkdir_all(dest, 0o755)
    if len(binds) == 1 and binds[0][1] == "":
        mount_bind(sys, binds[0][0], dest, flags)
        return
    sys.mount("tmpfs", dest, "tmpfs", _HARDENED, "mode=755")
    for host_dir, name in binds:
        mount_bind(sys, host_dir, os.path.join(dest, name), flags)
    for target, name in links:
        sys.symlink(target, os.path.join(dest, name))
    if m.flags & sc.MS_RDONLY:
        sys.mount(None, dest, None, sc.MS_REMOUNT | sc.MS_RDONLY | _HARDENED, "mode=755")


def create_devices(sys: Syscalls, rootfs: str, devices: list[Device]) -> None:
    """mknod the default devices plus the spec's; spec entries win on the same path."""
    by_path = {d.path: d for d in DEFAULT_DEVICES}
    by_path.update({d.path: d for d in devices})
    for device in by_path.values():
        create_device(sys, rootfs, device)


def create_device(sys: Syscalls, rootfs: str, d: Device) -> None:
    dest = secure_join(sys, rootfs, d.path)
    sys.mkdir_all(os.path.dirname(dest), 0o755)
    mode = _DEVICE_TYPES[d.type] | (d.file_mode if d.file_mode is not None else 0o666)
    try:
        sys.mknod(dest, mode, os.makedev(d.major or 0, d.minor or 0))
        sys.chown(dest, d.uid or 0, d.gid or 0)
    except PermissionError:
        # No CAP_MKNOD (or a user namespace): bind the host's node instead.
        if sys.kind(dest) is None:
            sys.touch(dest)
        sys.mount(d.path, dest, "bind", sc.MS_BIND, None)


def create_dev_links(sys: Syscalls, rootfs: str) -> None:
    for target, link in _DEV_LINKS:
        path = os.path.join(rootfs, link.lstrip("/"))
        if sys.kind(path) is None and sys.readlink(path) is None:
            sys.symlink(target, path)


def pivot(sys: Syscalls, rootfs: str) -> None:
    """pivot_root(".", ".") stacks the old root on top of the new one; detach it.

    Making it a recursive slave first keeps the lazy unmount from propagating
    back to the host's mounts if any of them are shared.
    """
    sys.chdir(rootfs)
    sys.pivot_root(".", ".")
    sys.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
    sys.umount(".", sc.MNT_DETACH)
    sys.chdir("/")


def make_readonly(sys: Syscalls, path: str) -> None:
    if sys.kind(path) is None:
        return
    sys.mount(path, path, "bind", sc.MS_BIND | sc.MS_REC, None)
    sys.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _HARDENED, None)


def mask(sys: Syscalls, path: str) -> None:
    """Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory."""
    kind = sys.kind(path)
    if kind == "dir":
        sys.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
    elif kind == "file":
        sys.mount("/dev/null", path, "bind", sc.MS_BIND, None)
