"""The overlayfs snapshotter: snapshots as directories, layered by the kernel.

On disk (paths are built by `_Layout`):

    <root>/
    ├── metadata.db            SQLite (WAL): key -> id, parent, kind, created
    └── snapshots/             0700: images may hold setuid files
        ├── <id>/              numeric, never reused (AUTOINCREMENT)
        │   ├── fs/            the snapshot's files; the upperdir while active
        │   └── work/          overlay's workdir (active snapshots only)
        └── tmp-<random>/      being created; renamed to <id> in the DB transaction

Mounts returned (see `model` for the lifecycle):

    active, no parent       bind <id>/fs  rw,rbind
    active, parents         overlay  lowerdir=<p1>/fs:<p2>/fs:…,upperdir=<id>/fs,workdir=<id>/work
                            (nearest parent first)
    view, no parent         bind <id>/fs  ro,rbind
    view, one parent        bind <parent>/fs  ro,rbind
    view, parents           overlay  lowerdir=<p1>/fs:<p2>/fs:…   (read-only without upperdir)

The kernel passes mount options in one page (4096 bytes), so the lowerdir
list bounds the number of layers: with the default root
(/var/lib/freight/snapshots/snapshots/<id>/fs, ~45 bytes a layer) about 90.
That is why ids are short numbers rather than digests.

Crash safety: a snapshot directory appears (rename) inside the transaction
that inserts its row, so a row always has its directory; `remove` deletes
the row first and the directory after, so a crash leaves at worst a
directory with no row, and opening the snapshotter deletes those. A snapshot
is committed by a metadata change only, after its files are synced: an
extraction cut short stays "active" and is never mistaken for a layer.
One snapshotter instance owns a root at a time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from freight import errors
from freight.snapshots.model import Kind, Mount, SnapshotInfo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    key     TEXT NOT NULL UNIQUE,
    parent  INTEGER REFERENCES snapshots(id) ON DELETE RESTRICT,
    kind    TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
"""

_ROW = "SELECT s.id, s.key, p.key, s.kind, s.created FROM snapshots s LEFT JOIN snapshots p ON s.parent = p.id"


