"""Apply a layer tar to a directory: hostile-input code.

A layer comes from the network. Nothing in it may write outside the target:
names are cleaned and confined (see `confine`), symlinks are resolved inside
the target, hard links must name a file the target already has, device nodes
are made only when privileged, overlay xattrs in the archive are dropped, and
entry count and size are bounded. A truncated or corrupt archive raises
InvalidArgument; the target is then half-written, so callers extract into a
fresh snapshot and remove it on failure.

Whiteouts (see `whiteouts`) are either written the overlay way, when the
target is the upper dir of a new snapshot ("overlay"), or carried out, when
layers are flattened into one plain directory ("delete"); an archive that is
not a layer (a build context) has none: its `.wh.*` entries are files ("plain").
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Literal

from freight import errors
from freight.archive import confine
from freight.archive.compression import (
    Compression,
    Counting,
    Readable,
    decompressed,
    decompression_errors,
)
from freight.archive.whiteouts import OPAQUE, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, PREFIX
from freight.oci.digest import CHUNK_SIZE, Digest, sha256_hasher

WhiteoutMode = Literal["overlay", "delete", "plain"]

DEFAULT_MAX_ENTRIES = 1 << 20
DEFAULT_MAX_SIZE = 64 << 30  # uncompressed bytes; stops decompression bombs
# A compressed layer may not expand more than this many times once past
# RATIO_GRACE: gzip cannot exceed ~1030:1 even on zeros, so only a crafted
# zstd/xz/bzip2 stream (a bomb) gets there with real sizes.
MAX_RATIO = 2000
RATIO_GRACE = 256 << 20

_XATTR_PAX_PREFIX = "SCHILY.xattr."
# Failing to set these is not fatal: the filesystem may not support xattrs
# (ENOTSUP) or the namespace may need a privilege we lack (EPERM).
_IGNORED_XATTR_ERRORS = (errno.ENOTSUP, errno.EPERM)
# Errors that mean the entry itself is bad, not that the disk or host failed.
_ENTRY_ERRORS = (
    errno.ENAMETOOLONG,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ELOOP,
    errno.EMLINK,
    errno.EEXIST,
    errno.EINVAL,
)


class _LimitExceeded(Exception):
    pass


class _Corrupt(Exception):
    """A tar header is cut short or garbled (tarfile would silently stop)."""


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends iteration quietly on a truncated or invalid header after the
    first; Go's archive/tar (and so Docker) reports it. Raise instead."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        try:
            return super().frombuf(buf, encoding, errors)
        except (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as e:
            raise _Corrupt(str(e)) from None


class _Source:
    """The decompressed tar stream: hashed (diff id), counted, bounded."""

    def __init__(self, reader: Readable, max_size: int, compressed: Counting | None = None):
        self._reader = reader
        self._max_size = max_size
        self._compressed = compressed
        self._corrupt = decompression_errors()
        self.hasher = sha256_hasher()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        try:
            data = self._reader.read(size)
        except self._corrupt as e:
            raise _Corrupt(f"{type(e).__name__}: {e}") from None
        except OSError as e:
            if e.errno is not None:
                raise  # a real I/O error of the stream or the disk
            # bz2 reports a corrupt stream as a bare OSError("Invalid data stream").
            raise _Corrupt(f"{type(e).__name__}: {e}") from None
        self.size += len(data)
        if self.size > self._max_size:
            raise _LimitExceeded(f"layer is larger than {self._max_size} bytes uncompressed")
        c = self._compressed
        if c is not None and self.size > RATIO_GRACE and self.size > c.count * MAX_RATIO:
            raise _LimitExceeded(
                f"layer expands more than {MAX_RATIO} times ({c.count} compressed bytes "
                f"gave {self.size}): refused as a decompression bomb"
            )
        self.hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK_SIZE):
            pass


def apply_layer(
    stream: BinaryIO,
    target: Path,
    *,
    whiteouts: WhiteoutMode = "overlay",
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_size: int = DEFAULT_MAX_SIZE,
    privileged: bool | None = None,
    expected_diff_id: Digest | None = None,
) -> int:
    """Extract the layer in `stream` (any compression) into `target`.

    Returns the size of the uncompressed tar. `privileged` (default: running
    as root) allows device nodes and ownership changes; without it device
    nodes are skipped, as rootless Docker does. With `expected_diff_id`, the
    uncompressed digest is checked after extraction (InvalidArgument if it
    differs, and the target must then be discarded).
    """
    if privileged is None:
        privileged = os.geteuid() == 0
    counted = Counting(stream)
    kind, reader = decompressed(counted)
    source = _Source(reader, max_size, None if kind is Compression.PLAIN else counted)
    extractor = _Extractor(Path(target), whiteouts, privileged, max_entries)
    try:
        extractor.run(source)
        source.drain()  # the rest (tar padding, gzip trailer) is hashed and checked too
    except (_Corrupt, tarfile.TarError) as e:
        raise errors.InvalidArgument(
            f"layer archive is truncated or corrupt (after entry {extractor.last!r}): {e}"
        ) from None
    except _LimitExceeded as e:
        raise errors.InvalidArgument(f"layer entry {extractor.last!r}: {e}") from None
    diff_id = Digest.from_hasher(source.hasher)
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise errors.InvalidArgument(f"layer diff id is {diff_id}, expected {expected_diff_id}")
    return source.size


class _Extractor:
    def __init__(self, target: Path, mode: WhiteoutMode, privileged: bool, max_entries: int):
        if mode not in ("overlay", "delete", "plain"):
            raise errors.InvalidArgument(f"unknown whiteout mode {mode!r}")
        self.root = Path(os.path.realpath(target))
        self.mode = mode
        self.privileged = privileged
        self.max_entries = max_entries
        self.last = ""
        self._count = 0
        self._dir_times: list[tuple[Path, int]] = []
        # Paths this layer created: an opaque marker in "delete" mode keeps them.
        self._created: set[Path] = set()

    def run(self, source: _Source) -> None:
        # Stream mode: one pass, no seeking, constant memory.
        with tarfile.open(fileobj=source, mode="r|", tarinfo=_StrictTarInfo) as tar:  # type: ignore[call-overload]
            while (member := tar.next()) is not None:
                tar.members.clear()  # tarfile would keep every header in memory
                self.last = member.name
                self._count += 1
                if self._count > self.max_entries:
                    raise errors.InvalidArgument(
                        f"layer entry {member.name!r}: layer has more than {self.max_entries} entries"
                    )
                self._entry(tar, member)
        # Directory times last: writing their children changed them.
        for path, mtime_ns in reversed(self._dir_times):
            self._set_dir_time(path, mtime_ns)

    def _set_dir_time(self, path: Path, mtime_ns: int) -> None:
        """utime a directory made earlier, if it still is one.

        A later entry may have replaced a parent with a symlink (even one to a host
        path): the parent is resolved inside the root again, never followed as is.
        """
        rel = path.relative_to(self.root)
        parent = confine.resolve(self.root, str(rel.parent), str(rel))
        final = parent / rel.name
        try:
            if not stat.S_ISDIR(os.lstat(final).st_mode):
                return
            os.utime(final, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return  # replaced or whited out later

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = confine.clean_name(member.name, member.name)
        if name is None:
            return  # the root itself: the snapshot's own directory keeps its attributes
        parent_name, base = posixpath.split(name)
        if base.startswith(PREFIX) and self.mode != "plain":
            self._whiteout(member, parent_name, base)
            return
        parent = confine.make_parents(self.root, parent_name, member.name)
        path = parent / base
        self._make_room(path, member)
        try:
            created = self._create(tar, member, path)
        except OSError as e:
            if e.errno not in _ENTRY_ERRORS:
                raise
            raise errors.InvalidArgument(f"layer entry {member.name!r}: {e.strerror}") from None
        if created:
            self._created.add(path)
            if not member.islnk():
                self._set_metadata(path, member)

    # --- creating entries ----------------------------------------------------

    def _make_room(self, path: Path, member: tarfile.TarInfo) -> None:
        """Remove what is in the way, except a directory that stays a directory."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not member.isdir():
                shutil.rmtree(path)
        else:
            os.unlink(path)

    def _create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> bool:
        if member.isreg():
            self._write_file(tar, member, path)
        elif member.isdir():
            if not path.is_dir():
                os.mkdir(path, 0o700)
        elif member.issym():
            if not member.linkname:  # the kernel refuses it (ENOENT); say why
                raise errors.InvalidArgument(f"symlink {member.name!r} has an empty target")
            os.symlink(member.linkname, path)
        elif member.islnk():
            os.link(self._hardlink_source(member), path, follow_symlinks=False)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        elif member.ischr() or member.isblk():
            if not self.privileged:
                return False
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        else:
            raise errors.InvalidArgument(
                f"layer entry {member.name!r}: unsupported tar entry type {member.type!r}"
            )
        return True

    def _write_file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        data = tar.extractfile(member)
        assert data is not None  # regular files always have a reader
        with os.fdopen(os.open(path, flags, 0o600), "wb") as out:
            written = 0
            while chunk := data.read(CHUNK_SIZE):
                out.write(chunk)
                written += len(chunk)
        if written != member.size:
            raise _Corrupt(f"entry {member.name!r} holds {written} of {member.size} bytes")

    def _hardlink_source(self, member: tarfile.TarInfo) -> Path:
        link = confine.clean_name(member.linkname, member.name)
        if link is None:
            raise errors.InvalidArgument(f"layer entry {member.name!r}: hard link to the root")
        parent_name, base = posixpath.split(link)
        source = confine.resolve(self.root, parent_name, member.name) / base
        if not os.path.lexists(source) or stat.S_ISDIR(os.lstat(source).st_mode):
            raise errors.InvalidArgument(
                f"layer entry {member.name!r}: hard link target {member.linkname!r} "
                "is not a file in the layer"
            )
        return source

    def _set_metadata(self, path: Path, member: tarfile.TarInfo) -> None:
        # Order matters: chown clears setuid bits and security.capability, so
        # mode and xattrs come after it.
        if self.privileged:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():  # Linux has no symlink modes
            os.chmod(path, stat.S_IMODE(member.mode))
        self._set_xattrs(path, member)
        mtime_ns = int(member.mtime * 1_000_000_000)
        if member.isdir():
            self._dir_times.append((path, mtime_ns))
        else:
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)

    def _set_xattrs(self, path: Path, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX_PREFIX):
                continue
            name = key.removeprefix(_XATTR_PAX_PREFIX)
            if name.startswith(OVERLAY_XATTR_PREFIX):
                continue
            raw = value.encode("utf-8", "surrogateescape")
            try:
                os.setxattr(path, name, raw, follow_symlinks=False)
            except OSError as e:
                if e.errno not in _IGNORED_XATTR_ERRORS:
                    raise

    # --- whiteouts -------------------------------------------------------------

    def _whiteout(self, member: tarfile.TarInfo, parent_name: str, base: str) -> None:
        parent = confine.make_parents(self.root, parent_name, member.name)
        if base == OPAQUE:
            self._opaque(parent)
            return
        hidden = base.removeprefix(PREFIX)
        if hidden in ("", ".", "..") or hidden.startswith(PREFIX):
            raise errors.InvalidArgument(f"layer entry {member.name!r}: invalid whiteout")
        path = parent / hidden
        if os.path.lexists(path):
            self._remove(path)
        if self.mode == "overlay":
            self._mknod_whiteout(path, member)

    def _opaque(self, directory: Path) -> None:
        if self.mode == "overlay":
            os.setxattr(directory, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        for child in list(directory.iterdir()):
            if child not in self._created:
                self._remove(child)

    def _mknod_whiteout(self, path: Path, member: tarfile.TarInfo) -> None:
        try:
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        except PermissionError:
            raise errors.PermissionDenied(
                f"layer entry {member.name!r}: creating an overlay whiteout needs CAP_MKNOD"
            ) from None

    @staticmethod
    def _remove(path: Path) -> None:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
