"""save/load of image archives against real stores on a temp dir (no mounts, no root).

Hostile and corrupt archives are refused with the reason and leave nothing
stored: no image, no tag, no blob beyond what was there before.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.content import ContentStore
from freight.errors import InvalidArgument
from freight.metadata.store import MetadataStore
from freight.oci import mediatypes
from freight.oci.digest import Digest
from freight.oci.image import HistoryEntry
from freight.services import archives
from freight.services.images import ImageService, NewLayer, host_architecture
from freight.services.model import ContainerConfig
from freight.snapshots import OverlaySnapshotter


@pytest.fixture
def images(tmp_path: Path) -> Iterator[ImageService]:
    meta = MetadataStore(tmp_path / "meta.db")
    snaps = OverlaySnapshotter(tmp_path / "snapshots")
    yield ImageService(ContentStore(tmp_path / "content"), snaps, meta)
    snaps.close()
    meta.close()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(images: ImageService, tag: str, files: dict[str, bytes]) -> str:
    layer = images.store_layer_stream(io.BytesIO(layer_tar(files)))
    history = [HistoryEntry(created="2024-01-01T00:00:00Z", created_by="test")]
    return images.create_image([layer], ContainerConfig(cmd=["sh"]), [tag], history)


def saved(images: ImageService, *names: str) -> bytes:
    out = io.BytesIO()
    archives.save(images, archives.save_targets(images, list(names)), out)
    return out.getvalue()


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


def build_tar(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def load(images: ImageService, data: bytes) -> list[str]:
    lines: list[str] = []
    archives.load(images, io.BytesIO(data), lines.append)
    return lines


def blobs(images: ImageService) -> set[str]:
    return {str(info.digest) for info in images.content.list()}


def test_save_writes_docker_and_oci_layouts(images: ImageService) -> None:
    image_id = make_image(images, "example.com/app:1", {"hello": b"hi\n"})
    files = members(saved(images, "example.com/app:1"))
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["example.com/app:1"]
    assert manifest[0]["Config"] == f"blobs/sha256/{Digest(image_id).hex}"
    index = json.loads(files["index.json"])
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == "example.com/app:1"
    assert annotations["org.opencontainers.image.ref.name"] == "1"
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]


def test_save_load_round_trip_keeps_id_and_tag(images: ImageService, tmp_path: Path) -> None:
    image_id = make_image(images, "app:1", {"hello": b"hi\n"})
    archive = saved(images, "app")  # a bare name saves all its tags
    images.remove("app:1")
    assert images.meta.images() == []
    assert load(images, archive) == ["Loaded image: app:1"]
    assert images.resolve("app:1") == image_id


def test_load_gzip_compressed_archive(images: ImageService) -> None:
    make_image(images, "app:1", {"a": b"1"})
    archive = gzip.compress(saved(images, "app:1"))
    images.remove("app:1")
    assert load(images, archive) == ["Loaded image: app:1"]


def test_load_legacy_layout_with_symlinked_layer(images: ImageService) -> None:
    layer = layer_tar({"f": b"legacy"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = [{"Config": "abc.json", "RepoTags": ["legacy:2"], "Layers": ["l2/layer.tar"]}]
    data = build_tar(
        {"abc.json": config, "l1/layer.tar": layer, "manifest.json": json.dumps(manifest).encode()},
        links={"l2/layer.tar": "../l1/layer.tar"},
    )
    assert load(images, data) == ["Loaded image: legacy:2"]
    assert images.resolve("legacy:2") == "sha256:" + hashlib.sha256(config).hexdigest()


def refused(images: ImageService, data: bytes, reason: str) -> None:
    before = (blobs(images), images.meta.images())
    with pytest.raises(InvalidArgument, match=reason):
        load(images, data)
    assert (blobs(images), images.meta.images()) == before


def test_wrong_blob_digest_is_refused_and_nothing_stored(images: ImageService) -> None:
    make_image(images, "app:1", {"a": b"1"})
    files = members(saved(images, "app:1"))
    images.remove("app:1")
    layer_name = next(n for n, d in files.items() if n.startswith("blobs/") and len(d) > 2000)
    files[layer_name] = files[layer_name][:-1] + b"x"
    refused(images, build_tar(files), "has digest")


def test_missing_blob_is_refused(images: ImageService) -> None:
    make_image(images, "app:1", {"a": b"1"})
    files = members(saved(images, "app:1"))
    images.remove("app:1")
    layer_name = next(n for n, d in files.items() if n.startswith("blobs/") and len(d) > 2000)
    del files[layer_name]
    refused(images, build_tar(files), "missing")


def test_layer_that_does_not_match_diff_id_is_refused(images: ImageService) -> None:
    config = json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    ).encode()  # fmt: skip
    manifest = [{"Config": "c.json", "RepoTags": ["bad:1"], "Layers": ["l/layer.tar"]}]
    data = build_tar(
        {"c.json": config, "l/layer.tar": layer_tar({"f": b"x"}),
         "manifest.json": json.dumps(manifest).encode()}
    )  # fmt: skip
    refused(images, data, "does not match the diff id")


@pytest.mark.parametrize(
    "entries,links,reason",
    [
        ({"../evil": b"x", "manifest.json": b"[]"}, {}, "escapes the archive"),
        ({"/etc/evil": b"x", "manifest.json": b"[]"}, {}, "escapes the archive"),
        ({"manifest.json": b"[]"}, {"l/layer.tar": "../../etc/passwd"}, "outside the archive"),
        ({"manifest.json": b"[]"}, {"l/layer.tar": "/etc/passwd"}, "outside the archive"),
        ({"blobs/md5/abc": b"x", "index.json": b"{}"}, {}, "unsupported digest algorithm"),
        ({"manifest.json": b"{not json"}, {}, "manifest.json"),
        ({"something": b"x"}, {}, "no manifest.json or index.json"),
    ],
)
def test_hostile_archives_are_refused(
    images: ImageService, entries: dict[str, bytes], links: dict[str, str], reason: str
) -> None:
    refused(images, build_tar(entries, links), reason)


def test_truncated_archive_is_refused(images: ImageService) -> None:
    make_image(images, "app:1", {"big": b"x" * 100_000})
    archive = saved(images, "app:1")
    images.remove("app:1")
    refused(images, archive[: len(archive) // 2], "truncated or corrupt|truncated")


def test_store_image_refuses_diff_ids_that_do_not_match(images: ImageService) -> None:
    layer = images.store_layer_stream(io.BytesIO(layer_tar({"a": b"1"})))
    wrong = NewLayer(layer.digest, layer.size, layer.media_type, Digest("sha256:" + "1" * 64))
    config = json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": [str(wrong.diff_id)]}}
    ).encode()  # fmt: skip
    with pytest.raises(InvalidArgument, match="diff id"):
        images.store_image(config, [wrong], ["x:1"])
    assert images.meta.images() == []


def test_load_containerd_style_nested_index_for_this_platform(images: ImageService) -> None:
    """Docker's containerd store saves an index per image: one manifest per platform
    (only this host's blobs present) and attestation manifests for "unknown"."""
    make_image(images, "app:1", {"a": b"1"})
    files = members(saved(images, "app:1"))
    images.remove("app:1")
    [entry] = json.loads(files["index.json"])["manifests"]
    arch = host_architecture()
    nested = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
        "manifests": [
            {"mediaType": mediatypes.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10,
             "platform": {"architecture": "unknown", "os": "unknown"}},
            {"mediaType": mediatypes.OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 10,
             "platform": {"architecture": "arm64" if arch != "arm64" else "s390x", "os": "linux"}},
            {"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"],
             "platform": {"architecture": arch, "os": "linux"}},
        ],
    }).encode()  # fmt: skip
    nested_digest = hashlib.sha256(nested).hexdigest()
    files[f"blobs/sha256/{nested_digest}"] = nested
    files["index.json"] = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
        "manifests": [{"mediaType": mediatypes.OCI_INDEX, "digest": f"sha256:{nested_digest}",
                       "size": len(nested), "annotations": entry["annotations"]}],
    }).encode()  # fmt: skip
    del files["manifest.json"]
    assert load(images, build_tar(files)) == ["Loaded image: app:1"]
