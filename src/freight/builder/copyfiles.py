"""The file copies of Dockerfile COPY and ADD, and the content digest their cache keys use.

    copy(context, ["src/", "*.txt"], rootfs, "app/", "/srv", CopyOptions(chown=(1000, 1000)))
    hash_sources(context, ["src/", "*.txt"], CopyOptions(), statcache)  # "sha256:..."

Semantics are docker's (BuildKit's where the two builders differ):

- a source is a path in `src_root` (the context, or another stage's root);
  `..` and absolute paths stay inside it (clamped, as BuildKit does), and a
  component may be a filepath.Match pattern (`*`, `?`, `[a-z]`, `\\`; `**` is
  just `*`). Nothing matching is an error naming the source.
- a directory source copies its contents; a file lands at `dest`, or at
  `dest/<name>` when `dest` ends with `/` (or is `.`) or is an existing
  directory. More than one matched source needs such a directory `dest`.
- `dest` is relative to the WORKDIR; missing parents are created 0755, owned
  by `chown` when given (BuildKit chowns the directories it creates), else
  root. A directory `dest` created for a directory source gets `chmod` too.
- owners (or `chown`), modes (or `chmod`, on files and directories copied),
  mtimes, hard links and xattrs are kept; devices and fifos are recreated.

Hostile trees: every source path is opened with openat2(RESOLVE_IN_ROOT) on a
dirfd of `src_root`, so a symlink met on the way (also the source itself,
which is followed) resolves inside the root; below a directory source,
symlinks are copied as symlinks and never followed. Destination paths are
resolved the same way in `dst_root` and every entry is created with *at()
calls on a directory fd, so a symlink in the image cannot send a write out.

ADD also expands local tar archives (plain, gzip, bzip2, xz, zstd, sniffed by
magic) with `archive.inroot.extract`, downloads http(s) URLs (mode 0600, mtime
from Last-Modified, `--checksum` verified before anything is written) and
checks out git URLs.

The digest covers what the copy would write: relative paths, types, modes,
owners (unless `chown`), sizes, file bytes, symlink targets and device
numbers, not mtimes (BuildKit leaves them out of COPY cache keys too). A
`StatCache` remembers file digests by (path, size, mtime, mode) so rehashing an
unchanged context reads no file.

Which paths a source names is `copymatch`'s; fetching URLs and git
repositories for ADD is `urlfetch`'s; this module hashes and copies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from freight import errors
from freight.archive import compression, inroot
from freight.builder import copymatch, urlfetch
from freight.linux.openat2 import openat2

_DIR = os.O_RDONLY | os.O_DIRECTORY
_CHUNK = 1 << 20
_SKIPPED_XATTRS = ("trusted.overlay.",)
# A file modified less than this before it is hashed may change again within
# the same mtime tick: its digest is not remembered (git's "racy clean").
_RACY_NS = 2_000_000_000
_URL_KEY = "url\0"  # StatCache entries of ADD URLs (a path never starts so)
_MULTI_SOURCE = (
    "When using {kind} with more than one source file, the destination must be a directory "
    "and end with a /"
)


@dataclass(frozen=True)
class CopyOptions:
    chown: tuple[int, int] | None = None  # uid, gid for everything copied
    chmod: int | None = None  # permission bits for files and directories copied
    expand_archives: bool = False  # ADD: local tar archives are extracted, URLs fetched
    exclude: tuple[str, ...] = ()  # --exclude patterns (.dockerignore syntax)
    parents: bool = False  # --parents: keep the source's directories under dest
    checksum: str | None = None  # ADD --checksum=sha256:...
    keep_git_dir: bool = False  # ADD --keep-git-dir


# the stat cache ---------------------------------------------------------------------


class StatCache:
    """File digests by (path, size, mtime_ns, mode): rehashing skips unchanged files.

    The path is relative to the source root, not absolute and with no inode,
    because the daemon extracts each build's context afresh: the stat of a
    file from the same upload is all that stays the same. Files younger than
    two seconds when hashed are not remembered (they could change within the
    same mtime tick). Persist with `save`/`load` (JSON) or `to_json`/`from_json`.
    """

    MAX_ENTRIES = 200_000

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        self._entries: dict[str, str] = dict(entries or {})
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(relpath: str, st: os.stat_result) -> str:
        return f"{relpath}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}"

    def get(self, key: str) -> str | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, digest: str, st: os.stat_result) -> None:
        if time.time_ns() - st.st_mtime_ns < _RACY_NS:
            return
        self._entries.pop(key, None)  # re-inserted last: the newest survive trimming
        self._entries[key] = digest
        while len(self._entries) > self.MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]

    def get_url(self, url: str) -> dict[str, str] | None:
        """What the last download of `url` said: its validators and its hash."""
        raw = self._entries.get(_URL_KEY + url)
        try:
            found = json.loads(raw) if raw else None
        except ValueError:
            return None
        return found if isinstance(found, dict) and "hash" in found else None

    def put_url(self, url: str, digest: str, etag: str, last_modified: str) -> None:
        key = _URL_KEY + url
        self._entries.pop(key, None)
        if etag or last_modified:  # nothing to revalidate with: nothing to remember
            doc = {"hash": digest, "etag": etag, "last_modified": last_modified}
            self._entries[key] = json.dumps(doc, separators=(",", ":"))

    def __len__(self) -> int:
        return len(self._entries)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "entries": self._entries}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StatCache:
        try:
            doc = json.loads(text)
            entries = doc["entries"] if doc.get("version") == 1 else {}
            if not isinstance(entries, dict):
                entries = {}
        except (ValueError, KeyError, TypeError, AttributeError):
            entries = {}  # a damaged cache is an empty one
        return cls({k: v for k, v in entries.items() if isinstance(v, str)})

    @classmethod
    def load(cls, path: Path) -> StatCache:
        try:
            return cls.from_json(path.read_text())
        except OSError:
            return cls()

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename), so a crash leaves the old cache."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".statcache-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


# hashing ------------------------------------------------------------------------------


def hash_sources(
    src_root: Path, sources: list[str], opts: CopyOptions, cache: StatCache | None = None
) -> str:
    """A digest of everything `copy` would copy from these sources ("sha256:...").

    URL sources of ADD are fetched (or, with --checksum, taken by their
    checksum); git sources are checked out and hashed like a directory.
    """
    h = hashlib.sha256()
    h.update(b"freight-copy-v1\0")
    remote, local = _split_sources(sources, opts)
    for source in remote:
        h.update(f"remote\0{source}\0{_hash_remote(source, opts, cache)}\0".encode())
    if local:
        root_fd = os.open(src_root, _DIR)
        try:
            hasher = _Hasher(root_fd, opts, cache, h)
            for match in copymatch.matches(root_fd, local, opts.parents):
                hasher.match(match)
        finally:
            os.close(root_fd)
    return "sha256:" + h.hexdigest()


class _Hasher:
    def __init__(
        self, root_fd: int, opts: CopyOptions, cache: StatCache | None, h: hashlib._Hash
    ) -> None:
        self.root_fd = root_fd
        self.opts = opts
        self.cache = cache
        self.h = h
        self.exclude = copymatch.Excluder(opts.exclude)

    def match(self, match: copymatch.Match) -> None:
        self.h.update(f"match\0{match.source}\0{match.rel}\0{match.keep}\0".encode())
        fd, st = copymatch.open_top(self.root_fd, match.rel)
        try:
            if stat.S_ISDIR(st.st_mode):
                dfd = copymatch.reopen(fd, _DIR)
                try:
                    self.record("", st, b"")
                    self.tree(dfd, match.rel, "")
                finally:
                    os.close(dfd)
            elif self.exclude.excluded(posixpath.basename(match.rel)):
                return
            elif not stat.S_ISREG(st.st_mode):
                self.record("", st, str(st.st_rdev))
            else:
                self.record(
                    "",
                    st,
                    self.file_digest(match.rel, st, lambda: copymatch.reopen(fd, os.O_RDONLY)),
                )
        finally:
            os.close(fd)

    def tree(self, dfd: int, base: str, prefix: str) -> None:
        for name, st in copymatch.children(dfd):
            rel = f"{prefix}{name}"
            if self.exclude.skip(rel, stat.S_ISDIR(st.st_mode)):
                continue
            full = f"{base}/{rel}" if base else rel
            if stat.S_ISDIR(st.st_mode):
                self.record(rel, st, b"")
                cfd = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    self.tree(cfd, base, rel + "/")
                finally:
                    os.close(cfd)
            elif stat.S_ISREG(st.st_mode):
                opener = lambda n=name: os.open(n, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)  # noqa: E731
                self.record(rel, st, self.file_digest(full, st, opener))
            elif stat.S_ISLNK(st.st_mode):
                self.record(rel, st, os.fsencode(os.readlink(name, dir_fd=dfd)))
            else:
                self.record(rel, st, str(st.st_rdev).encode())

    def record(self, rel: str, st: os.stat_result, payload: bytes | str) -> None:
        owner = "-" if self.opts.chown is not None else f"{st.st_uid}:{st.st_gid}"
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        data = payload.encode() if isinstance(payload, str) else payload
        self.h.update(f"{rel}\0{st.st_mode:o}\0{owner}\0{size}\0".encode())
        self.h.update(len(data).to_bytes(8, "big") + data)

    def file_digest(self, full: str, st: os.stat_result, opener: Callable[[], int]) -> str:
        key = StatCache.key(full, st) if self.cache is not None else ""
        if self.cache is not None:
            found = self.cache.get(key)
            if found is not None:
                return found
        fd = opener()
        with os.fdopen(fd, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if self.cache is not None:
            self.cache.put(key, digest, st)
        return digest


# copying -------------------------------------------------------------------------------


def copy(
    src_root: Path, sources: list[str], dst_root: Path, dest: str, workdir: str, opts: CopyOptions
) -> None:
    """Copy `sources` (in `src_root`) to `dest` (relative to `workdir`) in `dst_root`.

    Raises NotFound for a source that matches nothing, InvalidArgument for a
    destination that cannot take the sources.
    """
    kind = "ADD" if opts.expand_archives else "COPY"
    target = _dest_path(dest, workdir)
    as_dir = _names_directory(dest)
    dst_fd = os.open(dst_root, _DIR)
    try:
        remote, local = _split_sources(sources, opts)
        matches: list[copymatch.Match] = []
        if local:
            src_fd = os.open(src_root, _DIR)
            try:
                matches = copymatch.matches(src_fd, local, opts.parents)
            finally:
                os.close(src_fd)
        many = len(matches) + len(remote) > 1
        if many and not as_dir and not opts.parents and not _is_dir(dst_fd, target):
            raise errors.InvalidArgument(_MULTI_SOURCE.format(kind=kind))
        if opts.checksum and not remote:
            raise errors.InvalidArgument("checksum can't be specified for non-HTTP(S) sources")
        writer = _Writer(dst_fd, opts)
        for source in remote:
            _copy_remote(source, writer, target, as_dir, opts)
        if matches:
            src_fd = os.open(src_root, _DIR)
            try:
                for match in matches:
                    writer.source(src_fd, match, target, as_dir or many)
            finally:
                os.close(src_fd)
    finally:
        os.close(dst_fd)


def _dest_path(dest: str, workdir: str) -> str:
    return posixpath.normpath(posixpath.join("/", workdir or "/", dest))


def _names_directory(dest: str) -> bool:
    return dest in ("", ".") or dest.endswith(("/", "/."))


def _is_dir(root_fd: int, path: str) -> bool:
    try:
        os.close(inroot.open_dir(root_fd, path))
    except OSError:
        return False
    return True


def _split(path: str) -> tuple[str, str]:
    parent, name = posixpath.split(path)
    return parent or "/", name


class _Writer:
    """Creates entries in the destination root, each by name from a parent dirfd."""

    def __init__(self, root_fd: int, opts: CopyOptions) -> None:
        self.root_fd = root_fd
        self.opts = opts
        self.exclude = copymatch.Excluder(opts.exclude)
        self.links: dict[tuple[int, int], str] = {}  # source inode -> first copy's path
        self.dir_owner = opts.chown or (0, 0)
        # copy_file_range fails across file systems (a context on the host into an
        # overlay): after the first refusal, no more attempts (each cost four calls).
        self.in_kernel_copy = True

    # destinations

    def source(self, src_fd: int, match: copymatch.Match, target: str, as_dir: bool) -> None:
        fd, st = copymatch.open_top(src_fd, match.rel)
        try:
            if stat.S_ISDIR(st.st_mode):
                self.directory_source(fd, st, posixpath.join(target, match.keep))
                return
            if match.keep:  # --parents: the file's directories are kept under dest
                target, as_dir = posixpath.join(target, posixpath.dirname(match.keep)), True
            name = posixpath.basename(match.rel)
            if self.exclude.excluded(name):
                return
            if self.opts.expand_archives and stat.S_ISREG(st.st_mode) and _is_archive(fd):
                self.archive(fd, target)
                return
            path = self.file_target(target, name, as_dir)
            pfd = self.parents(path)
            try:
                self.put_top(fd, st, pfd, posixpath.basename(path))
            finally:
                os.close(pfd)
        finally:
            os.close(fd)

    def file_target(self, target: str, name: str, as_dir: bool) -> str:
        resolved = inroot.resolve(self.root_fd, target)
        if as_dir or _is_dir(self.root_fd, resolved):
            return posixpath.join(resolved, name)
        return resolved

    def parents(self, path: str) -> int:
        """The dirfd of `path`'s parent, creating missing directories (0755, dir_owner)."""
        return self.mkdirs(posixpath.dirname(inroot.resolve(self.root_fd, path)))

    def mkdirs(self, path: str, last_mode: int = 0o755) -> int:
        """A dirfd on resolved `path`, creating what is missing: 0755 (the last
        one `last_mode`), owned by --chown's ids or root, as BuildKit does."""
        current = openat2(self.root_fd, ".", _DIR)
        parts = [p for p in path.split("/") if p]
        nofollow = _DIR | os.O_NOFOLLOW  # `path` is resolved: a symlink now is a race
        try:
            for i, part in enumerate(parts):
                try:
                    nxt = os.open(part, nofollow, dir_fd=current)
                except FileNotFoundError:
                    os.mkdir(part, 0o700, dir_fd=current)
                    nxt = os.open(part, nofollow, dir_fd=current)
                    os.chown(nxt, *self.dir_owner)
                    os.chmod(nxt, last_mode if i == len(parts) - 1 else 0o755)
                except OSError as e:
                    raise errors.InvalidArgument(
                        f"cannot copy to {path}: {part}: {e.strerror}"
                    ) from None
                os.close(current)
                current = nxt
        except BaseException:
            os.close(current)
            raise
        return current

    def directory_source(self, fd: int, st: os.stat_result, target: str) -> None:
        resolved = inroot.resolve(self.root_fd, target)
        if copymatch.exists(self.root_fd, resolved) and not _is_dir(self.root_fd, resolved):
            raise errors.InvalidArgument(f"cannot copy to non-directory: {target}")
        created = not copymatch.exists(self.root_fd, resolved)
        mode = self.opts.chmod if self.opts.chmod is not None else 0o755
        dfd_dst = self.mkdirs(resolved, mode)
        try:
            src = copymatch.reopen(fd, _DIR)
            try:
                self.tree(src, dfd_dst, resolved, "")
            finally:
                os.close(src)
            if created:
                os.utime(dfd_dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dfd_dst)

    def archive(self, fd: int, target: str) -> None:
        resolved = inroot.resolve(self.root_fd, target)
        os.close(self.mkdirs(resolved))
        with open(copymatch.reopen(fd, os.O_RDONLY), "rb") as f:
            _kind, plain = compression.decompressed(f)
            try:
                inroot.extract(
                    plain,  # type: ignore[arg-type]
                    self.root_fd,
                    resolved,
                    inroot.ExtractOptions(chown=self.opts.chown),
                )
            except compression.decompression_errors() as e:
                raise errors.InvalidArgument(f"failed to extract archive: {e}") from None

    # entries

    def tree(self, src_dir: int, dst_dir: int, dst_path: str, prefix: str) -> None:
        for name, st in copymatch.children(src_dir):
            rel = f"{prefix}{name}"
            if self.exclude.skip(rel, stat.S_ISDIR(st.st_mode)):
                continue
            self.put(src_dir, name, st, dst_dir, f"{dst_path.rstrip('/')}/{name}", rel)

    def put(
        self, src_dir: int, name: str, st: os.stat_result, dst_dir: int, dst_path: str, rel: str
    ) -> None:
        existing = _lstat(dst_dir, name)
        is_dir = stat.S_ISDIR(st.st_mode)
        if existing is not None and not (is_dir and stat.S_ISDIR(existing.st_mode)):
            _remove(dst_dir, name, existing)
            existing = None
        if is_dir:
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=dst_dir)
            child_dst = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=dst_dir)
            child_src = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=src_dir)
            try:
                self.tree(child_src, child_dst, dst_path, rel + "/")
                self.metadata(child_dst, st, xattr_src=child_src)
            finally:
                os.close(child_src)
                os.close(child_dst)
            return
        if self.hard_link(st, dst_dir, name, dst_path):
            return
        if stat.S_ISREG(st.st_mode):
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_dir)
            try:
                self.write_file(src, st, dst_dir, name)
            finally:
                os.close(src)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
            uid, gid = self.opts.chown or (st.st_uid, st.st_gid)
            os.chown(name, uid, gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(
                name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False
            )
        else:
            self.make_node(st, dst_dir, name)

    def put_top(self, fd: int, st: os.stat_result, dst_dir: int, name: str) -> None:
        """The source itself (already followed): a regular file or a special file."""
        if stat.S_ISREG(st.st_mode):
            src = copymatch.reopen(fd, os.O_RDONLY)
            try:
                self.replace_with_file(src, st, dst_dir, name)
            finally:
                os.close(src)
            return
        self.clear_for_file(dst_dir, name)
        self.make_node(st, dst_dir, name)

    def make_node(self, st: os.stat_result, dst_dir: int, name: str) -> None:
        """A device or fifo like `st` (sockets are not copied, nor archived by docker)."""
        if stat.S_ISSOCK(st.st_mode):
            return
        os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dst_dir)
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dst_dir)
        try:
            self.metadata(node, st, path_fd=True)
        finally:
            os.close(node)

    def clear_for_file(self, dst_dir: int, name: str) -> None:
        existing = _lstat(dst_dir, name)
        if existing is None:
            return
        if stat.S_ISDIR(existing.st_mode):
            raise errors.InvalidArgument(f"cannot overwrite directory with non-directory: {name}")
        os.unlink(name, dir_fd=dst_dir)

    def replace_with_file(self, src: int, st: os.stat_result, dst_dir: int, name: str) -> None:
        self.clear_for_file(dst_dir, name)
        self.write_file(src, st, dst_dir, name)

    def hard_link(self, st: os.stat_result, dst_dir: int, name: str, dst_path: str) -> bool:
        if st.st_nlink < 2:
            return False
        first = self.links.get((st.st_dev, st.st_ino))
        if first is None:
            self.links[(st.st_dev, st.st_ino)] = dst_path
            return False
        parent, base = _split(first)
        lfd = inroot.open_dir(self.root_fd, parent)
        try:
            os.link(base, name, src_dir_fd=lfd, dst_dir_fd=dst_dir, follow_symlinks=False)
        except OSError:
            return False  # the first copy is gone: copy the bytes again
        finally:
            os.close(lfd)
        return True

    def write_file(self, src: int, st: os.stat_result, dst_dir: int, name: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        out = os.open(name, flags, 0o600, dir_fd=dst_dir)
        try:
            self.in_kernel_copy = _copy_bytes(src, out, st.st_size, self.in_kernel_copy)
            self.metadata(out, st, xattr_src=src)
        finally:
            os.close(out)

    def metadata(
        self, fd: int, st: os.stat_result, xattr_src: int | None = None, path_fd: bool = False
    ) -> None:
        """Owner, mode, xattrs and times of `st` (or --chown/--chmod) onto `fd`."""
        target: int | str = f"/proc/self/fd/{fd}" if path_fd else fd
        uid, gid = self.opts.chown or (st.st_uid, st.st_gid)
        os.chown(target, uid, gid)
        mode = self.opts.chmod if self.opts.chmod is not None else stat.S_IMODE(st.st_mode)
        os.chmod(target, mode)  # after chown, which clears setuid bits
        if xattr_src is not None:
            _copy_xattrs(xattr_src, fd)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(dfd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)


def _copy_bytes(src: int, out: int, size: int, in_kernel: bool) -> bool:
    """Copy `src` (at offset 0) to the new, empty `out`; whether copy_file_range
    worked (False: the caller should not try it again for this copy)."""
    if in_kernel:
        try:
            while os.copy_file_range(src, out, max(size, _CHUNK)):
                pass
            return True
        except OSError:
            # Not across these file systems: from the start again, another way.
            os.lseek(src, 0, os.SEEK_SET)
            os.lseek(out, 0, os.SEEK_SET)
            os.ftruncate(out, 0)
    try:
        while os.sendfile(out, src, None, max(size, _CHUNK)):
            pass  # still in the kernel, no copy through Python's buffers
    except OSError:
        os.lseek(src, 0, os.SEEK_SET)
        os.lseek(out, 0, os.SEEK_SET)
        os.ftruncate(out, 0)
        while chunk := os.read(src, _CHUNK):
            os.write(out, chunk)
    return False


def _copy_xattrs(src: int, dst: int) -> None:
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        if name.startswith(_SKIPPED_XATTRS):
            continue
        with contextlib.suppress(OSError):  # best effort, as docker
            os.setxattr(dst, name, os.getxattr(src, name))


def _is_archive(path_fd: int) -> bool:
    """Whether the file is a tar archive, maybe compressed (docker's ADD test)."""
    try:
        with open(copymatch.reopen(path_fd, os.O_RDONLY), "rb") as f:
            _kind, plain = compression.decompressed(f)
            block = b""
            while len(block) < tarfile.BLOCKSIZE and (
                chunk := plain.read(tarfile.BLOCKSIZE - len(block))
            ):
                block += chunk
    except (OSError, *compression.decompression_errors()):
        return False
    if len(block) < tarfile.BLOCKSIZE or block == bytes(tarfile.BLOCKSIZE):
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


# remote sources (ADD) -------------------------------------------------------------------


def _split_sources(sources: list[str], opts: CopyOptions) -> tuple[list[str], list[str]]:
    """(remote, local): URLs and git repositories are ADD's only."""
    if not opts.expand_archives:
        for source in sources:
            if source.startswith(("http://", "https://")):
                raise errors.InvalidArgument("source can't be a URL for COPY")
        return [], list(sources)
    from freight.builder import context  # lazily: it brings the git and http machinery

    remote = [s for s in sources if context.is_url(s) or context.is_git_url(s)]
    return remote, [s for s in sources if s not in remote]


def _is_git(source: str) -> bool:
    from freight.builder import context

    return context.is_git_url(source)


def _hash_remote(source: str, opts: CopyOptions, cache: StatCache | None) -> str:
    if _is_git(source):
        with tempfile.TemporaryDirectory(prefix="freight-add-git-") as tmp:
            checkout = urlfetch.git_checkout(source, Path(tmp) / "repo", opts.keep_git_dir)
            return hash_sources(
                checkout, ["."], CopyOptions(chown=opts.chown, exclude=opts.exclude), cache
            )
    if opts.checksum:
        urlfetch.checksum_of(opts.checksum)  # a malformed one fails before any download
        return opts.checksum
    known = cache.get_url(source) if cache is not None else None
    with urlfetch.download(source, None, urlfetch.validators(known)) as dl:
        if dl is None:  # 304: the server says what we hashed last time is current
            assert known is not None
            return known["hash"]
        digest = f"{dl.digest}\0{dl.filename}\0{dl.mtime}"
        if cache is not None:
            cache.put_url(source, digest, dl.etag, dl.last_modified)
        return digest


def _copy_remote(
    source: str, writer: _Writer, target: str, as_dir: bool, opts: CopyOptions
) -> None:
    if _is_git(source):
        with tempfile.TemporaryDirectory(prefix="freight-add-git-") as tmp:
            checkout = urlfetch.git_checkout(source, Path(tmp) / "repo", opts.keep_git_dir)
            src_fd = os.open(checkout, _DIR)
            try:
                writer.source(src_fd, copymatch.Match(source, "", ""), target, True)
            finally:
                os.close(src_fd)
        return
    with urlfetch.download(source, opts.checksum) as dl:
        assert dl is not None  # unconditional
        resolved = inroot.resolve(writer.root_fd, target)
        if (as_dir or _is_dir(writer.root_fd, resolved)) and not dl.filename:
            raise errors.InvalidArgument(f"cannot determine filename from url: {source}")
        path = writer.file_target(target, dl.filename, as_dir)
        mtime_ns = int((dl.mtime if dl.mtime is not None else time.time()) * 1e9)
        uid, gid = opts.chown or (0, 0)
        # The downloaded file as if it were a source file: 0600, root's (or --chown).
        st = os.stat_result(
            (
                stat.S_IFREG | 0o600,
                0,
                0,
                1,
                uid,
                gid,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                mtime_ns,
                mtime_ns,
                mtime_ns,
            )
        )
        pfd = writer.parents(path)
        try:
            writer.replace_with_file(dl.file.fileno(), st, pfd, posixpath.basename(path))
        finally:
            os.close(pfd)
