"""`docker save` and `docker load`: images as one tar archive.

What `save` writes is both Docker's archive and an OCI image layout (as
`docker save` does since Docker 25), so `docker load`, skopeo
(`docker-archive:` and `oci-archive:`) and umoci all read it::

    blobs/sha256/<hex>     every manifest, config and layer, named by digest
    index.json             OCI index: one manifest per image, named by the
                           annotations io.containerd.image.name (full reference)
                           and org.opencontainers.image.ref.name (the tag)
    manifest.json          Docker's: [{"Config": "blobs/sha256/<config>",
                           "RepoTags": ["busybox:latest"], "Layers": [...]}]
    oci-layout             {"imageLayoutVersion": "1.0.0"}

`load` takes that, the legacy layout of `docker save` before Docker 25
(`<id>.json` configs, `<id>/layer.tar` layers, often symlinked between
images), a plain OCI image layout, each optionally gzip/xz/zstd compressed.

Loading is hostile-input code. The archive is read in one pass: every regular
file goes to the content store (files under `blobs/<alg>/` are verified
against their names there), the top-level JSON files are kept in memory.
Then every image is checked (configs parse, each layer is present, sizes and
diff ids agree) before the first one is stored, so a bad archive stores
nothing; a layer whose compressed bytes unpack to another diff id is caught
while unpacking, and that image is not made. Entry names may not climb out
of the archive, links may only point inside it, and device nodes are refused.
Blobs first, then one metadata transaction per image: a daemon killed while
loading leaves only unreferenced blobs, which garbage collection removes.
"""

from __future__ import annotations

import io
import json
import posixpath
import secrets
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from freight.archive.compression import Bounded, Compression, decompression_errors, detect
from freight.errors import FreightError, InvalidArgument
from freight.oci import mediatypes
from freight.oci import reference as refs
from freight.oci.digest import Digest
from freight.oci.image import Descriptor, ImageConfig, Index, Manifest, Platform
from freight.services.images import ImageService, NewLayer, host_architecture

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
METADATA_FILES = frozenset({"index.json", "manifest.json", "oci-layout", "repositories"})
MAX_METADATA_BYTES = 16 << 20
MAX_ENTRIES = 1 << 16
MAX_LINK_HOPS = 40
MAX_ARCHIVE_SIZE = 128 << 30  # uncompressed; with the expansion-ratio bound of Bounded
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'


# --- save ------------------------------------------------------------------


@dataclass
class SavedImage:
    image_id: str
    tags: list[str] = field(default_factory=list)  # full references


def save_targets(images: ImageService, names: Iterable[str]) -> list[SavedImage]:
    """What `docker save NAME…` saves: a bare repository name means all its tags."""
    by_id: dict[str, SavedImage] = {}
    for name in names:
        for image_id, tag in _targets_of(images, name):
            saved = by_id.setdefault(image_id, SavedImage(image_id))
            if tag and tag not in saved.tags:
                saved.tags.append(tag)
    if not by_id:
        raise InvalidArgument("no images to save")
    return list(by_id.values())


def _targets_of(images: ImageService, name: str) -> list[tuple[str, str]]:
    try:
        bare = refs.parse_normalized(name, default_tag=False)
    except InvalidArgument:
        bare = None
    if bare is not None and not bare.tag and not bare.digest:
        prefix = str(bare) + ":"
        found = [
            (image_id, tag)
            for row in images.meta.images()
            for tag in images.meta.tags_of(row.id)
            if tag.startswith(prefix) and (image_id := row.id)
        ]
        if found:
            return found
    image_id = images.resolve(name)
    tag = ""
    if bare is not None and (bare.tag or not bare.digest):
        full = str(bare if bare.tag else bare.with_tag(refs.DEFAULT_TAG))
        if images.meta.resolve_tag(full) == image_id:
            tag = full
    return [(image_id, tag)]


