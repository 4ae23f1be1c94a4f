"""The registry's S3 storage driver: blobs, uploads, manifests, tags and referrers as objects.

Every key is built by `S3Layout`, under the configured prefix:

    <prefix>/
    ├── blobs/sha256/<hex[:2]>/<hex>          content, shared by every repository, immutable:
    │                                         written only if absent, after its digest was checked
    ├── uploads/<uuid>/
    │   ├── info                              the upload's record (JSON, `_Record`)
    │   ├── tail-<n>                          bytes received that are not yet a part
    │   └── data                              the multipart upload's key (exists once completed,
    │                                         for as long as finishing takes)
    └── repositories/<name, may contain '/'>/_meta/
        ├── blobs/sha256/<hex>                empty: the blob is part of this repository
        ├── manifests/sha256/<hex>            the manifest's media type
        ├── tags/<tag>                        the digest the tag points to
        ├── referrers/sha256/<subject>/<hex>  the descriptor of a manifest whose subject it is
        └── hub.json                          per-repository extras (`read_meta`/`write_meta`)

An upload keeps all of its state in the bucket, so any registry process behind a load
balancer can continue (or finish) an upload another one started:

    POST      -> put info {repo, offset 0}                              (If-None-Match: *)
    PATCH     -> read info; the chunk must start at info.offset (else 416)
                 read the tail into a buffer, append the body, send every full
                 part_size of it as the next part of the multipart upload
                 (created on the first part); put the remainder as a new tail-<n>,
                 then info {parts, tail-<n>, offset}                    (If-Match: its ETag)
    PUT       -> send the tail as the last part (it may be short), check the digest,
                 complete the multipart upload into uploads/<uuid>/data, copy it to
                 blobs/... if absent, delete uploads/<uuid>/; small uploads (no part yet)
                 are put straight from the tail
    DELETE    -> abort the multipart upload, delete uploads/<uuid>/

S3 wants every part but the last to be at least 5 MiB, hence the tail. The record is the
commit point: a writer that dies leaves the previous record (and at worst an orphan tail
object or multipart upload, removed by `expire_uploads`), and a concurrent writer fails
its If-Match instead of interleaving. The running sha256 of an upload lives in the
process that wrote it (hashlib state cannot be stored); when another process wrote part
of the upload, finishing re-reads the completed object through the hash instead. Either
way nothing reaches `blobs/` before its digest matched.

Conditional writes (If-Match / If-None-Match on PutObject) are required: AWS S3, MinIO
and moto have them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from freight import errors
from freight.oci.digest import CHUNK_SIZE, Digest
from freight.registry.config import S3Settings
from freight.registry.storage import META, RangeInvalid, UploadState, UploadUnknown

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
_UUID = re.compile(r"[0-9a-f]{32}")
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_CONFLICT = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}


class UploadConflict(RangeInvalid):
    """Another request changed the upload while this one was writing to it."""


@dataclass(frozen=True, slots=True)
class S3Blob:
    digest: Digest
    size: int


class S3Layout:
    """Every key of the bucket, in one place."""

    def __init__(self, prefix: str) -> None:
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.blobs = f"{self.prefix}blobs/"
        self.uploads = f"{self.prefix}uploads/"
        self.repositories = f"{self.prefix}repositories/"

    def blob(self, digest: Digest) -> str:
        return f"{self.blobs}{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"

    def blob_digest(self, key: str) -> Digest | None:
        """The digest a key under `blobs/` stands for (None for a stray key)."""
        algo, _, rest = key[len(self.blobs) :].partition("/")
        hexd = rest.rpartition("/")[2]
        try:
            return Digest.parse(f"{algo}:{hexd}")
        except errors.InvalidArgument:
            return None

    def upload_dir(self, upload: str) -> str:
        return f"{self.uploads}{upload}/"

    def upload_info(self, upload: str) -> str:
        return f"{self.uploads}{upload}/info"

    def upload_tail(self, upload: str, generation: str) -> str:
        return f"{self.uploads}{upload}/tail-{generation}"

    def upload_data(self, upload: str) -> str:
        return f"{self.uploads}{upload}/data"

    def upload_id(self, key: str) -> str:
        """The upload a key under `uploads/` belongs to."""
        return key[len(self.uploads) :].partition("/")[0]

    def meta(self, repo: str) -> str:
        return f"{self.repositories}{repo}/{META}/"

    def blob_links(self, repo: str) -> str:
        return f"{self.meta(repo)}blobs/"

    def blob_link(self, repo: str, digest: Digest) -> str:
        return f"{self.meta(repo)}blobs/{digest.algorithm}/{digest.hex}"

    def manifest_links(self, repo: str) -> str:
        return f"{self.meta(repo)}manifests/"

    def manifest_link(self, repo: str, digest: Digest) -> str:
        return f"{self.meta(repo)}manifests/{digest.algorithm}/{digest.hex}"

    def tags(self, repo: str) -> str:
        return f"{self.meta(repo)}tags/"

    def tag(self, repo: str, tag: str) -> str:
        return f"{self.meta(repo)}tags/{tag}"

    def all_referrers(self, repo: str) -> str:
        return f"{self.meta(repo)}referrers/"

    def referrers(self, repo: str, subject: Digest) -> str:
        return f"{self.meta(repo)}referrers/{subject.algorithm}/{subject.hex}/"

    def referrer(self, repo: str, subject: Digest, digest: Digest) -> str:
        return f"{self.referrers(repo, subject)}{digest.hex}"

    def extra(self, repo: str, name: str) -> str:
        return f"{self.meta(repo)}{name}"


@dataclass
class _Record:
    """An upload's `info` object; `etag` is the version it was read at (not stored)."""

    repo: str
    started: float
    multipart: str = ""  # the S3 UploadId, empty until the first part is sent
    parts: list[tuple[int, str]] = field(default_factory=list)  # (number, ETag)
    part_bytes: int = 0
    tail: str = ""  # key of the tail object, empty when there is none
    tail_size: int = 0
    etag: str = ""

    @property
    def offset(self) -> int:
        return self.part_bytes + self.tail_size

    def encode(self) -> bytes:
        fields = {k: v for k, v in vars(self).items() if k != "etag"}
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes, etag: str) -> _Record:
        data = json.loads(raw)
        data["parts"] = [(int(n), str(e)) for n, e in data.get("parts", [])]
        return cls(**data, etag=etag)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage:
    """The S3 driver. Thread-safe (boto3 clients are); any number of processes may share
    one bucket and prefix."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", part_size: int = PART_SIZE
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise errors.InvalidArgument(f"part size {part_size} is below S3's 5 MiB minimum")
        self.client = client
        self.bucket = bucket
        self.layout = S3Layout(prefix)
        self.part_size = part_size
        # Running hashes of uploads this process wrote: upload -> (offset, hash).
        self._hashers: dict[str, tuple[int, hashlib._Hash]] = {}

    @classmethod
    def connect(cls, settings: S3Settings) -> S3Storage:
        """A client for `settings` (empty values: boto3's AWS_* environment and config
        files), checked against the bucket."""
        import boto3
        from botocore.config import Config as BotoConfig

        session = boto3.session.Session(
            aws_access_key_id=settings.access_key or None,
            aws_secret_access_key=settings.secret_key or None,
            region_name=settings.region or None,
        )
        config = BotoConfig(
            # Path-style keeps IP endpoints and self-hosted stores working.
            s3={"addressing_style": "path"} if settings.endpoint_url else {},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            # Many S3-compatible stores reject the newer default CRC headers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = session.client("s3", endpoint_url=settings.endpoint_url or None, config=config)
        storage = cls(client, settings.bucket, settings.prefix)
        storage.check()
        return storage

    def check(self) -> None:
        """Fail early (and clearly) when the bucket is missing or unreachable."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise errors.NotFound(f"s3 bucket not found: {self.bucket}") from None
            raise errors.Unavailable(f"s3 bucket {self.bucket}: {exc}") from None
        except BotoCoreError as exc:
            raise errors.Unavailable(f"s3 bucket {self.bucket}: {exc}") from None

    # --- objects ------------------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise

    def _put(self, key: str, data: bytes, **conditions: str) -> str:
        """Write `key`; return its ETag. `conditions`: IfMatch / IfNoneMatch."""
        return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)["ETag"]

    def _put_if_absent(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data, IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) not in _CONFLICT:
                raise

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _delete_existing(self, key: str) -> bool:
        if self._head(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _names(self, prefix: str) -> list[str]:
        """Keys under `prefix`, relative to it, sorted."""
        return sorted(obj["Key"][len(prefix) :] for obj in self._list(prefix))

    def _children(self, prefix: str) -> list[str]:
        """The 'directories' directly under `prefix` (full prefixes, ending in '/')."""
        pages = self.client.get_paginator("list_objects_v2")
        out: list[str] = []
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            out += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return out

    def _mtime(self, key: str) -> float | None:
        head = self._head(key)
        return None if head is None else head["LastModified"].timestamp()

    # --- blobs --------------------------------------------------------------------

    def stat_blob(self, digest: Digest) -> S3Blob | None:
        head = self._head(self.layout.blob(digest))
        return None if head is None else S3Blob(digest, int(head["ContentLength"]))

    def repo_blob(self, repo: str, digest: Digest) -> S3Blob | None:
        """The blob if `repo` links to it."""
        if self._head(self.layout.blob_link(repo, digest)) is None:
            return None
        return self.stat_blob(digest)

    def link_blob(self, repo: str, digest: Digest) -> None:
        # Written once, so its LastModified is when the repository first got the blob (gc).
        self._put_if_absent(self.layout.blob_link(repo, digest), b"")

    def unlink_blob(self, repo: str, digest: Digest) -> bool:
        return self._delete_existing(self.layout.blob_link(repo, digest))

    def put_blob(self, repo: str, data: bytes, expected: Digest | None = None) -> Digest:
        """Store small content (a manifest) and link it; verify it against `expected`."""
        digest = Digest(f"sha256:{hashlib.sha256(data).hexdigest()}")
        if expected is not None and expected != digest:
            raise errors.InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        if self.stat_blob(digest) is None:
            self._put_if_absent(self.layout.blob(digest), data)
        self.link_blob(repo, digest)
        return digest

    def read_blob(self, digest: Digest) -> bytes:
        data = self._get(self.layout.blob(digest))
        if data is None:
            raise errors.NotFound(f"blob unknown: {digest}")
        return data

    def read_blob_range(self, digest: Digest, offset: int, length: int) -> Iterator[bytes]:
        """Stream `length` bytes from `offset` (one ranged GET, opened on the first next())."""
        if length <= 0:
            return
        try:
            resp = self.client.get_object(
                Bucket=self.bucket,
                Key=self.layout.blob(digest),
                Range=f"bytes={offset}-{offset + length - 1}",
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise errors.NotFound(f"blob unknown: {digest}") from None
            raise
        body = resp["Body"]
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        finally:
            body.close()

    def delete_blob_content(self, digest: Digest) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.layout.blob(digest))

    def iter_blobs(self) -> Iterator[S3Blob]:
        for obj in self._list(self.layout.blobs):
            digest = self.layout.blob_digest(obj["Key"])
            if digest is not None:
                yield S3Blob(digest, int(obj["Size"]))

    # --- uploads ------------------------------------------------------------------

    def start_upload(self, repo: str) -> UploadState:
        upload = uuid.uuid4().hex
        record = _Record(repo=repo, started=time.time())
        self._put(self.layout.upload_info(upload), record.encode(), IfNoneMatch="*")
        self._hashers[upload] = (0, hashlib.sha256())
        return UploadState(upload, repo, 0, record.started)

    def _record(self, upload: str) -> _Record:
        if not _UUID.fullmatch(upload):
            raise UploadUnknown(f"upload unknown: {upload!r}")
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.layout.upload_info(upload))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise UploadUnknown(f"upload unknown: {upload!r}") from None
            raise
        return _Record.decode(resp["Body"].read(), resp["ETag"])

    def upload_state(self, repo: str, upload: str) -> UploadState:
        record = self._record(upload)
        if record.repo != repo:
            raise UploadUnknown(f"upload {upload!r} belongs to another repository")
        return UploadState(upload, repo, record.offset, record.started)

    def open_upload(self, state: UploadState, start: int | None) -> S3UploadWriter:
        """A writer appending to the upload; `start` (from Content-Range) must be its end."""
        record = self._record(state.uuid)
        if record.repo != state.repo:
            raise UploadUnknown(f"upload {state.uuid!r} belongs to another repository")
        if start is not None and start != record.offset:
            raise RangeInvalid(f"chunk starts at {start}, the upload ends at {record.offset}")
        return S3UploadWriter(self, state.uuid, record)

    def _read_tail(self, record: _Record) -> bytes:
        if not record.tail:
            return b""
        data = self._get(record.tail)
        if data is None or len(data) != record.tail_size:
            raise UploadConflict("the upload's buffered bytes are gone (cancelled or expired)")
        return data

    def _send_part(self, upload: str, record: _Record, data: bytes) -> None:
        if len(record.parts) >= MAX_PARTS:
            raise errors.InvalidArgument(f"blob too large: more than {MAX_PARTS} parts")
        key = self.layout.upload_data(upload)
        if not record.multipart:
            resp = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
            record.multipart = resp["UploadId"]
        number = len(record.parts) + 1
        resp = self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=record.multipart, PartNumber=number, Body=data
        )
        record.parts.append((number, resp["ETag"]))
        record.part_bytes += len(data)

    def _commit(self, upload: str, record: _Record, tail: bytes) -> None:
        """Store `tail` and then the record: the upload now ends at `record.offset`."""
        old = record.tail
        record.tail, record.tail_size = "", 0
        if tail:
            record.tail = self.layout.upload_tail(upload, uuid.uuid4().hex[:12])
            record.tail_size = len(tail)
            self._put(record.tail, tail)
        try:
            record.etag = self._put(
                self.layout.upload_info(upload), record.encode(), IfMatch=record.etag
            )
        except ClientError as exc:
            if record.tail:
                self.client.delete_object(Bucket=self.bucket, Key=record.tail)
            if _code(exc) in _CONFLICT | _MISSING:
                raise UploadConflict(f"upload {upload!r} was changed by another request") from None
            raise
        if old and old != record.tail:
            self.client.delete_object(Bucket=self.bucket, Key=old)

    def finish_upload(self, state: UploadState, expected: Digest) -> S3Blob:
        """Verify the upload against `expected`, put it at its blob key (if absent), link it."""
        upload = state.uuid
        record = self._record(upload)
        length = record.offset
        size, hasher = self._hashers.get(upload, (-1, None))
        if size != length or expected.algorithm != "sha256":
            hasher = None  # another process wrote some of it: hash the stored bytes instead
        tail = self._read_tail(record)
        if not record.multipart:
            got = _digest(expected.algorithm, tail)
            self._verify(upload, expected, got)
            if self.stat_blob(expected) is None:
                self._put_if_absent(self.layout.blob(expected), tail)
        else:
            if hasher is not None:
                self._verify(upload, expected, Digest.from_hasher(hasher))
            self._complete(upload, record, tail)
            data = self.layout.upload_data(upload)
            if hasher is None:
                self._verify(upload, expected, self._hash_object(data, expected.algorithm))
            if self.stat_blob(expected) is None:
                source = {"Bucket": self.bucket, "Key": data}
                self.client.copy(source, self.bucket, self.layout.blob(expected))
        self.cancel_upload(upload)
        self.link_blob(state.repo, expected)
        return S3Blob(expected, length)

    def _verify(self, upload: str, expected: Digest, got: Digest) -> None:
        if got != expected:
            self.cancel_upload(upload)
            raise errors.InvalidArgument(f"digest mismatch: expected {expected}, got {got}")

    def _complete(self, upload: str, record: _Record, tail: bytes) -> None:
        if tail:
            self._send_part(upload, record, tail)  # the last part may be short
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in record.parts]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.layout.upload_data(upload),
                UploadId=record.multipart,
                MultipartUpload={"Parts": parts},
            )
        except ClientError as exc:  # a part overwritten by a concurrent writer, or expired
            self.cancel_upload(upload)
            raise errors.InvalidArgument(f"upload {upload!r} is damaged: {exc}") from None

    def _hash_object(self, key: str, algorithm: str) -> Digest:
        h = hashlib.new(algorithm)
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK_SIZE):
                h.update(chunk)
        finally:
            body.close()
        return Digest(f"{algorithm}:{h.hexdigest()}")

    def cancel_upload(self, upload: str) -> None:
        self._hashers.pop(upload, None)
        if not _UUID.fullmatch(upload):
            return
        try:
            record: _Record | None = self._record(upload)
        except UploadUnknown:
            record = None
        if record is not None and record.multipart:
            self._abort(upload, record.multipart)
        self._delete([obj["Key"] for obj in self._list(self.layout.upload_dir(upload))])

    def _abort(self, upload: str, multipart: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.layout.upload_data(upload), UploadId=multipart
            )
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise

    def expire_uploads(self, max_age: float, now: float | None = None) -> list[str]:
        """Remove uploads untouched for `max_age` seconds; return their ids. Also aborts
        multipart uploads that old which no record names (a writer that died)."""
        now = time.time() if now is None else now
        touched: dict[str, float] = {}
        for obj in self._list(self.layout.uploads):
            upload = self.layout.upload_id(obj["Key"])
            touched[upload] = max(touched.get(upload, 0.0), obj["LastModified"].timestamp())
        gone = sorted(u for u, t in touched.items() if now - t > max_age)
        for upload in gone:
            self.cancel_upload(upload)
        self._abort_orphans(max_age, now)
        return gone

    def _abort_orphans(self, max_age: float, now: float) -> None:
        pages = self.client.get_paginator("list_multipart_uploads")
        for page in pages.paginate(Bucket=self.bucket, Prefix=self.layout.uploads):
            for mp in page.get("Uploads", []):
                if now - mp["Initiated"].timestamp() <= max_age:
                    continue
                upload = self.layout.upload_id(mp["Key"])
                try:
                    named = self._record(upload).multipart == mp["UploadId"]
                except UploadUnknown:
                    named = False
                if not named:
                    self._abort(upload, mp["UploadId"])

    def uploads_in_progress(self) -> list[str]:
        prefixes = self._children(self.layout.uploads)
        return sorted(self.layout.upload_id(p) for p in prefixes)

    # --- manifests and tags -------------------------------------------------------

    def put_manifest(
        self, repo: str, data: bytes, media_type: str, expected: Digest | None
    ) -> Digest:
        digest = self.put_blob(repo, data, expected)
        self._put(self.layout.manifest_link(repo, digest), media_type.encode())
        return digest

    def manifest_type(self, repo: str, digest: Digest) -> str | None:
        raw = self._get(self.layout.manifest_link(repo, digest))
        return None if raw is None else raw.decode()

    def resolve_tag(self, repo: str, tag: str) -> Digest | None:
        raw = self._get(self.layout.tag(repo, tag))
        return None if raw is None else Digest(raw.decode())

    def set_tag(self, repo: str, tag: str, digest: Digest) -> None:
        self._put(self.layout.tag(repo, tag), digest.encode())

    def delete_tag(self, repo: str, tag: str) -> bool:
        return self._delete_existing(self.layout.tag(repo, tag))

    def delete_manifest(self, repo: str, digest: Digest) -> bool:
        """Unlink the manifest from `repo`, with every tag that points to it."""
        if not self._delete_existing(self.layout.manifest_link(repo, digest)):
            return False
        for tag in self.tags(repo):
            if self.resolve_tag(repo, tag) == digest:
                self.delete_tag(repo, tag)
        prefix = self.layout.all_referrers(repo)
        keys = [obj["Key"] for obj in self._list(prefix) if obj["Key"].endswith(f"/{digest.hex}")]
        self._delete(keys)
        return True

    def tags(self, repo: str) -> list[str]:
        return self._names(self.layout.tags(repo))

    def manifests(self, repo: str) -> list[tuple[Digest, str]]:
        out = []
        for name in self._names(self.layout.manifest_links(repo)):
            algo, _, hexd = name.partition("/")
            digest = Digest(f"{algo}:{hexd}")
            out.append((digest, self.manifest_type(repo, digest) or ""))
        return sorted(out)

    def repo_exists(self, repo: str) -> bool:
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.layout.meta(repo), MaxKeys=1)  # fmt: skip
        return bool(resp.get("Contents"))

    def repositories(self) -> list[str]:
        """Every repository name, sorted: a walk over 'directories', like os.walk."""
        top = self.layout.repositories
        names: list[str] = []
        pending = [top]
        while pending:
            prefix = pending.pop()
            for child in self._children(prefix):
                if child.endswith(f"/{META}/"):
                    names.append(prefix[len(top) :].rstrip("/"))
                else:
                    pending.append(child)
        return sorted(names)

    # --- referrers ----------------------------------------------------------------

    def add_referrer(self, repo: str, subject: Digest, digest: Digest, descriptor: bytes) -> None:
        self._put(self.layout.referrer(repo, subject, digest), descriptor)

    def referrers(self, repo: str, subject: Digest) -> list[bytes]:
        prefix = self.layout.referrers(repo, subject)
        out = []
        for name in self._names(prefix):
            raw = self._get(prefix + name)
            if raw is not None:
                out.append(raw)
        return out

    # --- per-repository extras, gc's view of time ---------------------------------

    def read_meta(self, repo: str, name: str) -> bytes | None:
        return self._get(self.layout.extra(repo, name))

    def write_meta(self, repo: str, name: str, data: bytes) -> None:
        self._put(self.layout.extra(repo, name), data)

    def blob_links(self, repo: str) -> list[Digest]:
        out = []
        for name in self._names(self.layout.blob_links(repo)):
            algo, _, hexd = name.partition("/")
            out.append(Digest(f"{algo}:{hexd}"))
        return out

    def blob_mtime(self, digest: Digest) -> float | None:
        return self._mtime(self.layout.blob(digest))

    def blob_link_mtime(self, repo: str, digest: Digest) -> float | None:
        return self._mtime(self.layout.blob_link(repo, digest))

    def manifest_mtime(self, repo: str, digest: Digest) -> float | None:
        return self._mtime(self.layout.manifest_link(repo, digest))


