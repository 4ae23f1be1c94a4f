"""Garbage collection of registry storage: mark from tags, sweep what nothing reaches.

Mark: every tag of every repository names a manifest; an index reaches its child
manifests, a manifest its config and layers, and a retained manifest keeps its referrers
(signatures, SBOMs: manifests whose `subject` it is). With `keep_untagged` every manifest
linked in a repository is a root as well.

Sweep: manifest links and blob links not marked are removed from each repository, then
blob content no repository links to. Anything written less than `grace` seconds ago is
kept: a push in progress uploads its blobs before the manifest that references them, and
uploads themselves live apart from blobs (in `uploads/`), which GC never touches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from freight import errors
from freight.oci import mediatypes
from freight.oci.digest import Digest
from freight.registry.storagebase import RegistryStorage

DEFAULT_GRACE = 3600.0


@dataclass
class GcReport:
    manifests: list[tuple[str, Digest]] = field(default_factory=list)
    blob_links: list[tuple[str, Digest]] = field(default_factory=list)
    blobs: list[Digest] = field(default_factory=list)
    freed_bytes: int = 0


def collect(
    storage: RegistryStorage,
    *,
    dry_run: bool = False,
    keep_untagged: bool = False,
    grace: float = DEFAULT_GRACE,
) -> GcReport:
    cutoff = time.time() - grace
    report = GcReport()
    linked: set[Digest] = set()
    for repo in storage.repositories():
        marked = _mark_repo(storage, repo, keep_untagged)
        for digest, _ in storage.manifests(repo):
            if digest not in marked and not _recent(storage.manifest_mtime(repo, digest), cutoff):
                report.manifests.append((repo, digest))
                if not dry_run:
                    storage.delete_manifest(repo, digest)
        for digest in storage.blob_links(repo):
            if digest in marked or _recent(storage.blob_link_mtime(repo, digest), cutoff):
                linked.add(digest)
                continue
            report.blob_links.append((repo, digest))
            if not dry_run:
                storage.unlink_blob(repo, digest)
    for blob in storage.iter_blobs():
        if blob.digest in linked or _recent(storage.blob_mtime(blob.digest), cutoff):
            continue
        report.blobs.append(blob.digest)
        report.freed_bytes += blob.size
        if not dry_run:
            storage.delete_blob_content(blob.digest)
    return report


def _mark_repo(storage: RegistryStorage, repo: str, keep_untagged: bool) -> set[Digest]:
    roots = [d for tag in storage.tags(repo) if (d := storage.resolve_tag(repo, tag))]
    if keep_untagged:
        roots += [d for d, _ in storage.manifests(repo)]
    marked: set[Digest] = set()
    while roots:
        digest = roots.pop()
        if digest in marked:
            continue
        marked.add(digest)
        media_type = storage.manifest_type(repo, digest)
        if media_type is None:
            continue
        try:
            manifest = json.loads(storage.read_blob(digest))
        except (errors.NotFound, ValueError):
            continue
        roots += _children(manifest, media_type)
        roots += [Digest(json.loads(raw)["digest"]) for raw in storage.referrers(repo, digest)]
    return marked


def _children(manifest: dict, media_type: str) -> list[Digest]:
    if media_type in mediatypes.INDEXES:
        entries = manifest.get("manifests") or []
    else:
        entries = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
    return [Digest(e["digest"]) for e in entries if isinstance(e, dict) and isinstance(e.get("digest"), str)]  # fmt: skip


def _recent(mtime: float | None, cutoff: float) -> bool:
    return mtime is not None and mtime > cutoff
