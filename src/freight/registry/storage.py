"""The registry's filesystem storage: blobs, uploads, manifests, tags and referrers.

On disk (every path is built by `Layout`):

    <root>/
    ├── blobs/
    │   └── sha256/<hex>                   content (layers, configs, manifests), shared by
    │                                      every repository, written once, verified, renamed in
    ├── uploads/
    │   └── <uuid>/
    │       ├── data                       bytes received so far
    │       └── repo                       the repository the upload belongs to
    ├── repositories/
    │   └── <name, may contain '/'>/
    │       └── _meta/                     ('_' cannot start a name component: no clash)
    │           ├── blobs/sha256/<hex>     empty: the blob is part of this repository
    │           ├── manifests/sha256/<hex> the manifest's media type: it is in this repository
    │           ├── tags/<tag>             the digest the tag points to
    │           └── referrers/sha256/<subject hex>/<hex>
    │                                      the descriptor (JSON) of a manifest whose
    │                                      `subject` is <subject hex>
    ├── auth/                              accounts and the token key (freight.registry.accounts)
    └── tmp/                               staging for atomic writes (same filesystem)

Every write is staged in `tmp/` (or `uploads/`), fsync'd, then renamed into place, so a
reader sees a whole file or none. A blob becomes visible only after its digest was
checked. Repositories hold links, never content, so a layer pushed to ten repositories is
stored once; a link is what grants a repository access to a blob (a blob some other
repository uploaded is invisible until mounted or pushed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from freight import errors
from freight.oci.digest import CHUNK_SIZE, Digest

# The distribution spec's repository name grammar (components joined by '/').
_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_UUID = re.compile(r"[0-9a-f]{32}")
NAME_MAX = 255
META = "_meta"


class NameInvalid(errors.InvalidArgument):
    """A repository name outside the spec's grammar."""


class UploadUnknown(errors.NotFound):
    """No upload session with this id (finished, cancelled, expired or never started)."""


class RangeInvalid(errors.InvalidArgument):
    """A chunk that does not start where the upload currently ends."""


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not _NAME.fullmatch(name):
        raise NameInvalid(f"invalid repository name: {name!r}")
    return name


def is_tag(reference: str) -> bool:
    return bool(_TAG.fullmatch(reference))


@dataclass(frozen=True, slots=True)
class BlobStat:
    digest: Digest
    size: int
    path: Path


@dataclass(frozen=True, slots=True)
class UploadState:
    uuid: str
    repo: str
    offset: int
    started: float


