"""`docker builder prune`: forget cached steps and delete the step images only they kept.

Without `--all` only dangling cache goes: steps that are not ancestors of a
tagged image (what a rebuild of a tagged project would reuse stays). With
`--all` every entry goes, and the `RUN --mount=type=cache` directories too.
Step images are deleted when nothing else keeps them: no tag, no container,
no child image; the blobs and snapshots they held are then collected.
`until=` keeps entries used more recently than the given time.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from freight.errors import Conflict, FreightError, InvalidArgument
from freight.services.images import ImageService
from freight.services.prune import store_bytes, until_time

if TYPE_CHECKING:
    from freight.builder.engine import Builder


@dataclass
class BuildPruneReport:
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0


def prune_build_cache(
    builder: Builder, filters: dict[str, list[str]], all_entries: bool, keep_storage: int = 0
) -> BuildPruneReport:
    del keep_storage  # entries are not sized individually; everything eligible goes
    unknown = set(filters) - {"until"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    until = until_time(filters.get("until", []))
    images = builder.containers.images
    before = store_bytes(images)
    kept = set() if all_entries else _tagged_ancestry(images)
    doomed = [
        (key, image_id)
        for key, image_id, used in builder.cache.entries()
        if image_id not in kept and (until is None or used < until)
    ]
    builder.cache.forget([key for key, _ in doomed])
    _delete_step_images(images, {image_id for _, image_id in doomed})
    if all_entries:
        shutil.rmtree(builder.cache_root, ignore_errors=True)
    images.collect_garbage()
    report = BuildPruneReport([key for key, _ in doomed])
    report.reclaimed = max(0, before - store_bytes(images))
    return report


def _tagged_ancestry(images: ImageService) -> set[str]:
    rows = {row.id: row for row in images.meta.images()}
    keep: set[str] = set()
    for image_id in rows:
        if not images.meta.tags_of(image_id):
            continue
        current = image_id
        while current and current not in keep:
            keep.add(current)
            current = rows[current].parent if current in rows else ""
    return keep


def _delete_step_images(images: ImageService, candidates: set[str]) -> None:
    still_cached = {image_id for _, image_id, _ in images.meta.cache_entries()}
    removed = True
    while removed:  # a child gone can free its parent
        removed = False
        rows = images.meta.images()
        parents = {row.parent for row in rows if row.parent}
        for row in rows:
            if row.id not in candidates or row.id in parents or row.id in still_cached:
                continue
            if images.meta.tags_of(row.id) or images.meta.containers_using(row.id):
                continue
            try:
                images.meta.delete_image(row.id)
            except (Conflict, FreightError):
                continue
            removed = True