def save(images: ImageService, targets: list[SavedImage], out: BinaryIO) -> None:
    """Write the archive of `targets` to `out` (a stream: nothing is seeked)."""
    written: set[str] = set()
    index: list[Descriptor] = []
    docker_manifest: list[dict[str, Any]] = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(_dir_entry(d))
        for target in targets:
            row = images.meta.image(target.image_id)
            manifest_digest = Digest(row.manifest)
            manifest = Manifest.from_json(images.content.read(manifest_digest))
            for digest in [manifest_digest, manifest.config.digest] + [
                layer.digest for layer in manifest.layers
            ]:
                if digest not in written:
                    _add_blob(tar, images, Digest(digest))
                    written.add(digest)
            index += _index_entries(images, manifest_digest, manifest, target.tags)
            docker_manifest.append(
                {
                    "Config": _blob_path(manifest.config.digest),
                    "RepoTags": [_familiar(t) for t in target.tags] or None,
                    "Layers": [_blob_path(layer.digest) for layer in manifest.layers],
                }
            )
        _add_bytes(tar, "index.json", Index(manifests=index).to_json())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())
        _add_bytes(tar, "oci-layout", LAYOUT_VERSION)
    for target in targets:
        images.publish_event("save", target.image_id, target.image_id)


def _index_entries(
    images: ImageService, digest: Digest, manifest: Manifest, tags: list[str]
) -> list[Descriptor]:
    size = images.content.info(digest).size
    media_type = manifest.media_type or mediatypes.OCI_MANIFEST
    if not tags:
        return [Descriptor(media_type, digest, size)]
    return [
        Descriptor(
            media_type,
            digest,
            size,
            annotations={
                ANNOTATION_IMAGE_NAME: tag,
                ANNOTATION_REF_NAME: refs.parse_normalized(tag).tag or refs.DEFAULT_TAG,
            },
        )
        for tag in tags
    ]


def _blob_path(digest: str) -> str:
    d = Digest.parse(digest)
    return f"blobs/{d.algorithm}/{d.hex}"


def _familiar(full: str) -> str:
    return refs.parse_normalized(full).familiar_string()


def _dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def _add_blob(tar: tarfile.TarFile, images: ImageService, digest: Digest) -> None:
    info = tarfile.TarInfo(_blob_path(digest))
    info.size, info.mode = images.content.info(digest).size, 0o644
    with images.content.open(digest) as f:
        tar.addfile(info, f)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


# --- load: reading the archive ---------------------------------------------


@dataclass
class _Archive:
    """What one pass over the archive found."""

    metadata: dict[str, bytes] = field(default_factory=dict)  # top-level JSON files
    blobs: dict[str, Digest] = field(default_factory=dict)  # path -> stored blob
    links: dict[str, str] = field(default_factory=dict)  # path -> target path

    def resolve(self, path: str, what: str) -> Digest:
        path = _clean(path, what)
        for _ in range(MAX_LINK_HOPS):
            if path in self.blobs:
                return self.blobs[path]
            if path not in self.links:
                raise InvalidArgument(f"invalid archive: {what} {path!r} is missing")
            path = self.links[path]
        raise InvalidArgument(f"invalid archive: {what} {path!r}: too many levels of links")


def _clean(name: str, what: str) -> str:
    if "\x00" in name:
        raise InvalidArgument(f"invalid archive: {what} {name!r}: NUL byte in path")
    if name.startswith("/") or ".." in name.split("/"):
        raise InvalidArgument(f"invalid archive: {what} {name!r}: path escapes the archive")
    return posixpath.normpath(name).removeprefix("./")


def _read_archive(images: ImageService, stream: BinaryIO) -> _Archive:
    archive = _Archive()
    plain = Bounded(stream, "image archive", MAX_ARCHIVE_SIZE)
    try:
        with tarfile.open(fileobj=plain, mode="r|") as tar:  # type: ignore[call-overload]
            count = 0
            while (member := tar.next()) is not None:
                tar.members.clear()
                count += 1
                if count > MAX_ENTRIES:
                    raise InvalidArgument(f"invalid archive: more than {MAX_ENTRIES} entries")
                _read_member(images, archive, tar, member)
    except (tarfile.TarError, *decompression_errors()) as e:
        raise InvalidArgument(f"invalid archive: truncated or corrupt tar: {e}") from None
    if not archive.metadata and not archive.blobs:
        raise InvalidArgument("invalid archive: it is empty")
    return archive


