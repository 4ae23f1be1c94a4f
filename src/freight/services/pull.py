"""`docker pull`: resolve a reference to one platform's manifest, download the
layers it lacks (concurrently, each checked for size and digest before it is
committed to the content store), unpack them through `ImageService.store_image`
and name the image, reporting Docker's JSON progress messages as it goes.

Nothing is tagged unless every blob verified and every layer unpacked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from freight.distribution import platforms
from freight.distribution.auth import ANONYMOUS, Credentials
from freight.distribution.client import RegistryClient, RegistryError
from freight.dockerapi.jsonmessage import (
    JSONMessage,
    ProgressDetail,
    progress_message,
    status_message,
)
from freight.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from freight.oci import mediatypes
from freight.oci import reference as refs
from freight.oci.digest import Digest
from freight.oci.image import ImageConfig, Index, Manifest
from freight.services.images import ImageService, NewLayer
from freight.services.registries import Registries

log = logging.getLogger(__name__)

Emit = Callable[[JSONMessage], None]
MAX_CONFIG = 8 << 20
PROGRESS_EVERY = 0.1  # seconds between Downloading messages per layer


@dataclass
class PullPlan:
    """A resolved pull: the manifest and config fetched, nothing stored yet."""

    ref: refs.Reference  # with tag or digest
    client: RegistryClient
    manifest_bytes: bytes
    manifest_media_type: str
    manifest: Manifest
    digest: Digest  # what the reference resolved to (index digest if an index)
    config_bytes: bytes
    config: ImageConfig


def parse_pull_ref(name: str, tag: str = "") -> refs.Reference:
    ref = refs.parse_normalized(name, default_tag=False)
    if tag:
        is_digest = tag.startswith("sha256:")
        ref = ref.with_digest(Digest.parse(tag)) if is_digest else ref.with_tag(tag)
    if not ref.tag and not ref.digest:
        ref = ref.with_tag(refs.DEFAULT_TAG)
    return ref


class PullService:
    def __init__(self, images: ImageService, registries: Registries) -> None:
        self.images = images
        self.registries = registries

    # resolve (before the response starts: failures are HTTP errors) --------

    def resolve(
        self, ref: refs.Reference, platform: str = "", credentials: Credentials = ANONYMOUS
    ) -> PullPlan:
        wanted = platforms.parse_platform(platform)
        last: Exception | None = None
        for client in self.registries.clients(ref.domain, credentials):
            try:
                return self._resolve_at(client, ref, wanted)
            except (Unavailable, RegistryError, NotFound, PermissionDenied) as e:
                client.close()
                last = e  # a mirror that fails or lacks it: the next endpoint
        assert last is not None
        raise _docker_error(last, ref)

    def resolve_all_tags(
        self, ref: refs.Reference, platform: str = "", credentials: Credentials = ANONYMOUS
    ) -> list[PullPlan]:
        """`docker pull -a`: a plan for every tag the registry lists."""
        with self.registries.client(ref.domain, credentials) as client:
            try:
                tags = client.tags(ref.path)
            except RegistryError as e:
                raise _docker_error(e, ref) from None
        if not tags:
            raise NotFound(f"no tags found for {ref.familiar_name()}")
        return [self.resolve(ref.name_only().with_tag(t), platform, credentials) for t in tags]

    def execute_all(self, plans: list[PullPlan], emit: Emit) -> None:
        try:
            for plan in plans:
                self.execute(plan, emit, quiet_status=True)
        finally:
            for plan in plans:
                plan.client.close()
        name = plans[0].ref.name_only().familiar_name()
        emit(status_message(f"Status: Downloaded newer images for {name}"))

    def _resolve_at(
        self, client: RegistryClient, ref: refs.Reference, wanted: tuple[str, str, str]
    ) -> PullPlan:
        fetched = client.get_manifest(ref.path, str(ref.digest or ref.tag))
        top_digest = fetched.digest
        if mediatypes.is_index(fetched.media_type):
            entry = platforms.select(Index.from_json(fetched.data), wanted)
            fetched = client.get_manifest(ref.path, str(entry.digest), (entry.media_type,))
            if not mediatypes.is_manifest(fetched.media_type):
                raise InvalidArgument(f"index entry {entry.digest} is not an image manifest")
        manifest = Manifest.from_json(fetched.data)
        if manifest.config.media_type not in mediatypes.CONFIGS:
            raise InvalidArgument(f"unsupported config media type: {manifest.config.media_type!r}")
        for layer in manifest.layers:
            if not mediatypes.is_layer(layer.media_type):
                raise InvalidArgument(f"unsupported layer media type: {layer.media_type!r}")
        config_bytes = self._config(client, ref, manifest)
        config = ImageConfig.from_json(config_bytes)
        if len(config.rootfs_diff_ids) != len(manifest.layers):
            raise InvalidArgument(
                f"the image config lists {len(config.rootfs_diff_ids)} diff ids for "
                f"{len(manifest.layers)} layers"
            )
        return PullPlan(
            ref,
            client,
            fetched.data,
            fetched.media_type,
            manifest,
            top_digest,
            config_bytes,
            config,
        )

    def _config(self, client: RegistryClient, ref: refs.Reference, manifest: Manifest) -> bytes:
        desc = manifest.config
        if self.images.content.exists(desc.digest):
            return self.images.content.read(desc.digest)
        if desc.size > MAX_CONFIG:
            raise InvalidArgument(f"image config {desc.digest} is too big: {desc.size} bytes")
        buf = _Buffer()
        client.download_blob(ref.path, desc.digest, desc.size, lambda: buf.reset())
        data = bytes(buf.data)
        if Digest.of(data) != desc.digest or len(data) != desc.size:
            raise InvalidArgument(f"image config verification failed for digest {desc.digest}")
        return data

    # execute (streams progress) ------------------------------------------

    def execute(self, plan: PullPlan, emit: Emit, quiet_status: bool = False) -> str:
        """Download, verify, unpack and tag; `quiet_status` leaves out the final Status line."""
        try:
            image_id = self._execute(plan, emit, quiet_status)
        finally:
            plan.client.close()
        ref = plan.ref
        self.images.publish_event("pull", ref.familiar_string(), ref.familiar_name(), image_id)
        return image_id

    def _execute(self, plan: PullPlan, emit: Emit, quiet_status: bool) -> str:
        ref = plan.ref
        emit(status_message(f"Pulling from {ref.path}", ref.tag or str(ref.digest)))
        tags = [str(ref)] if ref.tag and not ref.digest else []
        repo_digest = str(ref.name_only().with_digest(plan.digest))
        image_id = str(plan.manifest.config.digest)
        if self._present(image_id):
            for t in [*tags, repo_digest]:
                self.images.meta.tag(t, image_id)
            emit(status_message(f"Digest: {plan.digest}"))
            if not quiet_status:
                emit(status_message(f"Status: Image is up to date for {ref.familiar_string()}"))
            return image_id
        layers = plan.manifest.layers
        with self.images.creating():
            missing = []
            for d in layers:
                if self.images.content.exists(d.digest):
                    emit(status_message("Already exists", d.digest.short(), ProgressDetail()))
                elif d not in missing:
                    missing.append(d)
                    emit(status_message("Pulling fs layer", d.digest.short(), ProgressDetail()))
            workers = self.registries.options.max_concurrent_downloads
            new_layers = [
                NewLayer(d.digest, d.size, d.media_type, diff)
                for d, diff in zip(layers, plan.config.rootfs_diff_ids, strict=True)
            ]
            pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(missing) or 1)))
            try:
                futures = {
                    d.digest: pool.submit(self._download, plan, d.digest, d.size, emit)
                    for d in missing
                }
                # Unpack bottom up as soon as each layer is in, while the rest download.
                for i, d in enumerate(layers):
                    future = futures.pop(d.digest, None)
                    if future is None:
                        continue
                    future.result()
                    emit(progress_message("Extracting", d.digest.short(), 0, d.size))
                    self.images.unpack_layers(new_layers[: i + 1])
                    emit(status_message("Pull complete", d.digest.short(), ProgressDetail()))
            finally:
                for f in futures.values():
                    f.cancel()
                pool.shutdown(wait=True)
            image_id = self.images.store_image(
                plan.config_bytes, new_layers, [*tags, repo_digest], plan.manifest_bytes
            )
        emit(status_message(f"Digest: {plan.digest}"))
        if not quiet_status:
            emit(status_message(f"Status: Downloaded newer image for {ref.familiar_string()}"))
        return image_id

    def _present(self, image_id: str) -> bool:
        try:
            self.images.meta.image(image_id)
        except NotFound:
            return False
        return True

    def _download(self, plan: PullPlan, digest: Digest, size: int, emit: Emit) -> None:
        short = digest.short()
        content = self.images.content
        writers: list = []

        def open_sink():
            # The first sink goes on from what an earlier, cut-short pull left;
            # a second one (the registry ignored Range) starts from zero.
            resume = not writers
            for w in writers:
                w.abort()
            writers.clear()
            writers.append(content.writer(f"pull-{digest.hex}", resume=resume))
            return writers[0]

        last = [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY or done == size:
                last[0] = now
                emit(progress_message("Downloading", short, done, size))

        try:
            sink = plan.client.download_blob(plan.ref.path, digest, size, open_sink, progress)
            emit(status_message("Verifying Checksum", short, ProgressDetail()))
            if sink.digest() != digest:
                raise InvalidArgument(f"filesystem layer verification failed for digest {digest}")
            sink.commit(digest, size)
            emit(status_message("Download complete", short, ProgressDetail()))
        except RegistryError as e:
            raise _docker_error(e, plan.ref) from None
        except Unavailable:
            for w in writers:
                w.suspend()  # the network failed, not the data: a later pull resumes
            raise
        finally:
            for w in writers:
                w.abort()


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()
        self.offset = 0

    def reset(self) -> _Buffer:
        self.data = bytearray()
        self.offset = 0
        return self

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        self.offset += len(chunk)
        return len(chunk)


def _docker_error(e: Exception, ref: refs.Reference) -> Exception:
    """Docker's wording for what the registry said."""
    if not isinstance(e, RegistryError):
        return e
    if e.code == "MANIFEST_UNKNOWN" or (e.status == 404 and e.code != "NAME_UNKNOWN"):
        return NotFound(
            f"manifest for {ref.familiar_string()} not found: manifest unknown: {e.message or 'manifest unknown'}"
        )
    if e.code in ("NAME_UNKNOWN", "UNAUTHORIZED", "DENIED") or e.status in (401, 403):
        return NotFound(
            f"pull access denied for {ref.familiar_name()}, repository does not exist or may "
            "require 'docker login': denied: requested access to the resource is denied"
        )
    return Unavailable(f"{ref.domain}: {e.code.lower()}: {e.message}")
