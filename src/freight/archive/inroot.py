"""Tar in and out of a directory tree that someone else controls (a container's root).

Every path is opened with openat2(RESOLVE_IN_ROOT) from a dirfd on the root,
and every change is made with *at() calls on a directory fd, naming only the
last component and never following it (O_NOFOLLOW, O_EXCL). So a symlink in
the tree — also one the container swaps in while we work — resolves inside
the root, as it would for the container, and nothing is written or read
outside it. This is what `cp` uses, in both directions; on the host side the
root is the destination directory, which confines a hostile archive the same
way.

    pack(out, root_fd, "/var/log", rebase="log")        # GET /containers/{id}/archive
    extract(stream, root_fd, "/tmp", ExtractOptions())  # PUT /containers/{id}/archive

Names in archives follow docker's cp: the tree at `path` is stored under
`rebase` ("log", "log/a.txt"...); "." stores the contents only ("./a.txt").
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from freight import errors
from freight.archive import compression, confine
from freight.linux.openat2 import openat2

# (uid, gid) -> (uid, gid): how ids cross a user namespace's map, one way or the other.
OwnerMap = Callable[[int, int], tuple[int, int]]

COPY_BUFFER = 1 << 20
MAX_EXTRACT_SIZE = 64 << 30  # uncompressed; Bounded also stops decompression bombs
MAX_EXTRACT_ENTRIES = 1 << 20
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY


def open_dir(root_fd: int, path: str) -> int:
    """A directory fd for container path `path` (symlinks resolved in the root)."""
    return openat2(root_fd, path.lstrip("/") or ".", _DIR_FLAGS)


# packing ---------------------------------------------------------------------


def pack(
    out: BinaryIO,
    root_fd: int,
    path: str,
    rebase: str,
    follow: bool = False,
    owner: OwnerMap | None = None,
) -> None:
    """Write a tar of `path` (inside `root_fd`) to `out`, entries named under `rebase`.

    The last component of `path` is not followed unless `follow` (a symlink is
    archived as a symlink, as docker does without -L). `owner` turns the ids on
    disk into the ids the archive says (a user namespace's host ids back to its own).
    """
    parent, base = _split(path)
    pfd = open_dir(root_fd, parent)
    try:
        with tarfile.open(
            fileobj=out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            bufsize=COPY_BUFFER,  # the stream's block size (10 KiB by default)
            copybufsize=COPY_BUFFER,
        ) as tar:
            if base in ("", "."):
                fd = os.open(".", _DIR_FLAGS, dir_fd=pfd)
                try:
                    _pack_dir_fd(tar, fd, rebase, owner)
                finally:
                    os.close(fd)
            else:
                _pack_entry(tar, pfd, base, rebase, follow, owner)
    finally:
        os.close(pfd)


def _split(path: str) -> tuple[str, str]:
    clean = posixpath.normpath("/" + path)
    if path.endswith("/.") or path == ".":
        return clean, "."
    if clean == "/":
        return "/", ""
    return posixpath.split(clean)


def _tarinfo(name: str, st: os.stat_result, owner: OwnerMap | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = owner(st.st_uid, st.st_gid) if owner else (st.st_uid, st.st_gid)
    info.mtime = st.st_mtime
    info.uname = info.gname = ""
    return info


def _pack_entry(
    tar: tarfile.TarFile, dfd: int, name: str, arcname: str, follow: bool, owner: OwnerMap | None
) -> None:
    st = os.stat(name, dir_fd=dfd, follow_symlinks=follow)
    if stat.S_ISDIR(st.st_mode):
        flags = _DIR_FLAGS | (0 if follow else os.O_NOFOLLOW)
        fd = os.open(name, flags, dir_fd=dfd)
        try:
            _pack_dir_fd(tar, fd, arcname, owner)
        finally:
            os.close(fd)
        return
    info = _tarinfo(arcname, st, owner)
    if stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | (0 if follow else os.O_NOFOLLOW), dir_fd=dfd)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            info.type = tarfile.REGTYPE
            tar.addfile(info, f)
        return
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dfd)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    else:
        return  # sockets are not archived (as tar)
    tar.addfile(info)


def _pack_dir_fd(tar: tarfile.TarFile, fd: int, arcname: str, owner: OwnerMap | None) -> None:
    info = _tarinfo(arcname, os.fstat(fd), owner)
    info.type = tarfile.DIRTYPE
    tar.addfile(info)
    for entry in sorted(os.scandir(fd), key=lambda e: e.name):
        child = entry.name if arcname in ("", ".") else f"{arcname.rstrip('/')}/{entry.name}"
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            _pack_entry(tar, fd, entry.name, child, False, owner)


# extracting ------------------------------------------------------------------


# An entry that can't be placed where it says (its parent is a dangling or looping
# symlink, a file, an empty link target): the archive is at fault, a 400.
_ENTRY_ERRNOS = frozenset(
    {errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EINVAL,
     errno.ENAMETOOLONG, errno.ENOTEMPTY, errno.EXDEV, errno.EPERM}
)  # fmt: skip


@dataclass(frozen=True)
class ExtractOptions:
    no_overwrite_dir_non_dir: bool = False
    chown: tuple[int, int] | None = None  # every entry to this uid/gid (copyUIDGID)
    same_owner: bool = True  # apply the archive's uid/gid (we are root)
    rename: tuple[str, str] | None = None  # top-level name (old, new); old "." = contents
    owner: OwnerMap | None = None  # the archive's ids to the ids written (a user namespace's)


def renamed(relative: str, rename: tuple[str, str] | None) -> str:
    """docker cp's rebase: the entry `old[/rest]` becomes `new[/rest]`."""
    if rename is None:
        return relative
    old, new = rename
    if old in (".", ""):
        return f"{new}/{relative}"
    if relative == old:
        return new
    if relative.startswith(old + "/"):
        return new + relative[len(old) :]
    return relative


def extract(stream: BinaryIO, root_fd: int, dest: str, opts: ExtractOptions) -> int:
    """Extract a tar (plain or compressed) into container directory `dest`; entry count.

    Entry names are confined to `dest`; symlinks met on the way resolve
    inside the root. Raises InvalidArgument for a malformed archive, with
    Go's words, since docker's clients show them.
    """
    count = 0
    dir_times: list[tuple[str, int, int]] = []
    corrupt = compression.decompression_errors()
    try:
        plain = compression.Bounded(stream, "archive", MAX_EXTRACT_SIZE)
        tar = tarfile.open(  # noqa: SIM115 - closed by `with tar` below
            fileobj=plain, mode="r|", bufsize=COPY_BUFFER, copybufsize=COPY_BUFFER
        )
    except tarfile.ReadError as e:
        if "empty" in str(e):
            return 0  # as Go's archive/tar: an empty stream is an empty archive
        raise errors.InvalidArgument("archive/tar: invalid tar header") from None
    except (tarfile.CompressionError, EOFError, OSError, *corrupt) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise
        raise errors.InvalidArgument(f"unexpected EOF: {e}") from None
    with tar:
        try:
            while (member := tar.next()) is not None:
                tar.members.clear()  # tarfile would keep every header in memory
                count += 1
                if count > MAX_EXTRACT_ENTRIES:
                    raise errors.InvalidArgument(
                        f"archive has more than {MAX_EXTRACT_ENTRIES} entries"
                    )
                relative = confine.clean_name(member.name, member.name)
                if relative is None:
                    if opts.rename is None or opts.rename[0] not in (".", ""):
                        continue  # the destination itself ("./")
                    relative = opts.rename[1]
                else:
                    relative = renamed(relative, opts.rename)
                if member.islnk() and opts.rename is not None:
                    member.linkname = renamed(
                        confine.clean_name(member.linkname, member.name) or ".", opts.rename
                    )
                path = posixpath.join(dest, relative)
                try:
                    _extract_member(tar, member, root_fd, dest, path, opts)
                except OSError as e:
                    if e.errno not in _ENTRY_ERRNOS:
                        raise  # EROFS, ENOSPC, ...: the destination's trouble, not the archive's
                    raise errors.InvalidArgument(
                        f"cannot extract {member.name!r}: {e.strerror}"
                    ) from None
                if member.isdir():
                    dir_times.append((path, member.mtime, member.mode))
        except tarfile.ReadError:
            raise errors.InvalidArgument("archive/tar: invalid tar header") from None
        except (EOFError, tarfile.StreamError, *corrupt):
            raise errors.InvalidArgument("unexpected EOF") from None
        except OSError as e:
            if e.errno is not None:
                raise
            raise errors.InvalidArgument(f"unexpected EOF: {e}") from None  # bz2's bare OSError
    for path, mtime, _mode in reversed(dir_times):
        with contextlib.suppress(OSError):
            fd = open_dir(root_fd, path)
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
    return count


def resolve(root_fd: int, path: str, max_links: int = 40) -> str:
    """The container path `path` leads to, every symlink followed inside the root.

    Each component is looked at from a directory fd opened in the root, so
    the walk never touches anything outside it. Missing components are kept
    as they are (the path may be about to be created).
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        try:
            dfd = openat2(root_fd, "/".join(resolved) or ".", os.O_PATH | os.O_DIRECTORY)
        except OSError:
            resolved.append(name)
            continue
        try:
            target = os.readlink(name, dir_fd=dfd)
        except OSError:
            resolved.append(name)
            continue
        finally:
            os.close(dfd)
        links += 1
        if links > max_links:
            raise errors.InvalidArgument(f"too many levels of symbolic links: {path}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return "/" + "/".join(resolved)


def _parent_fd(root_fd: int, path: str) -> int:
    """The fd of `path`'s parent directory, creating missing directories (0755) —
    also where a symlink on the way points at something that does not exist yet:
    that is created inside the root, where the link leads for the container."""
    parent = posixpath.dirname(path)
    try:
        return open_dir(root_fd, parent)
    except FileNotFoundError:
        pass
    current = openat2(root_fd, ".", _DIR_FLAGS)
    try:
        for part in [p for p in resolve(root_fd, parent).split("/") if p]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=current)
            nxt = openat2(current, part, _DIR_FLAGS)
            os.close(current)
            current = nxt
    except BaseException:
        os.close(current)
        raise
    os.close(current)
    return open_dir(root_fd, parent)


def _extract_member(
    tar: tarfile.TarFile,
    m: tarfile.TarInfo,
    root_fd: int,
    dest: str,
    path: str,
    opts: ExtractOptions,
) -> None:
    name = posixpath.basename(path)
    try:
        pfd = _parent_fd(root_fd, path)
    except NotADirectoryError:
        raise errors.InvalidArgument(
            f"cannot extract {m.name!r}: a parent is not a directory"
        ) from None
    try:
        existing = _lstat(pfd, name)
        dir_stays = existing is not None and stat.S_ISDIR(existing.st_mode) and m.isdir()
        if existing is not None:
            is_dir = stat.S_ISDIR(existing.st_mode)
            if opts.no_overwrite_dir_non_dir and is_dir and not m.isdir():
                raise errors.InvalidArgument(
                    f"cannot overwrite directory {path!r} with non-directory {m.name!r}"
                )
            if opts.no_overwrite_dir_non_dir and not is_dir and m.isdir():
                raise errors.InvalidArgument(
                    f"cannot overwrite non-directory {path!r} with directory {m.name!r}"
                )
            if not (is_dir and m.isdir()):
                _remove(pfd, name, is_dir)
        _create(tar, m, root_fd, dest, pfd, name, dir_stays)
        _set_metadata(m, pfd, name, opts)
    finally:
        os.close(pfd)


def _lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(dfd: int, name: str, is_dir: bool) -> None:
    if is_dir:
        shutil.rmtree(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)


def _create(
    tar: tarfile.TarFile,
    m: tarfile.TarInfo,
    root_fd: int,
    dest: str,
    pfd: int,
    name: str,
    dir_exists: bool,
) -> None:
    if m.isdir():
        if not dir_exists:
            os.mkdir(name, 0o700, dir_fd=pfd)
    elif m.isreg():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=pfd)
        with os.fdopen(fd, "wb") as out:
            src = tar.extractfile(m)
            if src is not None:
                shutil.copyfileobj(src, out, COPY_BUFFER)
    elif m.issym():
        os.symlink(m.linkname, name, dir_fd=pfd)
    elif m.islnk():
        target = confine.clean_name(m.linkname, m.name)
        if target is None:
            raise errors.InvalidArgument(f"invalid hard link {m.name!r} -> {m.linkname!r}")
        target_path = posixpath.join(dest, target)
        try:
            lfd = open_dir(root_fd, posixpath.dirname(target_path))
            try:
                os.link(
                    posixpath.basename(target_path),
                    name,
                    src_dir_fd=lfd,
                    dst_dir_fd=pfd,
                    follow_symlinks=False,
                )
            finally:
                os.close(lfd)
        except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError) as e:
            # The archive names a link target that is missing or not a file: its fault.
            raise errors.InvalidArgument(
                f"invalid hard link {m.name!r} -> {m.linkname!r}: {e.strerror}"
            ) from None
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
    else:
        raise errors.InvalidArgument(f"unhandled tar header type {m.type!r} for {m.name!r}")


def _set_metadata(m: tarfile.TarInfo, pfd: int, name: str, opts: ExtractOptions) -> None:
    if m.islnk():
        return  # the link shares the target's inode: nothing of its own
    uid, gid = opts.chown if opts.chown is not None else (m.uid, m.gid)
    if opts.owner is not None:
        uid, gid = opts.owner(uid, gid)
    if opts.chown is not None or opts.same_owner:
        with contextlib.suppress(PermissionError):
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)
    if m.issym():
        with contextlib.suppress(OSError):
            os.utime(name, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
        return
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=pfd)
    try:
        # chmod through /proc/self/fd works on an O_PATH fd (fchmod does not),
        # and the fd pins the very inode we created.
        os.chmod(f"/proc/self/fd/{fd}", m.mode & 0o7777)
        for key, value in (m.pax_headers or {}).items():
            if key.startswith(_XATTR_PAX_PREFIX) and not key.startswith(
                _XATTR_PAX_PREFIX + "trusted.overlay."
            ):
                with contextlib.suppress(OSError):
                    os.setxattr(
                        f"/proc/self/fd/{fd}",
                        key[len(_XATTR_PAX_PREFIX) :],
                        value.encode("utf-8", "surrogateescape"),
                    )
        if not m.isdir():
            os.utime(f"/proc/self/fd/{fd}", (m.mtime, m.mtime))
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
