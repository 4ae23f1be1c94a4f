"""The build cache: which image a step with given inputs made, kept across restarts.

    key(step) = sha256(key(previous step), instruction, its settings, content hash)

The first key of a stage is its base image's ID, so a changed base invalidates
everything after it; a COPY/ADD key takes the digest of the files it copies
(`copyfiles.hash_sources`), so editing one file invalidates that step and the
ones after it, and nothing before. Entries live in the metadata DB
(`build_cache`), the step images are ordinary untagged images with a parent
chain (as the legacy builder's), so image GC keeps what the cache points to
and `builder prune` is: drop the entries, delete the step images nothing else
uses. An entry whose image was removed is a miss. A miss can still be served
by a `--cache-from` image's history (`cachefrom`).
"""

from __future__ import annotations

import hashlib
import json
import time

from freight.errors import NotFound
from freight.metadata.store import MetadataStore


def step_key(parent: str, *parts: object) -> str:
    """A stable digest of a step's inputs (JSON of the parts, so no ambiguity)."""
    body = json.dumps([parent, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


class BuildCache:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def lookup(self, key: str) -> str | None:
        image_id = self.meta.cached_step(key)
        if image_id is None:
            return None
        try:
            self.meta.image(image_id)
        except NotFound:
            return None  # the image was removed since: a miss
        self.meta.record_step(key, image_id, time.time())
        return image_id

    def record(self, key: str, image_id: str) -> None:
        self.meta.record_step(key, image_id, time.time())

    def entries(self) -> list[tuple[str, str, float]]:
        return self.meta.cache_entries()

    def forget(self, keys: list[str]) -> None:
        self.meta.forget_steps(keys)
