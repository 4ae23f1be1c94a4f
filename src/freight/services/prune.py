"""Pruning and disk usage: `container prune`, `image prune [-a]`, `system df`.

Space reclaimed is measured, not estimated: for containers the bytes of
their writable layer, for images the bytes of content-store blobs that
garbage collection actually freed (the unpacked snapshots freed with them
are about as large again, but are not counted, as Docker counts layers once).

Filters as Docker's: `until=<timestamp|duration>` and `label=` / `label!=`
for containers and images; `dangling=false` for `image prune` is `-a`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import Conflict, FreightError, InvalidArgument
from freight.oci.digest import Digest
from freight.oci.image import Manifest
from freight.services import containerfilters
from freight.services.clock import parse_rfc3339
from freight.services.containers import ContainerService
from freight.services.images import ImageService


@dataclass
class PruneReport:
    deleted: list[str] = field(default_factory=list)  # container ids
    images: list[dict[str, str]] = field(default_factory=list)  # Untagged/Deleted items
    reclaimed: int = 0


def directory_size(path: Path) -> int:
    """Bytes of the files under `path`, hard links once; 0 if it is gone."""
    total, seen = 0, set()
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def container_rw_size(containers: ContainerService, cid: str) -> int:
    c = containers.get(cid)
    try:
        return directory_size(containers.images.snapshots.upper_dir(c.snapshot_key))
    except FreightError:
        return 0


# --- filters -------------------------------------------------------------------


def until_time(values: list[str]) -> float | None:
    """docker's `until`: a Go duration before now, a Unix time or an RFC 3339 date."""
    return containerfilters.until_of({"until": values}, time.time())


def _label_ok(labels: dict[str, str], filters: dict[str, list[str]]) -> bool:
    return containerfilters.labels_match(filters, labels)


def _check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")


def _created(text: str) -> float:
    try:
        return parse_rfc3339(text)
    except ValueError:
        return 0.0


# --- containers ------------------------------------------------------------------


async def prune_containers(
    containers: ContainerService, filters: dict[str, list[str]]
) -> PruneReport:
    report = PruneReport()
    for c in containerfilters.prunable(containers.list(), filters):
        size = container_rw_size(containers, c.id)
        try:
            await containers.remove(c.id)
        except FreightError:
            continue  # removed meanwhile, or became busy: not pruned
        report.deleted.append(c.id)
        report.reclaimed += size
    return report


# --- images ----------------------------------------------------------------------


def prune_images(images: ImageService, filters: dict[str, list[str]]) -> PruneReport:
    """Dangling images (or, with dangling=false, all) no container uses and no image
    has as parent; then garbage collection, whose freed bytes are the reclaimed space."""
    _check_filters(filters, {"until", "label", "label!", "dangling"})
    dangling_only = not any(v.lower() in ("false", "0") for v in filters.get("dangling", []))
    until = until_time(filters.get("until", []))
    before = store_bytes(images)
    report = PruneReport()
    removed = True
    while removed:  # removing a child can leave its parent prunable
        removed = False
        rows = images.meta.images()
        parents = {row.parent for row in rows if row.parent}
        for row in rows:
            if row.id in parents or images.meta.containers_using(row.id):
                continue
            tags = images.meta.tags_of(row.id)
            if dangling_only and tags:
                continue
            if until is not None and _created(row.created) >= until:
                continue
            labels = images.config(row.id).config.labels or {}
            if not _label_ok(labels, filters):
                continue
            try:
                report.images += images.remove(row.id, force=False)
            except (Conflict, FreightError):
                continue
            removed = True
    images.collect_garbage()
    report.reclaimed = max(0, before - store_bytes(images))
    return report


def store_bytes(images: ImageService) -> int:
    """Bytes of all blobs in the content store (layers, configs, manifests)."""
    return sum(info.size for info in images.content.list())


def layer_blobs(images: ImageService, image_id: str) -> list[tuple[str, int]]:
    row = images.meta.image(image_id)
    manifest = Manifest.from_json(images.content.read(Digest(row.manifest)))
    return [(str(d.digest), d.size) for d in manifest.layers]


# --- disk usage --------------------------------------------------------------------


@dataclass
class ImageUsage:
    image_id: str
    size: int
    shared_size: int
    containers: int


def image_usage(images: ImageService) -> tuple[int, list[ImageUsage]]:
    """(bytes of all layers stored once, per image: size, shared bytes, containers)."""
    rows = images.meta.images()
    layer_sizes: dict[str, int] = {}
    layers_of: dict[str, list[str]] = {}
    for row in rows:
        layers = layer_blobs(images, row.id)
        layers_of[row.id] = [d for d, _ in layers]
        layer_sizes.update(dict(layers))
    users: dict[str, int] = {}
    for blobs in layers_of.values():
        for d in set(blobs):
            users[d] = users.get(d, 0) + 1
    out = []
    for row in rows:
        shared = sum(layer_sizes[d] for d in set(layers_of[row.id]) if users[d] > 1)
        out.append(ImageUsage(row.id, row.size, shared, len(images.meta.containers_using(row.id))))
    return sum(layer_sizes.values()), out