class _Layout:
    """Every path of the snapshotter, in one place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "metadata.db"
        self.snapshots = root / "snapshots"

    def snapshot(self, snapshot_id: int) -> Path:
        return self.snapshots / str(snapshot_id)

    def fs(self, snapshot_id: int) -> Path:
        return self.snapshot(snapshot_id) / "fs"

    def work(self, snapshot_id: int) -> Path:
        return self.snapshot(snapshot_id) / "work"

    def temporary(self) -> Path:
        return self.snapshots / f"tmp-{secrets.token_hex(8)}"


class _Row:
    __slots__ = ("id", "key", "parent", "kind", "created")

    def __init__(self, row: tuple[int, str, str | None, str, str]) -> None:
        self.id, self.key, self.parent, kind, created = row
        self.kind = Kind(kind)
        self.created = datetime.fromisoformat(created)

    def info(self) -> SnapshotInfo:
        return SnapshotInfo(self.key, self.parent, self.kind, self.created)


class OverlaySnapshotter:
    """containerd's snapshotter lifecycle on overlayfs; it returns mounts, it never mounts."""

    def __init__(self, root: Path) -> None:
        root = Path(root).absolute()
        # Overlay option syntax: ":" separates lowerdirs and "," options.
        if any(c in str(root) for c in ":,"):
            raise errors.InvalidArgument(f"snapshotter root {root}: must not contain ':' or ','")
        self._layout = _Layout(root)
        root.mkdir(parents=True, exist_ok=True)
        self._layout.snapshots.mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self._layout.db, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._remove_orphans()

    def close(self) -> None:
        self._db.close()

    # --- lifecycle ------------------------------------------------------------

    def prepare(self, key: str, parent: str | None = None) -> list[Mount]:
        """Create an active (writable) snapshot `key` on top of committed `parent`."""
        return self._create(key, parent, Kind.ACTIVE)

    def view(self, key: str, parent: str | None = None) -> list[Mount]:
        """Create a read-only view `key` of committed `parent`."""
        return self._create(key, parent, Kind.VIEW)

    def commit(self, name: str, key: str) -> None:
        """Turn active snapshot `key` into committed snapshot `name`; `key` is gone after."""
        # Durability before the metadata says "committed" (a global sync:
        # Python has no syncfs, and one call beats an fsync per file).
        os.sync()
        with self._transaction():
            row = self._get(key)
            if row.kind is not Kind.ACTIVE:
                raise errors.InvalidArgument(
                    f"snapshot {key}: is {row.kind}, only active snapshots can be committed"
                )
            if self._find(name) is not None:
                raise errors.AlreadyExists(f"snapshot {name}: already exists")
            self._db.execute(
                "UPDATE snapshots SET key = ?, kind = ? WHERE id = ?",
                (name, Kind.COMMITTED, row.id),
            )
        # A committed snapshot is never an upper dir again: overlay's work dir (left
        # by a build step committed in place) is not needed.
        shutil.rmtree(self._layout.work(row.id), ignore_errors=True)

    def remove(self, key: str) -> None:
        """Delete snapshot `key`; Conflict if other snapshots have it as parent."""
        with self._transaction():
            row = self._get(key)
            (children,) = self._db.execute(
                "SELECT COUNT(*) FROM snapshots WHERE parent = ?", (row.id,)
            ).fetchone()
            if children:
                raise errors.Conflict(f"snapshot {key}: cannot remove, it has {children} children")
            self._db.execute("DELETE FROM snapshots WHERE id = ?", (row.id,))
        # After the row: a crash here leaves an orphan directory, removed on open.
        shutil.rmtree(self._layout.snapshot(row.id), ignore_errors=True)

    # --- queries ----------------------------------------------------------------

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of active or view snapshot `key` (same as prepare/view returned)."""
        with self._lock:
            row = self._get(key)
            if row.kind is Kind.COMMITTED:
                raise errors.InvalidArgument(f"snapshot {key}: committed snapshots have no mounts")
            return self._mounts(row)

    def stat(self, key: str) -> SnapshotInfo:
        with self._lock:
            return self._get(key).info()

    def walk(self) -> Iterator[SnapshotInfo]:
        with self._lock:
            rows = [_Row(r) for r in self._db.execute(f"{_ROW} ORDER BY s.id")]
        for row in rows:
            yield row.info()

    def layer_dirs(self, key: str) -> list[Path]:
        """The files directory of snapshot `key`, then its parents' (nearest first), for
        reporting (Docker's GraphDriver data); never write to a committed one."""
        with self._lock:
            row = self._get(key)
            ids = [row.id, *self._parent_chain(row)]
        return [self._layout.fs(i) for i in ids]

    def upper_dir(self, key: str) -> Path:
        """The directory an active snapshot's changes go to: extract a layer here, unmounted."""
        with self._lock:
            row = self._get(key)
        if row.kind is not Kind.ACTIVE:
            raise errors.InvalidArgument(f"snapshot {key}: is {row.kind}, not active")
        return self._layout.fs(row.id)

    # --- internals ----------------------------------------------------------------

    def _create(self, key: str, parent: str | None, kind: Kind) -> list[Mount]:
        with self._transaction():
            if self._find(key) is not None:
                raise errors.AlreadyExists(f"snapshot {key}: already exists")
            parent_id = self._committed_parent(parent)
            created = datetime.now(UTC).isoformat()
            self._db.execute(
                "INSERT INTO snapshots (key, parent, kind, created) VALUES (?, ?, ?, ?)",
                (key, parent_id, kind, created),
            )
            row = self._get(key)
            self._make_dirs(row.id, kind)
            try:
                return self._mounts(row)
            except BaseException:
                shutil.rmtree(self._layout.snapshot(row.id), ignore_errors=True)
                raise

    def _committed_parent(self, parent: str | None) -> int | None:
        if parent is None:
            return None
        row = self._find(parent)
        if row is None:
            raise errors.NotFound(f"parent snapshot {parent}: not found")
        if row.kind is not Kind.COMMITTED:
            raise errors.InvalidArgument(f"parent snapshot {parent}: is {row.kind}, not committed")
        return row.id

    def _make_dirs(self, snapshot_id: int, kind: Kind) -> None:
        """Build the snapshot under a temporary name, then rename it into place."""
        temporary = self._layout.temporary()
        temporary.mkdir(mode=0o700)
        try:
            (temporary / "fs").mkdir(mode=0o755)
            if kind is Kind.ACTIVE:
                (temporary / "work").mkdir(mode=0o700)
            os.rename(temporary, self._layout.snapshot(snapshot_id))
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise

    def _mounts(self, row: _Row) -> list[Mount]:
        lowers = [str(self._layout.fs(i)) for i in self._parent_chain(row)]
        fs = str(self._layout.fs(row.id))
        if row.kind is Kind.ACTIVE:
            if not lowers:
                return [Mount("bind", fs, ["rw", "rbind"])]
            return [
                Mount(
                    "overlay",
                    "overlay",
                    [
                        f"lowerdir={':'.join(lowers)}",
                        f"upperdir={fs}",
                        f"workdir={self._layout.work(row.id)}",
                    ],
                )
            ]
        if len(lowers) <= 1:
            return [Mount("bind", lowers[0] if lowers else fs, ["ro", "rbind"])]
        # Overlay with no upperdir is read-only, and needs two lowerdirs at least.
        return [Mount("overlay", "overlay", [f"lowerdir={':'.join(lowers)}"])]

    def _parent_chain(self, row: _Row) -> list[int]:
        """Ids of the parents, nearest first."""
        rows = self._db.execute(
            """
            WITH RECURSIVE chain(id, parent, depth) AS (
                SELECT id, parent, 0 FROM snapshots WHERE id = ?
                UNION ALL
                SELECT s.id, s.parent, chain.depth + 1
                FROM snapshots s JOIN chain ON s.id = chain.parent
            )
            SELECT id FROM chain WHERE depth > 0 ORDER BY depth
            """,
            (row.id,),
        ).fetchall()
        return [snapshot_id for (snapshot_id,) in rows]

    def _find(self, key: str) -> _Row | None:
        found = self._db.execute(f"{_ROW} WHERE s.key = ?", (key,)).fetchone()
        return _Row(found) if found else None

    def _get(self, key: str) -> _Row:
        row = self._find(key)
        if row is None:
            raise errors.NotFound(f"snapshot {key}: not found")
        return row

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _remove_orphans(self) -> None:
        """Delete directories with no row: half-made by prepare, half-removed by remove."""
        live = {str(i) for (i,) in self._db.execute("SELECT id FROM snapshots")}
        for entry in self._layout.snapshots.iterdir():
            if entry.name not in live:
                shutil.rmtree(entry, ignore_errors=True)