class S3UploadWriter:
    """Appends one request's body to an upload: full parts go out as they fill, the rest
    is stored as the tail when the request ends (`close`)."""

    def __init__(self, storage: S3Storage, upload: str, record: _Record) -> None:
        self._storage = storage
        self._upload = upload
        self._record = record
        self.offset = record.offset
        self._buffer = bytearray(storage._read_tail(record))
        size, hasher = storage._hashers.get(upload, (-1, None))
        # A hash that does not cover exactly the stored bytes (another process) is dropped.
        self._hasher = hasher if size == record.offset else None
        self._dirty = False
        self._closed = False

    def write(self, data: bytes) -> None:
        self._buffer += data
        if self._hasher is not None:
            self._hasher.update(data)
        self.offset += len(data)
        self._dirty = True
        size = self._storage.part_size
        while len(self._buffer) >= size:
            # Dropped from the buffer only once S3 has it: a failed part stays in the tail.
            self._storage._send_part(self._upload, self._record, bytes(self._buffer[:size]))
            del self._buffer[:size]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._dirty:
            return
        hashers = self._storage._hashers
        hashers.pop(self._upload, None)
        self._storage._commit(self._upload, self._record, bytes(self._buffer))
        if self._hasher is not None:
            hashers[self._upload] = (self._record.offset, self._hasher)


def _digest(algorithm: str, data: bytes) -> Digest:
    return Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")
