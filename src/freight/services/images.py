"""Images: store, name, look up, unpack and remove them.

An image is a manifest and a config in the content store, its layers
unpacked once each into committed snapshots named by ChainID (so images that
share base layers share their snapshots), and a row in the metadata DB that
ties them together. Tags map a full reference to an image id (the config
digest, as in Docker).

Write order makes a crash harmless: blobs, then snapshots, then one metadata
transaction. What a crash leaves before the transaction is unreferenced and
is swept by `collect_garbage` at daemon start.
"""

from __future__ import annotations

import logging
import platform
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from freight.archive import layers as layer_archive
from freight.archive.compression import decompressed, decompression_errors
from freight.content import ContentStore
from freight.errors import Conflict, InvalidArgument, NotFound
from freight.metadata.store import ImageRow, MetadataStore
from freight.oci import mediatypes
from freight.oci import reference as refs
from freight.oci.digest import Digest
from freight.oci.image import ContainerConfig as OciContainerConfig
from freight.oci.image import Descriptor, HistoryEntry, ImageConfig, Manifest, chain_ids
from freight.services.clock import now_rfc3339
from freight.services.events import EventBus
from freight.services.model import ContainerConfig, ImageSummary
from freight.snapshots import Mount, OverlaySnapshotter

log = logging.getLogger(__name__)

EXTRACT_PREFIX = "extract-"


@dataclass(frozen=True)
class NewLayer:
    """A layer blob already in the content store, with what it unpacks to."""

    digest: Digest
    size: int
    media_type: str
    diff_id: Digest


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


