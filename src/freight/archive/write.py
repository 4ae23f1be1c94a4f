"""Turn a directory into a layer tar, and compute a layer's diff id.

`write_layer_from_dir` is how a container's changes become an image layer
(commit, build): its input is usually an overlay upper dir, so overlay
whiteouts (char device 0:0) become `.wh.NAME` entries and opaque directories
get a `.wh..wh..opq` entry, right after the directory itself.

The tar is deterministic, so the same tree always has the same diff id:
entries in sorted depth-first order, names relative without "./", owner
names empty, PAX format, hard links by inode, xattrs as SCHILY.xattr.*
records in sorted order. Only file mtimes carry time.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from freight.archive import whiteouts
from freight.archive.compression import decompressed
from freight.oci.digest import CHUNK_SIZE, Digest, sha256_hasher


def write_layer_from_dir(
    src: Path,
    out: BinaryIO,
    exclude: Callable[[str, os.stat_result], bool] | None = None,
    max_mtime: int | None = None,
) -> None:
    """Write `src` (not including itself) as an uncompressed layer tar to `out`.

    `exclude(name, stat)` leaves an entry out (a directory's contents still go in).
    `max_mtime` clamps every entry's mtime (SOURCE_DATE_EPOCH: reproducible layers).
    """
    src = Path(src)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, path, st in _walk(src):
            if exclude is not None and exclude(name, st):
                continue
            if whiteouts.is_overlay_whiteout(st):
                parent, _, base = name.rpartition("/")
                marker = _marker(_join(parent, whiteouts.PREFIX + base), st)
                if max_mtime is not None:
                    marker.mtime = min(marker.mtime, max_mtime)
                tar.addfile(marker)
                continue
            info = _header(name, path, st, links)
            if max_mtime is not None:
                info.mtime = min(info.mtime, max_mtime)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if info.isdir() and whiteouts.is_overlay_opaque(path):
                marker = _marker(_join(name, whiteouts.OPAQUE), st)
                marker.mtime = info.mtime
                tar.addfile(marker)


def compute_diff_id(stream: BinaryIO) -> Digest:
    """The digest of the uncompressed layer (its DiffID), whatever its compression."""
    _, reader = decompressed(stream)
    hasher = sha256_hasher()
    while chunk := reader.read(CHUNK_SIZE):
        hasher.update(chunk)
    return Digest.from_hasher(hasher)


def _walk(root: Path, prefix: str = "") -> Iterator[tuple[str, Path, os.stat_result]]:
    """Depth-first, sorted by name; a directory comes before its contents."""
    for entry in sorted(os.scandir(root / prefix if prefix else root), key=lambda e: e.name):
        name = _join(prefix, entry.name)
        st = entry.stat(follow_symlinks=False)
        yield name, Path(entry.path), st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, name)


def _join(parent: str, base: str) -> str:
    return f"{parent}/{base}" if parent else base


def _header(
    name: str, path: Path, st: os.stat_result, links: dict[tuple[int, int], str]
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    info.pax_headers = _xattrs(path)
    mode = st.st_mode
    if stat.S_ISREG(mode) and st.st_nlink > 1:
        first = links.setdefault((st.st_dev, st.st_ino), name)
        if first != name:
            info.type, info.linkname = tarfile.LNKTYPE, first
            return info
    if stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        raise ValueError(f"{path}: sockets cannot be put in a layer")
    return info


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """An empty regular file standing for a whiteout or an opaque directory."""
    info = tarfile.TarInfo(name)
    info.mode = 0
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def _xattrs(path: Path) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    headers = {}
    for name in sorted(names):
        if name.startswith(whiteouts.OVERLAY_XATTR_PREFIX):
            continue
        value = os.getxattr(path, name, follow_symlinks=False)
        headers["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return headers