class Layout:
    """Every path of the storage, in one place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.repositories = root / "repositories"
        self.auth = root / "auth"
        self.tmp = root / "tmp"

    def blob(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.hex

    def upload_dir(self, upload: str) -> Path:
        return self.uploads / upload

    def upload_data(self, upload: str) -> Path:
        return self.uploads / upload / "data"

    def upload_repo(self, upload: str) -> Path:
        return self.uploads / upload / "repo"

    def meta(self, repo: str) -> Path:
        return self.repositories / repo / META

    def blob_link(self, repo: str, digest: Digest) -> Path:
        return self.meta(repo) / "blobs" / digest.algorithm / digest.hex

    def manifest_link(self, repo: str, digest: Digest) -> Path:
        return self.meta(repo) / "manifests" / digest.algorithm / digest.hex

    def manifest_links(self, repo: str) -> Path:
        return self.meta(repo) / "manifests"

    def tags(self, repo: str) -> Path:
        return self.meta(repo) / "tags"

    def tag(self, repo: str, tag: str) -> Path:
        return self.meta(repo) / "tags" / tag

    def referrers(self, repo: str, subject: Digest) -> Path:
        return self.meta(repo) / "referrers" / subject.algorithm / subject.hex

    def referrer(self, repo: str, subject: Digest, digest: Digest) -> Path:
        return self.referrers(repo, subject) / digest.hex


class Storage:
    """The filesystem driver. Thread-safe: every change is a rename or an unlink."""

    def __init__(self, root: Path) -> None:
        self.layout = Layout(root)
        for d in (
            self.layout.blobs,
            self.layout.uploads,
            self.layout.repositories,
            self.layout.tmp,
        ):
            d.mkdir(parents=True, exist_ok=True)
        # Running hashes of uploads in progress, so finishing one does not re-read it.
        self._hashers: dict[str, tuple[int, hashlib._Hash]] = {}

    # --- atomic files -------------------------------------------------------------

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = self.layout.tmp / uuid.uuid4().hex
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)

    # --- blobs --------------------------------------------------------------------

    def stat_blob(self, digest: Digest) -> BlobStat | None:
        path = self.layout.blob(digest)
        try:
            return BlobStat(digest, os.stat(path).st_size, path)
        except FileNotFoundError:
            return None

    def repo_blob(self, repo: str, digest: Digest) -> BlobStat | None:
        """The blob if `repo` links to it."""
        if not os.path.exists(self.layout.blob_link(repo, digest)):
            return None
        return self.stat_blob(digest)

    def link_blob(self, repo: str, digest: Digest) -> None:
        link = self.layout.blob_link(repo, digest)
        if not link.exists():
            self._write_atomic(link, b"")

    def unlink_blob(self, repo: str, digest: Digest) -> bool:
        try:
            os.unlink(self.layout.blob_link(repo, digest))
            return True
        except FileNotFoundError:
            return False

    def put_blob(self, repo: str, data: bytes, expected: Digest | None = None) -> Digest:
        """Store small content (a manifest) and link it; verify it against `expected`."""
        digest = Digest(f"sha256:{hashlib.sha256(data).hexdigest()}")
        if expected is not None and expected != digest:
            raise errors.InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
        if self.stat_blob(digest) is None:
            self._write_atomic(self.layout.blob(digest), data)
        self.link_blob(repo, digest)
        return digest

    def read_blob(self, digest: Digest) -> bytes:
        try:
            return self.layout.blob(digest).read_bytes()
        except FileNotFoundError:
            raise errors.NotFound(f"blob unknown: {digest}") from None

    def delete_blob_content(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.blob(digest))

    def iter_blobs(self) -> Iterator[BlobStat]:
        for algo in sorted(os.listdir(self.layout.blobs)):
            d = self.layout.blobs / algo
            for hexd in sorted(os.listdir(d)):
                p = d / hexd
                with contextlib.suppress(FileNotFoundError):
                    yield BlobStat(Digest(f"{algo}:{hexd}"), p.stat().st_size, p)

    # --- uploads ------------------------------------------------------------------

    def start_upload(self, repo: str) -> UploadState:
        upload = uuid.uuid4().hex
        self.layout.upload_dir(upload).mkdir()
        self.layout.upload_data(upload).touch()
        self.layout.upload_repo(upload).write_text(repo)
        self._hashers[upload] = (0, hashlib.sha256())
        return UploadState(upload, repo, 0, time.time())

    def upload_state(self, repo: str, upload: str) -> UploadState:
        if not _UUID.fullmatch(upload):
            raise UploadUnknown(f"upload unknown: {upload!r}")
        try:
            owner = self.layout.upload_repo(upload).read_text()
            st = os.stat(self.layout.upload_data(upload))
        except (FileNotFoundError, NotADirectoryError):
            raise UploadUnknown(f"upload unknown: {upload!r}") from None
        if owner != repo:
            raise UploadUnknown(f"upload {upload!r} belongs to another repository")
        return UploadState(upload, repo, st.st_size, st.st_ctime)

    def open_upload(self, state: UploadState, start: int | None) -> UploadWriter:
        """A writer appending to the upload; `start` (from Content-Range) must be its end."""
        if start is not None and start != state.offset:
            raise RangeInvalid(f"chunk starts at {start}, the upload ends at {state.offset}")
        return UploadWriter(self, state)

    def finish_upload(self, state: UploadState, expected: Digest) -> BlobStat:
        """Verify the upload against `expected`, move it into blobs/ and link it."""
        data = self.layout.upload_data(state.uuid)
        size, hasher = self._hashers.get(state.uuid, (-1, None))
        if hasher is None or size != state.offset:
            hasher = _hash_file(data)
        got = Digest(f"{hasher.name}:{hasher.hexdigest()}")
        if expected.algorithm != "sha256":
            got = Digest(f"{expected.algorithm}:{_hash_file(data, expected.algorithm).hexdigest()}")
        if got != expected:
            self.cancel_upload(state.uuid)
            raise errors.InvalidArgument(f"digest mismatch: expected {expected}, got {got}")
        target = self.layout.blob(expected)
        if target.exists():
            self.cancel_upload(state.uuid)
        else:
            with open(data, "rb+") as f:
                os.fsync(f.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(data, target)
            self.cancel_upload(state.uuid)
        self.link_blob(state.repo, expected)
        return BlobStat(expected, target.stat().st_size, target)

    def cancel_upload(self, upload: str) -> None:
        self._hashers.pop(upload, None)
        shutil.rmtree(self.layout.upload_dir(upload), ignore_errors=True)

    def expire_uploads(self, max_age: float, now: float | None = None) -> list[str]:
        """Remove uploads untouched for `max_age` seconds; return their ids."""
        now = time.time() if now is None else now
        gone = []
        for upload in os.listdir(self.layout.uploads):
            try:
                mtime = os.stat(self.layout.upload_data(upload)).st_mtime
            except (FileNotFoundError, NotADirectoryError):
                mtime = 0.0
            if now - mtime > max_age:
                self.cancel_upload(upload)
                gone.append(upload)
        return gone

    def uploads_in_progress(self) -> list[str]:
        return sorted(os.listdir(self.layout.uploads))

    # --- manifests and tags -------------------------------------------------------

    def put_manifest(
        self, repo: str, data: bytes, media_type: str, expected: Digest | None
    ) -> Digest:
        digest = self.put_blob(repo, data, expected)
        self._write_atomic(self.layout.manifest_link(repo, digest), media_type.encode())
        return digest

    def manifest_type(self, repo: str, digest: Digest) -> str | None:
        try:
            with open(self.layout.manifest_link(repo, digest), "rb") as f:
                return f.read().decode()
        except FileNotFoundError:
            return None

    def resolve_tag(self, repo: str, tag: str) -> Digest | None:
        try:
            with open(self.layout.tag(repo, tag), "rb") as f:
                return Digest(f.read().decode())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def set_tag(self, repo: str, tag: str, digest: Digest) -> None:
        self._write_atomic(self.layout.tag(repo, tag), digest.encode())

    def delete_tag(self, repo: str, tag: str) -> bool:
        try:
            os.unlink(self.layout.tag(repo, tag))
            return True
        except FileNotFoundError:
            return False

    def delete_manifest(self, repo: str, digest: Digest) -> bool:
        """Unlink the manifest from `repo`, with every tag that points to it."""
        try:
            os.unlink(self.layout.manifest_link(repo, digest))
        except FileNotFoundError:
            return False
        for tag in self.tags(repo):
            if self.resolve_tag(repo, tag) == digest:
                self.delete_tag(repo, tag)
        referrers = self.layout.meta(repo) / "referrers"
        for sub in referrers.glob(f"*/*/{digest.hex}"):
            with contextlib.suppress(FileNotFoundError):
                sub.unlink()
        return True

    def tags(self, repo: str) -> list[str]:
        try:
            return sorted(os.listdir(self.layout.tags(repo)))
        except FileNotFoundError:
            return []

    def manifests(self, repo: str) -> list[tuple[Digest, str]]:
        root = self.layout.manifest_links(repo)
        out = []
        with contextlib.suppress(FileNotFoundError):
            for algo in os.listdir(root):
                for hexd in os.listdir(root / algo):
                    digest = Digest(f"{algo}:{hexd}")
                    out.append((digest, self.manifest_type(repo, digest) or ""))
        return sorted(out)

    def repo_exists(self, repo: str) -> bool:
        return self.layout.meta(repo).is_dir()

    def repositories(self) -> list[str]:
        """Every repository name, sorted."""
        names = []
        top = self.layout.repositories
        for dirpath, dirnames, _ in os.walk(top):
            if META in dirnames:
                names.append(os.path.relpath(dirpath, top))
                dirnames.remove(META)
        return sorted(names)

    # --- referrers ----------------------------------------------------------------

    def add_referrer(self, repo: str, subject: Digest, digest: Digest, descriptor: bytes) -> None:
        self._write_atomic(self.layout.referrer(repo, subject, digest), descriptor)

    def referrers(self, repo: str, subject: Digest) -> list[bytes]:
        d = self.layout.referrers(repo, subject)
        out = []
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(d)):
                with contextlib.suppress(FileNotFoundError):
                    out.append((d / name).read_bytes())
        return out

    # --- streaming reads, per-repository extras, gc's view of time ------------------
    # (the rest of `storagebase.RegistryStorage`; the API sends local blobs with sendfile)

    def read_blob_range(self, digest: Digest, offset: int, length: int) -> Iterator[bytes]:
        with open(self.layout.blob(digest), "rb") as f:
            f.seek(offset)
            while length > 0 and (chunk := f.read(min(CHUNK_SIZE, length))):
                length -= len(chunk)
                yield chunk

    def read_meta(self, repo: str, name: str) -> bytes | None:
        try:
            return (self.layout.meta(repo) / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_meta(self, repo: str, name: str, data: bytes) -> None:
        self._write_atomic(self.layout.meta(repo) / name, data)

    def blob_links(self, repo: str) -> list[Digest]:
        root = self.layout.meta(repo) / "blobs"
        out: list[Digest] = []
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for algo in os.listdir(root):
                out += [Digest(f"{algo}:{h}") for h in os.listdir(root / algo)]
        return out

    def blob_mtime(self, digest: Digest) -> float | None:
        return _mtime(self.layout.blob(digest))

    def blob_link_mtime(self, repo: str, digest: Digest) -> float | None:
        return _mtime(self.layout.blob_link(repo, digest))

    def manifest_mtime(self, repo: str, digest: Digest) -> float | None:
        return _mtime(self.layout.manifest_link(repo, digest))


class UploadWriter:
    """Appends one request's body to an upload, hashing as it goes."""

    def __init__(self, storage: Storage, state: UploadState) -> None:
        self._storage = storage
        self.state = state
        self.offset = state.offset
        self._file = open(storage.layout.upload_data(state.uuid), "ab")  # noqa: SIM115
        size, hasher = storage._hashers.get(state.uuid, (-1, None))
        # A hash that does not match the file (another process, a restart) is dropped.
        self._hasher = hasher if size == state.offset else None

    def write(self, data: bytes) -> None:
        self._file.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        self.offset += len(data)

    def close(self) -> None:
        self._file.close()
        if self._hasher is not None:
            self._storage._hashers[self.state.uuid] = (self.offset, self._hasher)
        else:
            self._storage._hashers.pop(self.state.uuid, None)


def _hash_file(path: Path, algorithm: str = "sha256") -> hashlib._Hash:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            h.update(chunk)
    return h


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
