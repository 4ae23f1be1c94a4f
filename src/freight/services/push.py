"""`docker push`: send an image's blobs that the registry lacks (HEAD first;
a cross-repository mount when another repository on the same registry has
the blob, as far as our RepoDigests tell), then PUT its manifest as stored,
byte for byte, so the pushed digest is the one recorded as RepoDigest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from freight.distribution.auth import ANONYMOUS, Credentials
from freight.distribution.client import RegistryClient, RegistryError
from freight.dockerapi.jsonmessage import (
    JSONMessage,
    ProgressDetail,
    aux_message,
    progress_message,
    status_message,
)
from freight.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from freight.oci import mediatypes
from freight.oci import reference as refs
from freight.oci.digest import Digest
from freight.oci.image import Descriptor, Manifest
from freight.services.images import ImageService
from freight.services.registries import Registries

Emit = Callable[[JSONMessage], None]


class PushService:
    def __init__(self, images: ImageService, registries: Registries) -> None:
        self.images = images
        self.registries = registries
        self.chunk_size = 0  # 0: monolithic PUT; else PATCH chunks of this size

    def targets(self, name: str, tag: str = "") -> list[refs.Reference]:
        """The tagged references to push (checked before the response starts)."""
        ref = refs.parse_normalized(name, default_tag=False)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        if tag:
            ref = ref.with_tag(tag)
        if ref.tag:
            self.images.resolve(str(ref))  # NotFound: "No such image"
            return [ref]
        prefix = ref.name + ":"
        found = [
            refs.parse_normalized(t)
            for image in self.images.meta.images()
            for t in self.images.meta.tags_of(image.id)
            if t.startswith(prefix) and "@" not in t
        ]
        if not found:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
        return sorted(found, key=str)

    def push(
        self, refs_to_push: list[refs.Reference], emit: Emit, credentials: Credentials = ANONYMOUS
    ) -> None:
        first = refs_to_push[0]
        emit(status_message(f"The push refers to repository [{first.name}]"))
        with self.registries.client(first.domain, credentials) as client:
            for ref in refs_to_push:
                try:
                    self._push_one(client, ref, emit)
                except RegistryError as e:
                    raise _push_error(e, ref) from None
                image_id = self.images.resolve(str(ref))
                self.images.publish_event(
                    "push", ref.familiar_string(), ref.familiar_name(), image_id
                )

    def _push_one(self, client: RegistryClient, ref: refs.Reference, emit: Emit) -> None:
        image_id = self.images.resolve(str(ref))
        row = self.images.meta.image(image_id)
        manifest_bytes = self.images.content.read(Digest(row.manifest))
        manifest = Manifest.from_json(manifest_bytes)
        layers = list(reversed(manifest.layers))  # as docker lists them: top first
        for d in layers:
            emit(status_message("Preparing", d.digest.short(), ProgressDetail()))
        sources = self._mount_sources(ref)
        workers = max(1, min(self.registries.options.max_concurrent_uploads, len(layers) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self._push_blob, client, ref, d, sources, emit) for d in layers]
            errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        self._push_blob(client, ref, manifest.config, sources, None)
        media_type = manifest.media_type or mediatypes.OCI_MANIFEST
        digest = client.put_manifest(ref.path, ref.tag or "latest", manifest_bytes, media_type)
        self.images.meta.tag(str(ref.name_only().with_digest(digest)), image_id)
        size = len(manifest_bytes)
        emit(status_message(f"{ref.tag}: digest: {digest} size: {size}"))
        emit(aux_message({"Tag": ref.tag, "Digest": str(digest), "Size": size}))

    def _mount_sources(self, ref: refs.Reference) -> dict[str, str]:
        """blob digest -> another repository on the same registry that has it."""
        out: dict[str, str] = {}
        for image in self.images.meta.images():
            for t in self.images.meta.tags_of(image.id):
                if "@" not in t:
                    continue
                other = refs.parse_normalized(t)
                if other.domain != ref.domain or other.path == ref.path:
                    continue
                try:
                    m = Manifest.from_json(self.images.content.read(Digest(image.manifest)))
                except NotFound:
                    continue
                for d in [*m.layers, m.config]:
                    out.setdefault(str(d.digest), other.path)
        return out

    def _push_blob(
        self,
        client: RegistryClient,
        ref: refs.Reference,
        d: Descriptor,
        sources: dict[str, str],
        emit: Emit | None,
    ) -> None:
        short = d.digest.short()
        say = emit or (lambda m: None)
        if client.blob_exists(ref.path, d.digest, f"repository:{ref.path}:pull,push"):
            say(status_message("Layer already exists", short, ProgressDetail()))
            return
        location = None
        source = sources.get(str(d.digest))
        if source:
            location = client.mount_blob(ref.path, d.digest, source)
            if location is None:
                say(status_message(f"Mounted from {source}", short, ProgressDetail()))
                return
        content = self.images.content
        size = content.info(d.digest).size
        last = [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or done == size:
                last[0] = now
                say(progress_message("Pushing", short, done, size))

        client.upload_blob(
            ref.path,
            d.digest,
            size,
            lambda: content.open(d.digest),
            progress,
            self.chunk_size,
            location,
        )
        say(status_message("Pushed", short, ProgressDetail()))


def _push_error(e: RegistryError, ref: refs.Reference) -> Exception:
    if e.status in (401, 403) or e.code in ("UNAUTHORIZED", "DENIED"):
        return PermissionDenied(
            f"denied: requested access to the resource is denied ({ref.familiar_name()})"
            if e.status == 403 or e.code == "DENIED"
            else f"unauthorized: {e.message or 'authentication required'}"
        )
    return Unavailable(f"pushing {ref.familiar_string()}: {e.code.lower()}: {e.message}")