class ImageService:
    def __init__(
        self,
        content: ContentStore,
        snapshots: OverlaySnapshotter,
        meta: MetadataStore,
        events: EventBus | None = None,
    ) -> None:
        self.content = content
        self.events = events or EventBus()  # the daemon's bus (wiring.py)
        self.snapshots = snapshots
        self.meta = meta
        self._unpack_lock = threading.Lock()
        # Image creations in flight (import, commit, load): their blobs are not
        # referenced yet, so garbage collection leaves blobs alone meanwhile.
        self._creating = 0
        self._creating_lock = threading.Lock()
        self.containers_using: Callable[[str], list[str]] = lambda image_id: [
            row.id for row in meta.containers_using(image_id)
        ]

    # lookup -----------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """Image id for a reference, full id, or unique id prefix (Docker's order)."""
        if refs.is_full_id(name) or name.startswith("sha256:"):
            full = name if name.startswith("sha256:") else "sha256:" + name
            ids = self.meta.image_ids_with_prefix(full)
            if len(ids) == 1:
                return ids[0]
            raise NotFound(f"No such image: {name}")
        try:
            ref = refs.parse_normalized(name)
        except InvalidArgument:
            ref = None
        if ref is not None:
            image_id = self.meta.resolve_tag(str(_tagged(ref)))
            if image_id:
                return image_id
        if refs.looks_like_id_prefix(name):
            ids = self.meta.image_ids_with_prefix("sha256:" + name)
            if len(ids) == 1:
                return ids[0]
        raise NotFound(f"No such image: {_display(ref, name)}")

    def get(self, name: str) -> ImageSummary:
        return self._summary(self.meta.image(self.resolve(name)))

    def list(self) -> list[ImageSummary]:
        return [self._summary(row) for row in self.meta.images()]

    def config(self, image_id: str) -> ImageConfig:
        return ImageConfig.from_json(self.content.read(Digest(image_id)))

    def default_config(self, image_id: str) -> ContainerConfig:
        """The image's config as the defaults of a new container."""
        return to_container_config(self.config(image_id).config)

    def _summary(self, row: ImageRow) -> ImageSummary:
        tags = self.meta.tags_of(row.id)
        return ImageSummary(
            id=row.id,
            repo_tags=[refs.parse_normalized(t).familiar_string() for t in tags if "@" not in t],
            repo_digests=[refs.parse_normalized(t).familiar_string() for t in tags if "@" in t],
            created=row.created,
            size=row.size,
            parent=row.parent,
            config=self.config(row.id),
            manifest_digest=row.manifest,
            chain_id=row.chain_id,
        )

    def history(self, name: str) -> list[tuple[HistoryEntry, int, str]]:
        """Newest first: (entry, layer size, image id or '<missing>')."""
        image = self.get(name)
        sizes = self._layer_sizes(image)
        rows = []
        layer_index = 0
        for entry in image.config.history:
            size = 0
            if not entry.empty_layer:
                size = sizes[layer_index] if layer_index < len(sizes) else 0
                layer_index += 1
            rows.append((entry, size, "<missing>"))
        if rows:
            entry, size, _ = rows[-1]
            rows[-1] = (entry, size, image.id)
        return list(reversed(rows))

    def _layer_sizes(self, image: ImageSummary) -> list[int]:
        manifest = Manifest.from_json(self.content.read(Digest(image.manifest_digest)))
        return [d.size for d in manifest.layers]

    # naming -----------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        image_id = self.resolve(source)
        ref = refs.parse_normalized(target)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.meta.tag(str(_tagged(ref)), image_id)
        self.publish_event("tag", image_id, _tagged(ref).familiar_string())

    def publish_event(self, action: str, actor_id: str, name: str, image_id: str = "") -> None:
        """An image event as dockerd logs it: the image's labels, and `name`.

        `actor_id` is the image id, or the reference for pull/push; `image_id`
        says whose labels to copy when the actor is a reference.
        """
        attrs: dict[str, str] = {}
        try:
            labels = self.default_config(image_id or actor_id).labels
            attrs.update(labels or {})
        except Exception:  # deleted, or a reference that names nothing here
            pass
        attrs["name"] = name
        self.events.publish("image", action, actor_id, attrs)

    def remove(self, name: str, force: bool = False) -> list[dict[str, str]]:
        """Untag or delete, as `docker rmi`: returns Docker's Untagged/Deleted list."""
        image_id = self.resolve(name)
        result = self._remove(name, image_id, force)
        for item in result:
            if "Untagged" in item:
                self.publish_event("untag", image_id, image_id)
            if "Deleted" in item:
                self.publish_event("delete", image_id, image_id)
        return result

    def _remove(self, name: str, image_id: str, force: bool) -> list[dict[str, str]]:
        tags = self.meta.tags_of(image_id)
        # RepoDigests (name@digest) don't keep an image: removing its last tag
        # removes them too, as in docker.
        named = [t for t in tags if "@" not in t]
        by_ref = self._tag_named(name)
        others = len(named) > 1 if by_ref and "@" not in by_ref else len(tags) > 1
        if by_ref and others and not force:
            self.meta.untag(by_ref)
            return [{"Untagged": _familiar(by_ref)}]
        users = self.containers_using(image_id)
        if users and not force:
            short = image_id.removeprefix("sha256:")[:12]
            target = name if by_ref else short  # moby quotes the reference as given
            raise Conflict(
                f'conflict: unable to remove repository reference "{target}" (must force) '
                f"- container {users[0][:12]} is using its referenced image {short}"
                if by_ref
                else f"conflict: unable to delete {short} (must be forced) - image is being "
                f"used by stopped container {users[0][:12]}"
            )
        if by_ref and others:
            self.meta.untag(by_ref)
            return [{"Untagged": _familiar(by_ref)}]
        result = [{"Untagged": _familiar(t)} for t in tags]
        if users:
            for t in tags:
                self.meta.untag(t)
            return result
        self.meta.delete_image(image_id)
        result.append({"Deleted": image_id})
        self.collect_garbage()
        return result

    def _tag_named(self, name: str) -> str | None:
        try:
            full = str(_tagged(refs.parse_normalized(name)))
        except InvalidArgument:
            return None
        return full if self.meta.resolve_tag(full) else None

    # creating images --------------------------------------------------------

    def store_layer_stream(self, stream: BinaryIO) -> NewLayer:
        """Save an (optionally compressed) layer tar as an uncompressed blob.

        The uncompressed form is kept so the blob digest is the diff id; push
        compresses on the way out.
        """
        writer = self.content.writer(f"import-{secrets.token_hex(8)}")
        try:
            _, plain = decompressed(stream)
            while chunk := plain.read(1 << 20):
                writer.write(chunk)
            digest = writer.commit(None, None)
        except decompression_errors() as e:
            writer.abort()
            raise InvalidArgument(f"the archive is truncated or corrupt: {e}") from None
        except BaseException:
            writer.abort()
            raise
        size = self.content.info(digest).size
        return NewLayer(digest, size, mediatypes.OCI_LAYER, digest)

    def create_image(
        self,
        layers: list[NewLayer],
        config: ContainerConfig,
        tags: list[str],
        history: list[HistoryEntry],
        created: str | None = None,
        parent: str = "",
    ) -> str:
        """Unpack the layers, write config and manifest, then name the image."""
        created = created or now_rfc3339()
        image_config = ImageConfig(
            architecture=host_architecture(),
            os="linux",
            config=to_oci_config(config),
            rootfs_diff_ids=[layer.diff_id for layer in layers],
            history=history,
            created=created,
        )
        return self.store_image(image_config.to_json(), layers, tags, parent=parent)

    def store_image(
        self,
        config_bytes: bytes,
        layers: list[NewLayer],
        tags: list[str],
        manifest_bytes: bytes | None = None,
        parent: str = "",
    ) -> str:
        """Make an image of a config (kept byte for byte) and layer blobs already stored.

        Layers are unpacked (each checked against the config's diff id), then the
        config and manifest blobs are written, then one metadata transaction makes
        the image and its tags visible. Without `manifest_bytes` an OCI manifest is
        made. Returns the image id.
        """
        image_config = ImageConfig.from_json(config_bytes)
        if [str(d) for d in image_config.rootfs_diff_ids] != [str(lay.diff_id) for lay in layers]:
            raise InvalidArgument(
                "the image config's rootfs.diff_ids do not match its layers "
                f"({len(image_config.rootfs_diff_ids)} diff ids, {len(layers)} layers)"
            )
        chain = self._unpack([(layer.digest, layer.diff_id) for layer in layers])
        config_digest = self.content.put(config_bytes)
        if manifest_bytes is None:
            manifest = Manifest(
                config=Descriptor(mediatypes.OCI_CONFIG, config_digest, len(config_bytes)),
                layers=[Descriptor(lay.media_type, lay.digest, lay.size) for lay in layers],
            )
            manifest_bytes = manifest.to_json()
        manifest_digest = self.content.put(manifest_bytes)
        size = sum(layer.size for layer in layers)
        full_tags = [str(_tagged(refs.parse_normalized(t))) for t in tags]
        created = image_config.created or now_rfc3339()
        self.meta.put_image(
            ImageRow(config_digest, manifest_digest, chain, size, created, parent), full_tags
        )
        return config_digest

    @contextmanager
    def creating(self) -> Iterator[None]:
        """Hold while writing the blobs of an image not yet in the metadata DB."""
        with self._creating_lock:
            self._creating += 1
        try:
            yield
        finally:
            with self._creating_lock:
                self._creating -= 1

    # unpacking --------------------------------------------------------------

    def unpack_layers(self, layers: list[NewLayer]) -> str:
        """Snapshots for these stored layers, bottom first (a pull unpacks layer by
        layer while later ones download); returns the top ChainID."""
        return self._unpack([(layer.digest, layer.diff_id) for layer in layers])

    def adopt_snapshot(self, key: str, diff_ids: list[Digest]) -> str:
        """Commit active snapshot `key` as the snapshot of the layer stack `diff_ids`
        (its own layer last) instead of extracting that layer's blob: the caller
        guarantees the snapshot's upper dir holds what the blob unpacks to (a build
        step's changes, committed in place). Holds `creating()` until the image
        exists. If the stack has a snapshot already, `key` is removed. The ChainID."""
        chain = str(chain_ids(diff_ids)[-1])
        with self._unpack_lock:
            if self._snapshot_exists(chain):
                self.snapshots.remove(key)
            else:
                self.snapshots.commit(chain, key)
        return chain

    def _unpack(self, layers: list[tuple[Digest, Digest]]) -> str:
        """Make sure a committed snapshot exists for each layer; return the top ChainID."""
        diff_ids = [diff_id for _, diff_id in layers]
        chain = chain_ids(diff_ids)
        parent: str | None = None
        with self._unpack_lock:
            for (blob, diff_id), chain_id in zip(layers, chain, strict=True):
                if not self._snapshot_exists(chain_id):
                    self._unpack_one(blob, diff_id, chain_id, parent)
                parent = chain_id
        return parent or ""

    def _unpack_one(self, blob: Digest, diff_id: Digest, chain_id: str, parent: str | None) -> None:
        key = f"{EXTRACT_PREFIX}{chain_id}"
        if self._snapshot_exists(key):
            self.snapshots.remove(key)
        self.snapshots.prepare(key, parent)
        try:
            with self.content.open(blob) as stream:
                layer_archive.apply_layer(
                    stream,
                    self.snapshots.upper_dir(key),
                    whiteouts="overlay",
                    expected_diff_id=diff_id,
                )
            self.snapshots.commit(chain_id, key)
        except BaseException:
            self.snapshots.remove(key)
            raise

    def _snapshot_exists(self, key: str) -> bool:
        try:
            self.snapshots.stat(key)
        except NotFound:
            return False
        return True

    def prepare_rootfs(self, image_id: str, key: str) -> None:
        """A writable snapshot for a container on top of the image's layers."""
        row = self.meta.image(image_id)
        self.snapshots.prepare(key, row.chain_id or None)

    def rootfs_mounts(self, key: str) -> list[Mount]:
        return self.snapshots.mounts(key)

    def snapshot_dirs(self, key: str) -> dict[str, str]:
        try:
            return overlay_dirs(self.snapshots.mounts(key))
        except NotFound:
            return {}

    def image_dirs(self, image_id: str) -> dict[str, str]:
        """Docker's GraphDriver.Data of an image: its top layer's directory and the rest."""
        chain = self.meta.image(image_id).chain_id
        if not chain:
            return {}
        try:
            dirs = [str(d) for d in self.snapshots.layer_dirs(chain)]
        except NotFound:
            return {}
        data = {"UpperDir": dirs[0]}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(dirs[1:])
        return data

    def remove_rootfs(self, key: str) -> None:
        if self._snapshot_exists(key):
            self.snapshots.remove(key)

    # garbage collection -----------------------------------------------------

    def collect_garbage(self) -> None:
        """Mark from images and containers, sweep snapshots and blobs not reached."""
        with self._unpack_lock:
            if self._creating:
                return  # unreferenced yet, not garbage: the next collection sweeps
            live_snapshots, live_blobs = self._mark()
            self._sweep_snapshots(live_snapshots)
            for info in list(self.content.list()):
                if info.digest not in live_blobs:
                    self.content.delete(info.digest)

    def _mark(self) -> tuple[set[str], set[str]]:
        snapshots: set[str] = set()
        blobs: set[str] = set()
        for row in self.meta.images():
            blobs |= {row.manifest, row.id}
            try:
                manifest = Manifest.from_json(self.content.read(Digest(row.manifest)))
            except NotFound:
                continue
            blobs |= {d.digest for d in manifest.layers}
            snapshots |= set(chain_ids(self.config(row.id).rootfs_diff_ids))
        for row in self.meta.containers():
            snapshots.add("container-" + row.id)
        return snapshots, blobs

    def _sweep_snapshots(self, live: set[str]) -> None:
        # Children before parents: repeat while something was removed.
        removed = True
        while removed:
            removed = False
            for info in list(self.snapshots.walk()):
                if info.name in live:
                    continue
                try:
                    self.snapshots.remove(info.name)
                    removed = True
                except Conflict:
                    continue


