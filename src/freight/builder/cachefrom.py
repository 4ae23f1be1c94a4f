"""`--cache-from IMAGE`: steps reused from an image's history, as the legacy builder.

The local cache knows steps by key; an image built elsewhere (pulled, loaded)
only has its history and layers. A step that missed the local cache is taken
from a cache source when

    the source's history starts with the parent's history, entry for entry
    (times included), and its diff ids start with the parent's diff ids
    the source's next history entry was made by the same instruction
    (its `created_by` is the one this step would write)

and then the step's image is the source's history up to that entry with the
source's layers up to it (none more for an empty-layer entry), under the
config this step computes. At the source's last entry the source itself is
the result. A restored image's history is the source's, so the next step's
parent matches the source again and the chain goes on; the first step that
differs ends it, as in docker. Sources not present locally are skipped (the
legacy builder does not pull them either).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from freight.errors import InvalidArgument, NotFound
from freight.oci.digest import Digest
from freight.oci.image import HistoryEntry, ImageConfig, Manifest
from freight.services.images import ImageService, NewLayer

log = logging.getLogger("freightd.build")


@dataclass(frozen=True)
class CacheSource:
    image_id: str
    config: ImageConfig
    layers: list[NewLayer]


@dataclass(frozen=True)
class Match:
    source: CacheSource
    entry: int  # the source's history entry this step is

    @property
    def last(self) -> bool:
        return self.entry == len(self.source.config.history) - 1


def load_sources(images: ImageService, refs: list[str]) -> list[CacheSource]:
    sources = []
    for ref in refs:
        try:
            image_id = images.resolve(ref)
        except (NotFound, InvalidArgument):
            log.warning("cache-from image %s not found locally: skipped", ref)
            continue
        config = images.config(image_id)
        manifest = Manifest.from_json(
            images.content.read(Digest(images.meta.image(image_id).manifest))
        )
        layers = [
            NewLayer(d.digest, d.size, d.media_type, diff_id)
            for d, diff_id in zip(manifest.layers, config.rootfs_diff_ids, strict=True)
        ]
        sources.append(CacheSource(image_id, config, layers))
    return sources


def find(sources: list[CacheSource], parent: ImageConfig, created_by: str) -> Match | None:
    """The first source whose history continues the parent's with this step."""
    n = len(parent.history)
    for source in sources:
        if not _continues(source.config, parent):
            continue
        if source.config.history[n].created_by == created_by:
            return Match(source, n)
    return None


def _continues(source: ImageConfig, parent: ImageConfig) -> bool:
    history, diff_ids = parent.history, parent.rootfs_diff_ids
    if len(source.history) <= len(history) or len(source.rootfs_diff_ids) < len(diff_ids):
        return False
    same_history = all(_same(a, b) for a, b in zip(history, source.history, strict=False))
    return same_history and list(source.rootfs_diff_ids[: len(diff_ids)]) == list(diff_ids)


def _same(a: HistoryEntry, b: HistoryEntry) -> bool:
    return (a.created, a.created_by, bool(a.empty_layer), a.author, a.comment) == (
        b.created,
        b.created_by,
        bool(b.empty_layer),
        b.author,
        b.comment,
    )


def restored(config: ImageConfig, match: Match, below: int) -> tuple[ImageConfig, list[NewLayer]]:
    """The step's image config (this step's settings, the source's history and
    layers up to the matched entry) and its layers; `below`: the parent's layer count."""
    source = match.source.config
    entry = source.history[match.entry]
    count = below + (0 if entry.empty_layer else 1)
    if count > len(source.rootfs_diff_ids):
        raise InvalidArgument(f"cache source {match.source.image_id}: history and layers disagree")
    new = replace(
        config,
        created=entry.created,
        history=list(source.history[: match.entry + 1]),
        rootfs_diff_ids=list(source.rootfs_diff_ids[:count]),
    )
    return new, match.source.layers[:count]
