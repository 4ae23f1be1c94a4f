"""The S3 storage driver against moto's in-process S3 (`mock_aws`): blobs, chunked
uploads as multipart uploads, uploads continued by a second driver instance (another
registry process), digest checks, expiry, manifests/tags/referrers, gc, driver selection.
Behaviour both drivers share runs against the filesystem driver too."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from freight import errors
from freight.oci.digest import Digest
from freight.registry import gc
from freight.registry.config import Config, S3Settings
from freight.registry.s3storage import MIN_PART_SIZE, S3Storage, UploadConflict
from freight.registry.storage import RangeInvalid, Storage, UploadUnknown
from freight.registry.storagebase import RegistryStorage, open_storage

BUCKET = "registry-test"
PART = MIN_PART_SIZE
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def store(s3) -> S3Storage:
    return S3Storage(s3, BUCKET, "reg", part_size=PART)


@pytest.fixture(params=["fs", "s3"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> RegistryStorage:
    if request.param == "fs":
        return Storage(tmp_path / "root")
    return S3Storage(request.getfixturevalue("s3"), BUCKET, "reg", part_size=PART)


def keys(client, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def multiparts(client) -> list[dict]:
    return client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def push_chunks(storage: RegistryStorage, repo: str, upload: str, data: bytes, size: int) -> None:
    for i in range(0, len(data), size):
        state = storage.upload_state(repo, upload)
        writer = storage.open_upload(state, state.offset)
        writer.write(data[i : i + size])
        writer.close()


# --- both drivers -----------------------------------------------------------------


def test_small_upload_round_trip(driver: RegistryStorage) -> None:
    data = b"hello layer"
    state = driver.start_upload("team/app")
    push_chunks(driver, "team/app", state.uuid, data, 4)
    state = driver.upload_state("team/app", state.uuid)
    assert state.offset == len(data)
    blob = driver.finish_upload(state, Digest.of(data))
    assert (blob.digest, blob.size) == (Digest.of(data), len(data))
    assert driver.read_blob(blob.digest) == data
    assert b"".join(driver.read_blob_range(blob.digest, 6, 5)) == b"layer"
    assert driver.repo_blob("team/app", blob.digest) is not None
    assert driver.repo_blob("other", blob.digest) is None
    assert driver.uploads_in_progress() == []


def test_out_of_order_chunk_rejected(driver: RegistryStorage) -> None:
    state = driver.start_upload("app")
    push_chunks(driver, "app", state.uuid, b"0123456789", 10)
    state = driver.upload_state("app", state.uuid)
    for start in (0, 5, 11):
        with pytest.raises(RangeInvalid):
            driver.open_upload(state, start)
    assert driver.upload_state("app", state.uuid).offset == 10


def test_upload_of_another_repository_is_unknown(driver: RegistryStorage) -> None:
    state = driver.start_upload("app")
    with pytest.raises(UploadUnknown):
        driver.upload_state("other", state.uuid)
    with pytest.raises(UploadUnknown):
        driver.upload_state("app", "not-an-upload")
    driver.cancel_upload(state.uuid)
    with pytest.raises(UploadUnknown):
        driver.upload_state("app", state.uuid)


def test_digest_mismatch_stores_nothing(driver: RegistryStorage) -> None:
    data = b"x" * 1000
    state = driver.start_upload("app")
    push_chunks(driver, "app", state.uuid, data, 1000)
    wrong = Digest.of(b"something else")
    with pytest.raises(errors.InvalidArgument):
        driver.finish_upload(driver.upload_state("app", state.uuid), wrong)
    assert driver.stat_blob(wrong) is None and driver.stat_blob(Digest.of(data)) is None
    assert list(driver.iter_blobs()) == [] and driver.uploads_in_progress() == []


def test_manifests_tags_referrers(driver: RegistryStorage) -> None:
    subject = driver.put_manifest("a/b", b'{"m":1}', MANIFEST, None)
    signature = driver.put_manifest("a/b", b'{"sig":1}', MANIFEST, Digest.of(b'{"sig":1}'))
    with pytest.raises(errors.InvalidArgument):
        driver.put_manifest("a/b", b"{}", MANIFEST, Digest.of(b"nope"))
    driver.set_tag("a/b", "v1", subject)
    driver.set_tag("a/b", "latest", subject)
    driver.add_referrer("a/b", subject, signature, b'{"digest":"%s"}' % signature.encode())
    assert driver.tags("a/b") == ["latest", "v1"]
    assert driver.resolve_tag("a/b", "v1") == subject
    assert driver.manifest_type("a/b", subject) == MANIFEST
    assert [d for d, _ in driver.manifests("a/b")] == sorted([subject, signature])
    assert len(driver.referrers("a/b", subject)) == 1
    driver.put_blob("a/b/c", b"layer")
    driver.write_meta("x", "hub.json", b"{}")
    assert driver.repositories() == ["a/b", "a/b/c", "x"]
    assert (
        driver.read_meta("x", "hub.json") == b"{}" and driver.read_meta("a/b", "hub.json") is None
    )
    assert driver.repo_exists("a/b") and not driver.repo_exists("a")
    assert driver.delete_tag("a/b", "latest") and not driver.delete_tag("a/b", "latest")
    assert driver.delete_manifest("a/b", signature)
    assert driver.referrers("a/b", subject) == []
    assert driver.delete_manifest("a/b", subject) and not driver.delete_manifest("a/b", subject)
    assert driver.tags("a/b") == [] and driver.manifest_type("a/b", subject) is None


def test_links_and_blob_listing(driver: RegistryStorage) -> None:
    d = driver.put_blob("one", b"shared")
    driver.link_blob("two", d)
    assert driver.blob_links("two") == [d]
    assert driver.unlink_blob("two", d) and not driver.unlink_blob("two", d)
    assert driver.repo_blob("one", d) is not None
    assert [(b.digest, b.size) for b in driver.iter_blobs()] == [(d, 6)]
    assert driver.blob_mtime(d) and driver.blob_link_mtime("one", d)
    driver.delete_blob_content(d)
    assert driver.stat_blob(d) is None
    with pytest.raises(errors.NotFound):
        driver.read_blob(d)


def test_gc_frees_untagged_and_keeps_uploads(driver: RegistryStorage) -> None:
    kept_layer = driver.put_blob("app", b"kept layer")
    lost_layer = driver.put_blob("app", b"lost layer")

    def manifest(layer: Digest) -> bytes:
        return json.dumps({"schemaVersion": 2, "config": {"digest": layer}, "layers": []}).encode()

    keep = driver.put_manifest("app", manifest(kept_layer), MANIFEST, None)
    lose = driver.put_manifest("app", manifest(lost_layer), MANIFEST, None)
    driver.set_tag("app", "keep", keep)
    state = driver.start_upload("app")
    push_chunks(driver, "app", state.uuid, b"in progress", 100)
    report = gc.collect(driver, grace=-1)
    assert sorted(report.blobs) == sorted([lost_layer, lose])
    assert driver.stat_blob(lost_layer) is None and driver.stat_blob(kept_layer) is not None
    assert driver.uploads_in_progress() == [state.uuid]
    assert driver.upload_state("app", state.uuid).offset == len(b"in progress")


# --- the S3 driver ----------------------------------------------------------------


def test_layout_of_keys(store: S3Storage, s3) -> None:
    d = store.put_blob("team/app", b"content")
    store.set_tag("team/app", "v1", d)
    assert keys(s3) == [
        f"reg/blobs/sha256/{d.hex[:2]}/{d.hex}",
        f"reg/repositories/team/app/_meta/blobs/sha256/{d.hex}",
        "reg/repositories/team/app/_meta/tags/v1",
    ]


def test_chunked_upload_becomes_multipart(store: S3Storage, s3) -> None:
    data = os.urandom(2 * PART + 12345)
    state = store.start_upload("app")
    push_chunks(store, "app", state.uuid, data, 3_000_000)
    record = store._record(state.uuid)
    assert len(record.parts) == 2 and record.tail_size == 12345  # the tail waits for more
    assert len(multiparts(s3)) == 1
    blob = store.finish_upload(store.upload_state("app", state.uuid), Digest.of(data))
    assert blob.size == len(data) and store.read_blob(blob.digest) == data
    assert b"".join(store.read_blob_range(blob.digest, PART - 3, 6)) == data[PART - 3 : PART + 3]
    assert keys(s3, "reg/uploads/") == [] and multiparts(s3) == []


def test_one_big_write_is_split_into_parts(store: S3Storage) -> None:
    data = os.urandom(3 * PART + 1)
    state = store.start_upload("app")
    writer = store.open_upload(state, None)
    writer.write(data)
    writer.close()
    assert len(store._record(state.uuid).parts) == 3
    assert store.finish_upload(state, Digest.of(data)).size == len(data)
    assert hashlib.sha256(store.read_blob(Digest.of(data))).hexdigest() == Digest.of(data).hex


def test_another_process_continues_and_finishes(store: S3Storage, s3) -> None:
    # Two drivers on one bucket: no shared memory, so no shared running hash either.
    other = S3Storage(s3, BUCKET, "reg", part_size=PART)
    data = os.urandom(PART + 777)
    state = store.start_upload("app")
    push_chunks(store, "app", state.uuid, data[:4_000_000], 4_000_000)
    push_chunks(other, "app", state.uuid, data[4_000_000:], 10**9)
    state = store.upload_state("app", state.uuid)
    assert state.offset == len(data)
    blob = store.finish_upload(state, Digest.of(data))  # hashed by re-reading the object
    assert other.read_blob(blob.digest) == data


def test_mismatch_after_multipart_is_aborted(store: S3Storage, s3) -> None:
    data = os.urandom(PART + 10)
    state = store.start_upload("app")
    push_chunks(store, "app", state.uuid, data, PART + 10)
    other = S3Storage(s3, BUCKET, "reg", part_size=PART)  # no running hash: re-read path
    wrong = Digest.of(b"wrong")
    with pytest.raises(errors.InvalidArgument):
        other.finish_upload(other.upload_state("app", state.uuid), wrong)
    assert keys(s3, "reg/blobs/") == [] and keys(s3, "reg/uploads/") == []
    assert multiparts(s3) == []


def test_concurrent_writers_conflict(store: S3Storage) -> None:
    state = store.start_upload("app")
    first, second = store.open_upload(state, 0), store.open_upload(state, 0)
    first.write(b"aaaa")
    second.write(b"bbbb")
    first.close()
    with pytest.raises(UploadConflict):
        second.close()
    blob = store.finish_upload(store.upload_state("app", state.uuid), Digest.of(b"aaaa"))
    assert store.read_blob(blob.digest) == b"aaaa"


def test_cancel_aborts_the_multipart_upload(store: S3Storage, s3) -> None:
    state = store.start_upload("app")
    push_chunks(store, "app", state.uuid, os.urandom(PART + 1), PART + 1)
    assert multiparts(s3)
    store.cancel_upload(state.uuid)
    assert multiparts(s3) == [] and keys(s3, "reg/uploads/") == []


def test_expiry_removes_old_uploads_and_orphan_parts(store: S3Storage, s3) -> None:
    old = store.start_upload("app")
    push_chunks(store, "app", old.uuid, os.urandom(PART), PART)
    orphan_key = "reg/uploads/" + "f" * 32 + "/data"  # a writer died before its record
    s3.create_multipart_upload(Bucket=BUCKET, Key=orphan_key)
    assert store.expire_uploads(3600) == []  # nothing is an hour old yet
    # moto dates every multipart upload in 2010, so the orphan already counts as old;
    # the live upload's one (as "old") stays because its record names it.
    assert [m["Key"] for m in multiparts(s3)] == [store.layout.upload_data(old.uuid)]
    assert store.uploads_in_progress() == [old.uuid]
    assert store.expire_uploads(3600, now=time.time() + 7200) == [old.uuid]
    assert multiparts(s3) == [] and keys(s3, "reg/uploads/") == []
    with pytest.raises(UploadUnknown):
        store.upload_state("app", old.uuid)


def test_a_blob_is_written_once(store: S3Storage, s3) -> None:
    d = store.put_blob("one", b"same")
    first = s3.head_object(Bucket=BUCKET, Key=store.layout.blob(d))["ETag"]
    state = store.start_upload("two")
    push_chunks(store, "two", state.uuid, b"same", 10)
    store.finish_upload(store.upload_state("two", state.uuid), d)
    assert s3.head_object(Bucket=BUCKET, Key=store.layout.blob(d))["ETag"] == first
    assert store.repo_blob("two", d) is not None


def test_range_read_is_lazy_and_closes(store: S3Storage) -> None:
    d = store.put_blob("app", b"0123456789")
    chunks = store.read_blob_range(Digest.of(b"absent"), 0, 5)  # no request yet
    with pytest.raises(errors.NotFound):
        next(chunks)
    assert list(store.read_blob_range(d, 3, 0)) == []
    reader = store.read_blob_range(d, 2, 3)
    assert next(reader) == b"234"
    reader.close()


def test_open_storage_selects_the_driver(s3, tmp_path: Path) -> None:
    assert isinstance(open_storage(Config(root=str(tmp_path))), Storage)
    settings = {"bucket": BUCKET, "region": "us-east-1", "prefix": "p"}
    storage = open_storage(Config(root=str(tmp_path), storage={"s3": settings}))
    assert isinstance(storage, S3Storage) and storage.layout.prefix == "p/"
    with pytest.raises(errors.NotFound):
        S3Storage.connect(S3Settings(bucket="no-such-bucket"))
    with pytest.raises(errors.InvalidArgument):
        Config(storage={"s3": {"bucket": BUCKET, "colour": "red"}}).s3_settings()
    with pytest.raises(errors.InvalidArgument):
        S3Storage(s3, BUCKET, part_size=1024)
