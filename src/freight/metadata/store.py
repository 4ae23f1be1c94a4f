"""The daemon's metadata: images, tags and container records in one SQLite DB.

Blobs live in the content store and filesystems in the snapshotter; this
database only says which of them make up what, so it stays small and every
change is one transaction. WAL mode lets readers run while a write is in
flight; a daemon killed mid-write leaves the last committed state.

Schema (version 1)::

    images(id TEXT PK,             -- config digest, "sha256:…" (Docker's image id)
           manifest TEXT,          -- manifest digest in the content store
           chain_id TEXT,          -- snapshot key of the top layer ('' for no layers)
           size INTEGER, created TEXT, parent TEXT)
    tags(name TEXT PK,             -- full reference: docker.io/library/busybox:latest
         image_id TEXT)
    containers(id TEXT PK, name TEXT UNIQUE, image_id TEXT, record TEXT)  -- record: JSON of the service's model
    build_cache(key TEXT PK,       -- digest of a build step's inputs (freight.builder.cache)
                image_id TEXT,     -- the image the step made
                used REAL)         -- unix time of the last hit (`builder prune --filter until`)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from freight.errors import AlreadyExists, NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY, manifest TEXT NOT NULL, chain_id TEXT NOT NULL,
    size INTEGER NOT NULL, created TEXT NOT NULL, parent TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image_id TEXT NOT NULL, record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY, image_id TEXT NOT NULL, used REAL NOT NULL
);
"""


@dataclass(frozen=True)
class ImageRow:
    id: str
    manifest: str
    chain_id: str
    size: int
    created: str
    parent: str = ""


@dataclass(frozen=True)
class ContainerRow:
    id: str
    name: str
    image_id: str
    record: str


class MetadataStore:
    """Thread-safe access to the metadata DB (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a killed daemon never corrupts or half-applies a
        # transaction; only a power loss may drop the very last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # images -----------------------------------------------------------------

    def put_image(self, image: ImageRow, tags: list[str] = ()) -> None:
        """Store an image and point `tags` at it, atomically."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?)",
                (image.id, image.manifest, image.chain_id, image.size, image.created, image.parent),
            )
            for name in tags:
                db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?)", (name, image.id))

    def image(self, image_id: str) -> ImageRow:
        rows = self._query("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NotFound(f"No such image: {image_id}")
        return ImageRow(*rows[0])

    def images(self) -> list[ImageRow]:
        return [ImageRow(*r) for r in self._query("SELECT * FROM images ORDER BY created")]

    def image_ids_with_prefix(self, prefix: str) -> list[str]:
        rows = self._query("SELECT id FROM images WHERE id LIKE ?", (prefix + "%",))
        return [r[0] for r in rows]

    def delete_image(self, image_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM tags WHERE image_id = ?", (image_id,))
            db.execute("DELETE FROM images WHERE id = ?", (image_id,))

    # tags -------------------------------------------------------------------

    def tag(self, name: str, image_id: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?)", (name, image_id))

    def untag(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM tags WHERE name = ?", (name,))

    def resolve_tag(self, name: str) -> str | None:
        rows = self._query("SELECT image_id FROM tags WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def tags_of(self, image_id: str) -> list[str]:
        rows = self._query("SELECT name FROM tags WHERE image_id = ? ORDER BY name", (image_id,))
        return [r[0] for r in rows]

    # containers -------------------------------------------------------------

    def add_container(self, row: ContainerRow) -> None:
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO containers VALUES (?, ?, ?, ?)",
                    (row.id, row.name, row.image_id, row.record),
                )
        except sqlite3.IntegrityError as e:
            raise AlreadyExists(row.name) from e

    def update_container(self, row: ContainerRow) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE containers SET name = ?, image_id = ?, record = ? WHERE id = ?",
                (row.name, row.image_id, row.record, row.id),
            )

    def delete_container(self, container_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    def containers(self) -> list[ContainerRow]:
        return [ContainerRow(*r) for r in self._query("SELECT * FROM containers")]

    def containers_using(self, image_id: str) -> list[ContainerRow]:
        rows = self._query("SELECT * FROM containers WHERE image_id = ?", (image_id,))
        return [ContainerRow(*r) for r in rows]

    # build cache ------------------------------------------------------------

    def cached_step(self, key: str) -> str | None:
        """The image a build step with these inputs made, if recorded."""
        rows = self._query("SELECT image_id FROM build_cache WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def record_step(self, key: str, image_id: str, used: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO build_cache VALUES (?, ?, ?)", (key, image_id, used))

    def cache_entries(self) -> list[tuple[str, str, float]]:
        return [tuple(r) for r in self._query("SELECT key, image_id, used FROM build_cache")]

    def forget_steps(self, keys: list[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM build_cache WHERE key = ?", [(k,) for k in keys])