def _read_member(
    images: ImageService, archive: _Archive, tar: tarfile.TarFile, member: tarfile.TarInfo
) -> None:
    name = _clean(member.name, "entry")
    if member.isdir() or name == ".":
        return
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            raise InvalidArgument(f"invalid archive: link {name!r} points outside the archive")
        joined = posixpath.join(posixpath.dirname(name), target)
        archive.links[name] = _clean(_no_escape(joined, name), "link target")
        return
    if member.islnk():
        archive.links[name] = _clean(member.linkname, "link target")
        return
    if not member.isreg():
        raise InvalidArgument(f"invalid archive: entry {name!r} is not a file or a directory")
    data = tar.extractfile(member)
    assert data is not None
    if name in METADATA_FILES:
        if member.size > MAX_METADATA_BYTES:
            raise InvalidArgument(f"invalid archive: {name} is larger than {MAX_METADATA_BYTES}")
        archive.metadata[name] = data.read()
        return
    archive.blobs[name] = _store_blob(images, name, data, member.size)


def _no_escape(joined: str, name: str) -> str:
    depth = 0
    for part in joined.split("/"):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            raise InvalidArgument(f"invalid archive: link {name!r} points outside the archive")
    return posixpath.normpath(joined)


def _store_blob(images: ImageService, name: str, data: BinaryIO, size: int) -> Digest:
    """Into the content store; a file under blobs/<alg>/<hex> must have that digest."""
    expected = _named_digest(name)
    writer = images.content.writer(f"load-{secrets.token_hex(8)}")
    try:
        while chunk := data.read(1 << 20):
            writer.write(chunk)
        if writer.offset != size:
            raise InvalidArgument(f"invalid archive: {name!r} is truncated")
        actual = writer.digest()
        if expected is not None and actual != expected:
            raise InvalidArgument(
                f"invalid archive: blob {name!r} has digest {actual}, not the {expected} "
                "its name says"
            )
        return writer.commit(expected, size)
    except BaseException:
        writer.abort()
        raise


def _named_digest(name: str) -> Digest | None:
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != "blobs":
        return None
    if parts[1] != "sha256":
        raise InvalidArgument(f"invalid archive: {name!r}: unsupported digest algorithm")
    try:
        return Digest.parse(f"{parts[1]}:{parts[2]}")
    except (InvalidArgument, ValueError):
        raise InvalidArgument(f"invalid archive: {name!r} is not named by a digest") from None


# --- load: making images -----------------------------------------------------


@dataclass
class _Candidate:
    config_digest: Digest
    config_bytes: bytes
    layers: list[NewLayer]
    manifest_bytes: bytes | None
    tags: list[str] = field(default_factory=list)  # full references


def load(images: ImageService, stream: BinaryIO, report: Callable[[str], None]) -> list[str]:
    """Load every image of the archive; `report` gets Docker's "Loaded image: …" lines."""
    loaded: list[str] = []
    try:
        with images.creating():
            archive = _read_archive(images, stream)
            candidates = _candidates(images, archive)
            for cand in candidates:
                moved = _moved_tags(images, cand)
                image_id = images.store_image(
                    cand.config_bytes, cand.layers, cand.tags, cand.manifest_bytes
                )
                loaded.append(image_id)
                for tag in cand.tags:  # as dockerd: a tag event per name, then load
                    images.publish_event("tag", image_id, _familiar(tag))
                images.publish_event("load", image_id, image_id)
                for line in moved:
                    report(line)
                for tag in cand.tags:
                    report(f"Loaded image: {_familiar(tag)}")
                if not cand.tags:
                    report(f"Loaded image ID: {image_id}")
    except BaseException:
        images.collect_garbage()  # what a refused archive stored goes again
        raise
    return loaded


def _moved_tags(images: ImageService, cand: _Candidate) -> list[str]:
    lines = []
    for tag in cand.tags:
        old = images.meta.resolve_tag(tag)
        if old and old != cand.config_digest:
            lines.append(
                f"The image {_familiar(tag)} already exists, renaming the old one with ID "
                f"{old} to empty string"
            )
    return lines


