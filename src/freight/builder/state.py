"""A stage's state between steps, and the filesystem work steps do on it.

A state is an image: its config (OCI, with history and diff ids), its
layers, and its ID once stored. Every step stores its result as an untagged
image whose parent is the previous step's (the legacy builder's model), so a
RUN container can be created from it, `history` shows the steps and the
cache can point at it.

Filesystem steps (COPY, ADD, WORKDIR) work in a temporary snapshot on top of
the state's layers, mounted in a temp dir; the snapshot's upper dir becomes
the step's layer. `images.creating()` is held throughout, so a concurrent
garbage collection can't sweep the snapshot or the blobs before the image
that references them exists; a build killed midway leaves only unreferenced
snapshots and blobs, which the next collection removes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from freight.archive import inroot
from freight.builder.layercommit import commit_step
from freight.oci.digest import Digest
from freight.oci.image import ContainerConfig as OciConfig
from freight.oci.image import HistoryEntry, ImageConfig, Manifest
from freight.services import mounting
from freight.services.images import ImageService, NewLayer

BUILD_SNAPSHOT_PREFIX = "build-"


@dataclass
class State:
    image_id: str  # "" until something is stored (FROM scratch)
    config: ImageConfig
    layers: list[NewLayer]
    key: str  # the cache key chain so far

    @property
    def oci(self) -> OciConfig:
        return self.config.config

    def env(self) -> dict[str, str]:
        pairs = (e.split("=", 1) for e in self.oci.env or [])
        return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


def load_state(images: ImageService, image_id: str, key: str) -> State:
    config = images.config(image_id)
    row = images.meta.image(image_id)
    manifest = Manifest.from_json(images.content.read(Digest(row.manifest)))
    layers = [
        NewLayer(d.digest, d.size, d.media_type, diff_id)
        for d, diff_id in zip(manifest.layers, config.rootfs_diff_ids, strict=True)
    ]
    return State(image_id, config, layers, key)


def with_config(state: State, entry: HistoryEntry, **changes: object) -> ImageConfig:
    """The state's image config with `changes` to its container config and one more history entry."""
    oci = replace(state.oci, **changes) if changes else state.oci
    return replace(state.config, config=oci, history=[*state.config.history, entry])


def store(
    images: ImageService, state: State, config: ImageConfig, layer: NewLayer | None, key: str
) -> State:
    layers = [*state.layers, layer] if layer else state.layers
    if layer:
        config = replace(config, rootfs_diff_ids=[*config.rootfs_diff_ids, layer.diff_id])
    image_id = images.store_image(config.to_json(), layers, [], parent=state.image_id)
    return State(image_id, config, layers, key)


def chain_id(images: ImageService, state: State) -> str | None:
    if not state.layers:
        return None
    return images.meta.image(state.image_id).chain_id or None


@contextlib.contextmanager
def mounted_view(images: ImageService, state: State) -> Iterator[Path]:
    """The state's filesystem, read-only, in a temp dir (COPY --from, RUN --mount=from=)."""
    key = BUILD_SNAPSHOT_PREFIX + "view-" + secrets.token_hex(8)
    parent = chain_id(images, state)
    with images.creating(), tempfile.TemporaryDirectory(prefix="freight-build-") as tmp:
        target = Path(tmp)
        if parent is None:
            yield target  # scratch: an empty directory
            return
        mounts = images.snapshots.view(key, parent)
        try:
            mounting.mount_all(mounts, target)
            try:
                yield target
            finally:
                mounting.unmount(target)
        finally:
            images.snapshots.remove(key)


def filesystem_step(
    images: ImageService,
    state: State,
    change: Callable[[Path], None],
    max_mtime: int | None,
) -> NewLayer | None:
    """Run `change(root)` on a writable copy of the state's filesystem; its layer, or
    None when nothing changed. The caller holds `images.creating()` until stored."""
    key = BUILD_SNAPSHOT_PREFIX + secrets.token_hex(8)
    mounts = images.snapshots.prepare(key, chain_id(images, state))
    adopted = False
    try:
        with tempfile.TemporaryDirectory(prefix="freight-build-") as tmp:
            target = Path(tmp)
            mounting.mount_all(mounts, target)
            try:
                change(target)
            finally:
                mounting.unmount(target)
        if not _has_entries(images.snapshots.upper_dir(key)):
            return None
        layer, adopted = commit_step(images, state.config.rootfs_diff_ids, key, [], max_mtime)
        return layer
    finally:
        if not adopted:
            images.snapshots.remove(key)


def make_dirs(root: Path, path: str) -> None:
    """mkdir -p of container path `path`, symlinks on the way resolved inside `root`."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        resolved = inroot.resolve(fd, path)
    finally:
        os.close(fd)
    target = root / resolved.lstrip("/")
    if not target.is_dir():
        target.mkdir(mode=0o755, parents=True, exist_ok=True)


def _has_entries(directory: Path) -> bool:
    with os.scandir(directory) as it:
        return any(True for _ in it)
