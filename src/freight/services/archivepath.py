"""`cp` for containers: stat, read and write paths inside a container's root.

Which root:

- running: `/proc/<pid>/root` of the container's init. That directory fd
  sees the container's own mount tree — its volumes, binds and tmpfs at their
  mount points, read-only ones read-only — so paths resolve as they do for
  the container (docker resolves them against the container's mounts).
- stopped: the container's snapshot mounted for the call on a private
  directory under the exec root, with its volumes and binds bound on top, all
  unmounted afterwards. Callers hold the container's lock, so it cannot be
  started or removed meanwhile.

Paths are opened with openat2(RESOLVE_IN_ROOT) (`freight.archive.inroot`):
symlinks never lead out, also when the container changes files while we
work. The daemon never runs anything from the container to do this.

Docker's rules: the last component of a path to stat or read is not
followed (a symlink is reported as one, with its resolved `linkTarget`);
the destination of a write is followed and must be a directory; writes
into a read-only mount or a read-only rootfs are refused with moby's words.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from freight.archive import inroot
from freight.archive.inroot import OwnerMap
from freight.errors import InvalidArgument, NotFound
from freight.linux import syscalls
from freight.linux.openat2 import openat2
from freight.services import mounting
from freight.services.model import Container
from freight.services.usergroup import resolve_user
from freight.services.userns import container_map, to_container_owner, to_host_owner

MAX_LINKS = 40

# Go's os.FileMode bits (docker's clients decode `mode` with them).
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHARDEV = 1 << 21
GO_STICKY = 1 << 20


@dataclass(frozen=True)
class PathStat:
    name: str
    size: int
    mode: int  # Go's os.FileMode
    mtime: str  # RFC 3339 with nanoseconds
    link_target: str

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & GO_DIR)


def go_file_mode(st_mode: int) -> int:
    mode = stat.S_IMODE(st_mode) & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {
        stat.S_IFDIR: GO_DIR,
        stat.S_IFLNK: GO_SYMLINK,
        stat.S_IFIFO: GO_PIPE,
        stat.S_IFSOCK: GO_SOCKET,
        stat.S_IFBLK: GO_DEVICE,
        stat.S_IFCHR: GO_DEVICE | GO_CHARDEV,
    }.get(kind, 0)
    if st_mode & stat.S_ISUID:
        mode |= GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_STICKY
    return mode


def _rfc3339_nano(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        text += "." + f"{rest:09d}".rstrip("0")
    return text + "Z"


def go_base(path: str) -> str:
    """filepath.Base: "/a/b/" → "b", "/a/b/." → ".", "/" → "/"."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def absolute(path: str) -> str:
    """The path as an absolute container path, keeping a trailing "/" or "/."."""
    clean = posixpath.normpath("/" + path)
    if clean == "/":
        return "/"
    if path.endswith("/.") or path == ".":
        return clean + "/."
    if path.endswith("/"):
        return clean + "/"
    return clean


class ContainerRoot:
    """A directory fd on a container's root for one operation (context manager)."""

    def __init__(self, c: Container, rootfs_mounts: list, scratch: Path) -> None:
        self.c = c
        self._rootfs_mounts = rootfs_mounts
        self._scratch = scratch
        self._mounted: list[Path] = []
        self.fd = -1
        # Set on the live rootfs of a remapped container: its files carry host ids
        # (seen through idmapped layers), archives carry the container's own.
        self.to_disk: OwnerMap | None = None
        self.from_disk: OwnerMap | None = None

    def __enter__(self) -> ContainerRoot:
        if self.c.state.running and self.c.state.pid:
            self.fd = os.open(f"/proc/{self.c.state.pid}/root", os.O_PATH | os.O_DIRECTORY)
            if (m := container_map(self.c.host.extra)) is not None:
                self.to_disk, self.from_disk = to_host_owner(m), to_container_owner(m)
            return self
        target = self._scratch / secrets.token_hex(8)
        target.mkdir(parents=True)
        try:
            mounting.mount_all(self._rootfs_mounts, target)
            self._mounted.append(target)
            self.fd = os.open(target, os.O_PATH | os.O_DIRECTORY)
            self._bind_volumes()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _bind_volumes(self) -> None:
        """The stopped container's volumes and binds at their mount points, parents first."""
        for mp in sorted(self.c.mounts, key=lambda m: m.destination.count("/")):
            if mp.type == "tmpfs" or not mp.source or not os.path.isdir(mp.source):
                continue
            try:
                dest = openat2(self.fd, mp.destination.lstrip("/"), os.O_PATH | os.O_DIRECTORY)
            except OSError:
                continue  # not there yet: the first start creates it
            try:
                where = f"/proc/self/fd/{dest}"
                syscalls.mount(mp.source, where, None, syscalls.MS_BIND | syscalls.MS_REC, None)
                real = Path(os.readlink(where))
                self._mounted.append(real)
                if not mp.rw:
                    syscalls.mount(
                        None,
                        str(real),
                        None,
                        syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY,
                        None,
                    )
            finally:
                os.close(dest)

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for path in reversed(self._mounted):
            with contextlib.suppress(OSError):
                syscalls.umount(str(path), syscalls.MNT_DETACH)
        if self._mounted:
            with contextlib.suppress(OSError):
                self._mounted[0].rmdir()
        self._mounted.clear()