def _candidates(images: ImageService, archive: _Archive) -> list[_Candidate]:
    found: dict[str, _Candidate] = {}
    if "index.json" in archive.metadata:
        for cand in _from_index(images, archive):
            _merge(found, cand)
    if "manifest.json" in archive.metadata:
        for cand in _from_docker_manifest(images, archive):
            _merge(found, cand)
    if not found:
        if "index.json" in archive.metadata or "manifest.json" in archive.metadata:
            raise InvalidArgument("invalid archive: it holds no images")
        raise InvalidArgument(
            "invalid archive: no manifest.json or index.json (not an archive of "
            "'docker save' nor an OCI image layout)"
        )
    for cand in found.values():
        _check_layers(images, cand)
    return list(found.values())


def _merge(found: dict[str, _Candidate], cand: _Candidate) -> None:
    known = found.get(cand.config_digest)
    if known is None:
        found[cand.config_digest] = cand
        return
    known.tags += [t for t in cand.tags if t not in known.tags]
    if known.manifest_bytes is None:
        known.manifest_bytes, known.layers = cand.manifest_bytes, cand.layers


def _json(archive: _Archive, name: str) -> Any:
    try:
        return json.loads(archive.metadata[name])
    except ValueError as e:
        raise InvalidArgument(f"invalid archive: {name}: {e}") from None


