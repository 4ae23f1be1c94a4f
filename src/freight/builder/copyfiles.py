"""COPY and ADD: which files a step copies, their digest for the cache, the copy itself.

Sources are resolved inside their root (the context, or a stage's rootfs)
with `archive.inroot.resolve` (symlinks followed *inside* the root), so
`../x`, an absolute path or a symlink pointing out never reads the host;
destinations are resolved inside the step's rootfs the same way, so a
symlink in the image never redirects a write. Docker's rules:

    COPY a.txt /d/      -> /d/a.txt          COPY dir /d  -> dir's contents in /d
    COPY a b /d/        -> both in /d/       (several sources: dest must end with /)
    COPY *.txt /d/      -> globs per path component
    ADD x.tar.gz /d/    -> extracted (local archives only); ADD URL -> downloaded

The cache digest covers paths, types, modes, owners, sizes, link targets and
contents, not mtimes (as BuildKit); `StatCache` remembers content digests by
(dev, inode, size, mtime, ctime) so an unchanged context is not re-read.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from freight.archive import inroot
from freight.archive.compression import Compression, detect
from freight.errors import InvalidArgument, NotFound

MULTI_SOURCE_ERROR = (
    "When using COPY with more than one source file, the destination must be a directory "
    "and end with a /"
)


@dataclass(frozen=True)
class CopyOptions:
    chown: tuple[int, int] | None = None
    chmod: int | None = None
    expand_archives: bool = False  # ADD
    exclude: tuple[str, ...] = ()
    parents: bool = False
    checksum: str | None = None
    keep_git_dir: bool = False


class StatCache:
    """Content digests of files by their stat identity, kept across builds in a file."""

    def __init__(self, entries: dict[str, list] | None = None) -> None:
        self.entries: dict[str, list] = entries or {}

    @classmethod
    def load(cls, path: Path) -> StatCache:
        try:
            data = json.loads(path.read_text())
            return cls(data if isinstance(data, dict) else {})
        except (OSError, ValueError):
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, separators=(",", ":")))
        os.replace(tmp, path)

    def digest(self, path: str, st: os.stat_result) -> str:
        ident = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = self.entries.get(path)
        if known and known[:5] == ident:
            return known[5]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        value = h.hexdigest()
        self.entries[path] = [*ident, value]
        return value


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


# matching sources ---------------------------------------------------------------------


def _resolve_in(root: Path, path: str) -> Path:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return root / inroot.resolve(fd, "/" + path.lstrip("/")).lstrip("/")
    finally:
        os.close(fd)


def match_sources(root: Path, sources: list[str]) -> list[tuple[str, Path]]:
    """(source as written, resolved host path) for each match, in order."""
    found: list[tuple[str, Path]] = []
    for source in sources:
        if _is_url(source):
            continue
        if ".." in posixpath.normpath(source).split("/"):
            raise InvalidArgument(f"{source}: outside of the build context")
        clean = posixpath.normpath("/" + source)
        if any(c in clean for c in "*?["):
            matches = sorted(_glob(root, clean))
            if not matches:
                raise NotFound(f"no source files were specified or matched {source!r}")
            found += [(m, _resolve_in(root, m)) for m in matches]
            continue
        path = _resolve_in(root, clean)
        if not os.path.lexists(path):
            raise NotFound(f'"{clean}": not found in the build context')
        found.append((clean, path))
    return found


def _glob(root: Path, pattern: str) -> Iterator[str]:
    parts = [p for p in pattern.split("/") if p]
    candidates = ["/"]
    for part in parts:
        nxt = []
        for base in candidates:
            host = _resolve_in(root, base)
            if not host.is_dir():
                continue
            if any(c in part for c in "*?["):
                nxt += [
                    posixpath.join(base, n)
                    for n in sorted(os.listdir(host))
                    if fnmatch.fnmatchcase(n, part)
                ]
            elif os.path.lexists(host / part):
                nxt.append(posixpath.join(base, part))
        candidates = nxt
    yield from candidates


def _excluded(rel: str, exclude: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(rel, p.strip("/")) for p in exclude)


def _walk(path: Path, rel: str = "") -> Iterator[tuple[str, Path, os.stat_result]]:
    st = os.lstat(path)
    yield rel, path, st
    if stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            yield from _walk(path / name, f"{rel}/{name}" if rel else name)


# the cache digest ----------------------------------------------------------------------


def hash_sources(
    src_root: Path, sources: list[str], opts: CopyOptions, cache: StatCache | None = None
) -> str:
    cache = cache or StatCache()
    h = hashlib.sha256()
    for source in sources:
        if _is_url(source):
            h.update(f"url {source} {opts.checksum or ''}\n".encode())
    for source, path in match_sources(src_root, sources):
        h.update(f"src {source}\n".encode())
        follow = os.stat(path) if os.path.exists(path) else os.lstat(path)
        top = [("", path, follow)] if not stat.S_ISDIR(follow.st_mode) else _walk(path)
        for rel, p, st in top:
            if rel and _excluded(rel, opts.exclude):
                continue
            mode = st.st_mode
            line = f"{rel}\0{mode:o}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0"
            if stat.S_ISLNK(mode):
                line += os.readlink(p)
            elif stat.S_ISREG(mode):
                line += cache.digest(str(p), st)
            h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return "sha256:" + h.hexdigest()


# copying -------------------------------------------------------------------------------


def copy(
    src_root: Path, sources: list[str], dst_root: Path, dest: str, workdir: str, opts: CopyOptions
) -> None:
    dest_path = posixpath.join(workdir or "/", dest)
    as_dir = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
    matched = match_sources(src_root, sources)
    urls = [s for s in sources if _is_url(s)]
    many = len(matched) + len(urls) > 1 or any(c in s for s in sources for c in "*?[")
    target = _resolve_in(dst_root, dest_path)
    if many and not as_dir and not target.is_dir():
        raise InvalidArgument(MULTI_SOURCE_ERROR)
    as_dir = as_dir or target.is_dir()
    for url in urls:
        _download(url, dst_root, dest_path, as_dir, opts)
    for _source, path in matched:
        st = os.stat(path) if os.path.exists(path) else os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            _ensure_dir(dst_root, dest_path, opts)
            _copy_tree(path, _resolve_in(dst_root, dest_path), opts)
        elif opts.expand_archives and stat.S_ISREG(st.st_mode) and _is_archive(path):
            _ensure_dir(dst_root, dest_path, opts)
            fd = os.open(dst_root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                with open(path, "rb") as f:
                    inroot.extract(f, fd, dest_path, inroot.ExtractOptions())
            finally:
                os.close(fd)
        else:
            final = posixpath.join(dest_path, path.name) if as_dir else dest_path
            _ensure_dir(dst_root, posixpath.dirname(final), opts)
            out = _resolve_in(dst_root, posixpath.dirname(final)) / posixpath.basename(final)
            _copy_entry(path, out, opts)


def _is_archive(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    kind = detect(head)
    if kind is not Compression.PLAIN:
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _ensure_dir(root: Path, path: str, opts: CopyOptions) -> None:
    target = _resolve_in(root, path)
    if target.is_dir():
        return
    missing = []
    p = target
    while not p.exists() and p != root:
        missing.append(p)
        p = p.parent
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
    if opts.chown:
        for m in missing:
            os.lchown(m, *opts.chown)


def _copy_tree(src: Path, dst: Path, opts: CopyOptions) -> None:
    for rel, path, st in _walk(src):
        if not rel:
            continue
        if _excluded(rel, opts.exclude):
            continue
        target = dst / rel
        if stat.S_ISDIR(st.st_mode):
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                target.unlink()
            target.mkdir(exist_ok=True)
            _set_meta(target, st, opts)
        else:
            _copy_entry(path, target, opts)
    for rel, _path, st in _walk(src):  # directory mtimes after their contents
        if rel and stat.S_ISDIR(st.st_mode) and not _excluded(rel, opts.exclude):
            with contextlib.suppress(OSError):
                os.utime(dst / rel, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_entry(src: Path, dst: Path, opts: CopyOptions) -> None:
    st = os.lstat(src)
    if os.path.lexists(dst) and not (os.path.isdir(dst) and not os.path.islink(dst)):
        os.unlink(dst)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(dst)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        os.mknod(dst, st.st_mode, st.st_rdev)
    else:
        return  # sockets are not copied
    _set_meta(dst, st, opts)


def _set_meta(path: Path, st: os.stat_result, opts: CopyOptions) -> None:
    uid, gid = opts.chown if opts.chown else (st.st_uid, st.st_gid)
    os.lchown(path, uid, gid)
    if stat.S_ISLNK(st.st_mode):
        return
    os.chmod(path, opts.chmod if opts.chmod is not None else stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# ADD of a URL ----------------------------------------------------------------------------


def _download(url: str, root: Path, dest: str, as_dir: bool, opts: CopyOptions) -> None:
    import httpx

    name = posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "index.html"
    final = posixpath.join(dest, name) if as_dir else dest
    _ensure_dir(root, posixpath.dirname(final), opts)
    h = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=root, delete=False) as tmp:
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60) as resp:
                if resp.status_code >= 400:
                    raise InvalidArgument(f"failed to GET {url}: status {resp.status_code}")
                for chunk in resp.iter_bytes(1 << 20):
                    h.update(chunk)
                    tmp.write(chunk)
                modified = resp.headers.get("last-modified")
        except httpx.HTTPError as e:
            os.unlink(tmp.name)
            raise InvalidArgument(f"failed to GET {url}: {e}") from None
        except BaseException:
            os.unlink(tmp.name)
            raise
    if opts.checksum and opts.checksum != "sha256:" + h.hexdigest():
        os.unlink(tmp.name)
        raise InvalidArgument(
            f"checksum mismatch for {url}: expected {opts.checksum}, got sha256:{h.hexdigest()}"
        )
    out = _resolve_in(root, posixpath.dirname(final)) / posixpath.basename(final)
    os.replace(tmp.name, out)
    os.chmod(out, opts.chmod if opts.chmod is not None else 0o600)
    if opts.chown:
        os.lchown(out, *opts.chown)
    if modified:
        with contextlib.suppress(ValueError, TypeError):
            t = parsedate_to_datetime(modified).timestamp()
            os.utime(out, (t, t))