def _not_found(path: str, ref: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {ref}")


def resolve_link(root_fd: int, path: str) -> str:
    """Where `path` leads inside the root (for `linkTarget` and moby's checks)."""
    return inroot.resolve(root_fd, path, MAX_LINKS)


def stat_path(root: ContainerRoot, path: str, ref: str) -> PathStat:
    """Docker's ContainerStatPath: lstat of the last component, parents resolved."""
    abs_path = absolute(path)
    parent, base = _split_last(abs_path)
    try:
        dfd = inroot.open_dir(root.fd, parent)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, ref) from None
    try:
        st = os.stat(base or ".", dir_fd=dfd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, ref) from None
    finally:
        os.close(dfd)
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = resolve_link(root.fd, posixpath.join(parent, base))
    return PathStat(
        go_base(abs_path), st.st_size, go_file_mode(st.st_mode), _rfc3339_nano(st.st_mtime_ns), link
    )


def _split_last(abs_path: str) -> tuple[str, str]:
    """("/a", "b") for "/a/b"; a trailing "/" or "/." puts everything in the parent."""
    if abs_path.endswith("/.") or abs_path.endswith("/") or abs_path == "/":
        return abs_path.rstrip(".").rstrip("/") or "/", ""
    return posixpath.split(abs_path)


def archive_path(root: ContainerRoot, path: str, ref: str, out: BinaryIO) -> None:
    """Write the tar docker's GET /archive gives for `path` to `out` (stat first)."""
    abs_path = absolute(path)
    parent, base = _split_last(abs_path)
    rebase = go_base(abs_path)
    source = posixpath.join(parent, base) if base else parent
    if abs_path.endswith("/."):
        source, rebase = parent + "/.", "."
    # A trailing "/" follows a symlink at the end, as docker's resolution does.
    inroot.pack(out, root.fd, source, rebase, follow=not base, owner=root.from_disk)


def glob(root: ContainerRoot, pattern: str) -> list[str]:
    """Container paths matching `pattern` (fnmatch per component, as a shell's glob)."""
    import fnmatch

    matches = ["/"]
    for part in [p for p in pattern.split("/") if p not in ("", ".")]:
        found = []
        for base in matches:
            if not set("*?[") & set(part):
                candidate = posixpath.join(base, part)
                try:
                    os.close(openat2(root.fd, candidate.lstrip("/") or ".", os.O_PATH))
                except OSError:
                    continue
                found.append(candidate)
                continue
            try:
                dfd = inroot.open_dir(root.fd, base)
            except OSError:
                continue
            try:
                names = sorted(e.name for e in os.scandir(dfd))
            finally:
                os.close(dfd)
            hidden_ok = part.startswith(".")
            found += [
                posixpath.join(base, n)
                for n in names
                if fnmatch.fnmatchcase(n, part) and (hidden_ok or not n.startswith("."))
            ]
        matches = found
    return matches


def check_writable(c: Container, container_path: str) -> None:
    """moby's checks before extracting: read-only volume, or read-only rootfs."""
    in_volume = False
    for mp in sorted(c.mounts, key=lambda m: len(m.destination), reverse=True):
        dest = mp.destination.rstrip("/") or "/"
        if container_path == dest or container_path.startswith(dest + "/"):
            if not mp.rw:
                raise InvalidArgument("mounted volume is marked read-only")
            in_volume = True
            break
    if not in_volume and c.host.readonly_rootfs:
        raise InvalidArgument("container rootfs is marked read-only")


def extract_to(
    root: ContainerRoot,
    path: str,
    ref: str,
    stream: BinaryIO,
    no_overwrite_dir_non_dir: bool = False,
    copy_uid_gid: bool = False,
    rootfs_path: Path | None = None,
) -> None:
    """Docker's ContainerExtractToDir: `path` (followed) must be a directory."""
    abs_path = absolute(path)
    try:
        fd = openat2(root.fd, abs_path.lstrip("/") or ".", os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, ref) from None
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise InvalidArgument("extraction point is not a directory")
    finally:
        os.close(fd)
    resolved = resolve_link(root.fd, abs_path)
    check_writable(root.c, resolved)
    chown = None
    if copy_uid_gid:
        user = resolve_user(Path(f"/proc/self/fd/{root.fd}"), root.c.config.user)
        chown = (user.uid, user.gid)
    try:
        inroot.extract(
            stream,
            root.fd,
            resolved,
            inroot.ExtractOptions(
                no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, chown=chown, owner=root.to_disk
            ),
        )
    except OSError as e:
        if e.errno == 30:  # EROFS: a read-only mount the records did not know of
            raise InvalidArgument("mounted volume is marked read-only") from None
        raise InvalidArgument(f"{e.strerror or e}: {e.filename or path}") from None
