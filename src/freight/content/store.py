"""The content store: immutable blobs addressed by digest, written crash-safely.

On disk (all paths are built by `_Layout`):

    <root>/
    ├── blobs/
    │   └── sha256/
    │       └── <hex>              a committed blob, read-only (0444)
    └── ingest/
        └── <sha256(ref)>          a write in progress, flock'ed by its writer

Writing is write-then-commit, documented once here:

    with store.writer("layer-sha256:ab…") as w:   # ref names the write
        for chunk in response:
            w.write(chunk)                          # hashed as it is written
        w.commit(expected=desc.digest, size=desc.size)

`commit` checks size and digest, fsyncs the file, renames it into `blobs/`
and fsyncs the directory; only then does the blob exist. Leaving the `with`
block without committing aborts (the ingest file is removed). A process
killed mid-write leaves only an ingest file, never a blob, and the next
`ContentStore` on the same root removes ingest files no live writer holds
(writers keep an exclusive flock, which the kernel drops when they die).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from freight import errors
from freight.oci.digest import CHUNK_SIZE, Digest, sha256_hasher


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


class _Layout:
    """Every path of the store, in one place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.ingest = root / "ingest"

    def blob(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.hex

    def ingest_file(self, ref: str) -> Path:
        # Refs are caller-chosen text; hashing them gives a safe, fixed-length name.
        return self.ingest / hashlib.sha256(ref.encode()).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentWriter:
    """One in-progress blob write; obtain it from `ContentStore.writer`."""

    def __init__(self, store: ContentStore, ref: str, path: Path, fd: int) -> None:
        self._store = store
        self.ref = ref
        self._path = path
        self._file = os.fdopen(fd, "wb", buffering=CHUNK_SIZE)
        self._hasher = sha256_hasher()
        self.offset = 0
        self._done = False
        self._published = False

    def write(self, data: bytes) -> int:
        self._check_open()
        self._file.write(data)
        self._hasher.update(data)
        self.offset += len(data)
        return len(data)

    def digest(self) -> Digest:
        """The digest of what has been written so far."""
        return Digest.from_hasher(self._hasher.copy())

    def commit(self, expected: Digest | None = None, size: int | None = None) -> Digest:
        """Verify, fsync and publish the blob; return its digest.

        Committing content that is already stored succeeds (blobs are immutable
        and identical by definition). On a mismatch the write is aborted and
        InvalidArgument raised.
        """
        self._check_open()
        actual = self.digest()
        try:
            if size is not None and size != self.offset:
                raise errors.InvalidArgument(
                    f"unexpected commit size {self.offset}, expected {size} (ref {self.ref})"
                )
            if expected is not None and expected != actual:
                raise errors.InvalidArgument(
                    f"unexpected commit digest {actual}, expected {expected} (ref {self.ref})"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            self._store._publish(self._path, actual)
            self._published = True
        finally:
            self.abort()
        return actual

    def suspend(self) -> None:
        """Stop, keeping what was written for a later `writer(ref, resume=True)`
        (a pull cut short by the network goes on from there)."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._store._release(self.ref)

    def _continue(self) -> None:
        """Rehash what a stale ingest of this ref holds and append after it."""
        with open(self._path, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                self._hasher.update(chunk)
                self.offset += len(chunk)
        self._file.seek(self.offset)

    def abort(self) -> None:
        """Drop the write; the ingest file is removed. Safe to call twice."""
        if self._done:
            return
        self._done = True
        if not self._published:  # once renamed, the path may be another writer's
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self._file.close()  # closing releases the flock, after the unlink
        self._store._release(self.ref)

    def _check_open(self) -> None:
        if self._done:
            raise errors.InvalidArgument(f"content writer {self.ref!r} is closed")

    def __enter__(self) -> ContentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class ContentStore:
    """Blobs by digest under `root`; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self._layout = _Layout(Path(root))
        self._active: set[str] = set()
        self._lock = threading.Lock()
        for directory in (self._layout.blobs / "sha256", self._layout.ingest):
            directory.mkdir(parents=True, exist_ok=True)
        self._clean_stale_ingests()

    # --- Ingester ---------------------------------------------------------

    def writer(self, ref: str, resume: bool = False) -> ContentWriter:
        """Start writing a blob named `ref`; Unavailable if `ref` is being written.

        With `resume`, what a suspended (or dead) writer of the same ref left is
        kept and continued; `offset` says how much there is.
        """
        with self._lock:
            if ref in self._active:
                raise errors.Unavailable(f"ref {ref!r} is locked: another write is in progress")
            self._active.add(ref)
        path = self._layout.ingest_file(ref)
        try:
            fd = _open_locked(path)
        except BaseException:
            self._release(ref)
            raise
        if fd is None:
            self._release(ref)
            raise errors.Unavailable(f"ref {ref!r} is locked by another process")
        if not resume:
            os.ftruncate(fd, 0)  # a stale ingest of the same ref: start from zero
            return ContentWriter(self, ref, path, fd)
        w = ContentWriter(self, ref, path, fd)
        try:
            w._continue()
        except BaseException:
            w.abort()
            raise
        return w

    def put(self, data: bytes, expected: Digest | None = None) -> Digest:
        """Store `data` in one go; return its digest."""
        digest = Digest.of(data)
        if self.exists(digest) and (expected is None or expected == digest):
            return digest
        with self.writer(f"put-{digest}") as w:
            w.write(data)
            return w.commit(expected, len(data))

    # --- Provider ---------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        return self._layout.blob(digest).is_file()

    def info(self, digest: Digest) -> BlobInfo:
        try:
            return BlobInfo(digest, self._layout.blob(digest).stat().st_size)
        except FileNotFoundError:
            raise errors.NotFound(f"content {digest}: not found") from None

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return self._layout.blob(digest).open("rb")
        except FileNotFoundError:
            raise errors.NotFound(f"content {digest}: not found") from None

    def read(self, digest: Digest) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def path(self, digest: Digest) -> Path:
        """Where the blob lives (or would live); for sendfile and the like."""
        return self._layout.blob(digest)

    # --- Manager ----------------------------------------------------------

    def delete(self, digest: Digest) -> None:
        try:
            self._layout.blob(digest).unlink()
        except FileNotFoundError:
            raise errors.NotFound(f"content {digest}: not found") from None

    def list(self) -> Iterator[BlobInfo]:
        for algorithm_dir in sorted(self._layout.blobs.iterdir()):
            for entry in sorted(os.scandir(algorithm_dir), key=lambda e: e.name):
                digest = Digest(f"{algorithm_dir.name}:{entry.name}")
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    yield BlobInfo(digest, entry.stat().st_size)

    # --- internals --------------------------------------------------------

    def _publish(self, ingest: Path, digest: Digest) -> None:
        target = self._layout.blob(digest)
        if target.exists():
            ingest.unlink(missing_ok=True)  # stored already: drop the duplicate ingest file
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(ingest, 0o444)
        os.rename(ingest, target)
        # The rename is durable only once the directory entry is on disk.
        _fsync_dir(target.parent)

    def _release(self, ref: str) -> None:
        with self._lock:
            self._active.discard(ref)

    def _clean_stale_ingests(self) -> None:
        for entry in self._layout.ingest.iterdir():
            try:
                fd = os.open(entry, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if _try_lock(fd):  # nobody holds it: its writer is dead
                    entry.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _open_locked(path: Path) -> int | None:
    """Open and flock the ingest file; None if a live writer holds it.

    A cleaner may unlink the file between our open and our lock; then the lock
    is on an orphaned inode, so check the path still names it and retry.
    """
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not _try_lock(fd):
            os.close(fd)
            return None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