def _from_docker_manifest(images: ImageService, archive: _Archive) -> list[_Candidate]:
    entries = _json(archive, "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("invalid archive: manifest.json must be a list")
    out = []
    for i, entry in enumerate(entries):
        what = f"manifest.json entry {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument(f"invalid archive: {what} has no Config")
        layer_paths = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(layer_paths, list) or not all(isinstance(p, str) for p in layer_paths):
            raise InvalidArgument(f"invalid archive: {what}: Layers must be a list of paths")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgument(f"invalid archive: {what}: RepoTags must be a list")
        config_digest = archive.resolve(entry["Config"], "config")
        config_bytes = images.content.read(config_digest)
        config = _parse_config(config_bytes, entry["Config"])
        blobs = [archive.resolve(p, "layer") for p in layer_paths]
        if len(blobs) != len(config.rootfs_diff_ids):
            raise InvalidArgument(
                f"invalid archive: {what} lists {len(blobs)} layers, its config "
                f"{len(config.rootfs_diff_ids)} diff ids"
            )
        layers = [
            NewLayer(blob, images.content.info(blob).size, _layer_media_type(images, blob), diff)
            for blob, diff in zip(blobs, config.rootfs_diff_ids, strict=True)
        ]
        full_tags = [_full_tag(t, what) for t in tags]
        out.append(_Candidate(config_digest, config_bytes, layers, None, full_tags))
    return out


def _from_index(images: ImageService, archive: _Archive) -> list[_Candidate]:
    index = _parse(Index.from_json, archive.metadata["index.json"], "index.json")
    out = []
    for desc in index.manifests:
        names = _names_of(desc)
        manifest_desc = _platform_manifest(images, archive, desc, depth=0)
        if manifest_desc is None:
            continue
        out.append(_from_manifest(images, archive, manifest_desc, names))
    return out


def _names_of(desc: Descriptor) -> list[str]:
    annotations = desc.annotations or {}
    name = annotations.get(ANNOTATION_IMAGE_NAME)
    if not name:
        ref_name = annotations.get(ANNOTATION_REF_NAME, "")
        # A bare tag ("latest") names no repository: such an image loads untagged.
        name = ref_name if (":" in ref_name or "/" in ref_name) else ""
    if not name:
        return []
    try:
        ref = refs.parse_normalized(name)
    except InvalidArgument:
        return []
    return [str(ref)] if ref.tag and not ref.digest else []


def _platform_manifest(
    images: ImageService, archive: _Archive, desc: Descriptor, depth: int
) -> Descriptor | None:
    """The manifest for this host in `desc` (a manifest, or an index to choose from)."""
    if mediatypes.is_manifest(desc.media_type):
        return desc
    if not mediatypes.is_index(desc.media_type) or depth > 4:
        return None
    digest = _blob(images, archive, desc, "index")
    index = _parse(Index.from_json, images.content.read(digest), str(desc.digest))
    choices = [d for d in index.manifests if _runs_here(d.platform)]
    for choice in choices:
        if _blob_present(archive, choice.digest):
            return _platform_manifest(images, archive, choice, depth + 1)
    return None


def _runs_here(platform: Platform | None) -> bool:
    return platform is None or (
        platform.os == "linux" and platform.architecture == host_architecture()
    )


def _blob_present(archive: _Archive, digest: Digest) -> bool:
    try:
        archive.resolve(_blob_path(digest), "blob")
    except InvalidArgument:
        return False
    return True


def _from_manifest(
    images: ImageService, archive: _Archive, desc: Descriptor, tags: list[str]
) -> _Candidate:
    manifest_digest = _blob(images, archive, desc, "manifest")
    manifest_bytes = images.content.read(manifest_digest)
    manifest = _parse(Manifest.from_json, manifest_bytes, f"manifest {desc.digest}")
    config_digest = _blob(images, archive, manifest.config, "config")
    config_bytes = images.content.read(config_digest)
    config = _parse_config(config_bytes, str(config_digest))
    if len(manifest.layers) != len(config.rootfs_diff_ids):
        raise InvalidArgument(
            f"invalid archive: manifest {desc.digest} lists {len(manifest.layers)} layers, "
            f"its config {len(config.rootfs_diff_ids)} diff ids"
        )
    layers = [
        NewLayer(_blob(images, archive, d, "layer"), d.size, d.media_type, diff)
        for d, diff in zip(manifest.layers, config.rootfs_diff_ids, strict=True)
    ]
    return _Candidate(config_digest, config_bytes, layers, manifest_bytes, tags)


def _blob(images: ImageService, archive: _Archive, desc: Descriptor, what: str) -> Digest:
    """The descriptor's blob: present in the archive, with its digest and size."""
    path = _blob_path(desc.digest)
    stored = archive.resolve(path, what)
    if stored != desc.digest:
        raise InvalidArgument(f"invalid archive: {what} {path!r} has digest {stored}")
    size = images.content.info(stored).size
    if size != desc.size:
        raise InvalidArgument(
            f"invalid archive: {what} {desc.digest} is {size} bytes, its descriptor says {desc.size}"
        )
    return stored


def _check_layers(images: ImageService, cand: _Candidate) -> None:
    """Uncompressed layers are their own diff id: check before anything is stored."""
    for layer in cand.layers:
        with images.content.open(layer.digest) as f:
            plain = detect(f.read(8)) is Compression.PLAIN
        if plain and layer.digest != layer.diff_id:
            raise InvalidArgument(
                f"invalid archive: layer {layer.digest} does not match the diff id "
                f"{layer.diff_id} of image {cand.config_digest}"
            )


def _layer_media_type(images: ImageService, blob: Digest) -> str:
    with images.content.open(blob) as f:
        kind = detect(f.read(8))
    return {
        Compression.GZIP: mediatypes.OCI_LAYER_GZIP,
        Compression.ZSTD: mediatypes.OCI_LAYER_ZSTD,
    }.get(kind, mediatypes.OCI_LAYER)


def _parse(parse: Callable[[bytes], Any], data: bytes, what: str) -> Any:
    try:
        return parse(data)
    except FreightError as e:
        raise InvalidArgument(f"invalid archive: {what}: {e}") from None


def _parse_config(data: bytes, what: str) -> ImageConfig:
    config = _parse(ImageConfig.from_json, data, f"config {what}")
    if config.rootfs_type != "layers":
        raise InvalidArgument(f"invalid archive: config {what}: rootfs type {config.rootfs_type}")
    return config


def _full_tag(tag: str, what: str) -> str:
    try:
        ref = refs.parse_normalized(tag)
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid archive: {what}: RepoTag {tag!r}: {e}") from None
    if ref.digest:
        raise InvalidArgument(f"invalid archive: {what}: RepoTag {tag!r} has a digest")
    return str(ref)