def _tagged(ref: refs.Reference) -> refs.Reference:
    return ref if ref.tag or ref.digest else ref.with_tag(refs.DEFAULT_TAG)


def _familiar(full: str) -> str:
    return refs.parse_normalized(full).familiar_string()


def _display(ref: refs.Reference | None, name: str) -> str:
    return _tagged(ref).familiar_string() if ref else name


def to_container_config(oci: OciContainerConfig) -> ContainerConfig:
    return ContainerConfig(
        cmd=oci.cmd,
        entrypoint=oci.entrypoint,
        env=list(oci.env or []),
        working_dir=oci.working_dir or "",
        user=oci.user or "",
        labels=dict(oci.labels or {}),
        stop_signal=oci.stop_signal or "",
        exposed_ports={p: {} for p in oci.exposed_ports or []},
        volumes={v: {} for v in oci.volumes or []},
    )


def to_oci_config(c: ContainerConfig) -> OciContainerConfig:
    return OciContainerConfig(
        user=c.user or None,
        env=c.env or None,
        entrypoint=c.entrypoint,
        cmd=c.cmd,
        working_dir=c.working_dir or None,
        labels=c.labels or None,
        exposed_ports=sorted(c.exposed_ports) or None,
        volumes=sorted(c.volumes) or None,
        stop_signal=c.stop_signal or None,
    )


def overlay_dirs(mounts: list[Mount]) -> dict[str, str]:
    """Docker's GraphDriver.Data keys for a container's snapshot mounts."""
    data: dict[str, str] = {}
    for m in mounts:
        for opt in m.options:
            key, _, value = opt.partition("=")
            name = {"lowerdir": "LowerDir", "upperdir": "UpperDir", "workdir": "WorkDir"}.get(key)
            if name:
                data[name] = value
        if m.type == "bind":
            data["UpperDir"] = m.source
    return data
