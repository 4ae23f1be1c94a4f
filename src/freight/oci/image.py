"""Typed models of the image JSON documents: descriptor, manifest, index, config.

One model serves both the OCI image spec and Docker's schema 2, which share
their shapes and differ in media types. JSON keys are mapped exactly at this
edge; inside, fields are snake_case and typed. Keys this module does not know
are kept in `extra` and written back, so a document survives a round-trip.

    >>> m = Manifest.from_json(blob)             # bytes from the content store
    >>> [layer.digest for layer in m.layers]
    >>> Manifest.from_json(m.to_json()) == m
    True

`to_json` is deterministic (sorted keys, compact) but is *not* the original
bytes: anything addressed by digest must be stored and served as received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from freight import errors
from freight.oci import mediatypes
from freight.oci.digest import Digest, sha256_hasher

JSON = dict[str, Any]


def _load(data: bytes, what: str) -> JSON:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.InvalidArgument(f"invalid {what} JSON: {e}") from None
    if not isinstance(doc, dict):
        raise errors.InvalidArgument(f"invalid {what} JSON: not an object")
    return doc


def _dump(doc: JSON) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _put(doc: JSON, key: str, value: Any) -> None:
    """Set `key` only when there is something to say (keeps output minimal)."""
    if value is not None:
        doc[key] = value


def _take(doc: JSON, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """Pop `key` from `doc`, checking its JSON type; None when absent or null."""
    value = doc.pop(key, None)
    if value is not None and not isinstance(value, kind):
        raise errors.InvalidArgument(f"invalid {what}: {key} has the wrong type")
    return value


def _take_strings(doc: JSON, key: str, what: str) -> list[str] | None:
    value = _take(doc, key, list, what)
    if value is not None and not all(isinstance(s, str) for s in value):
        raise errors.InvalidArgument(f"invalid {what}: {key} must be a list of strings")
    return value


def _take_set(doc: JSON, key: str, what: str) -> list[str] | None:
    """Docker encodes sets ({"80/tcp": {}}) as objects with empty values."""
    value = _take(doc, key, dict, what)
    return None if value is None else sorted(value)


def _as_set(keys: list[str] | None) -> JSON | None:
    return None if keys is None else {k: {} for k in keys}


# --- descriptor ------------------------------------------------------------


@dataclass(slots=True)
class Platform:
    architecture: str
    os: str
    os_version: str | None = None
    os_features: list[str] | None = None
    variant: str | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: JSON) -> Platform:
        doc = dict(doc)
        return cls(
            architecture=_take(doc, "architecture", str, "platform") or "",
            os=_take(doc, "os", str, "platform") or "",
            os_version=_take(doc, "os.version", str, "platform"),
            os_features=_take_strings(doc, "os.features", "platform"),
            variant=_take(doc, "variant", str, "platform"),
            extra=doc,
        )

    def to_dict(self) -> JSON:
        doc = dict(self.extra) | {"architecture": self.architecture, "os": self.os}
        _put(doc, "os.version", self.os_version)
        _put(doc, "os.features", self.os_features)
        _put(doc, "variant", self.variant)
        return doc


@dataclass(slots=True)
class Descriptor:
    """Points at a blob: what it is, its digest and its size."""

    media_type: str
    digest: Digest
    size: int
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = None
    data: str | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: JSON) -> Descriptor:
        doc = dict(doc)
        media_type = _take(doc, "mediaType", str, "descriptor")
        digest = _take(doc, "digest", str, "descriptor")
        size = _take(doc, "size", int, "descriptor")
        if media_type is None or digest is None or size is None or size < 0:
            raise errors.InvalidArgument(
                "invalid descriptor: mediaType, digest and size are required"
            )
        platform = _take(doc, "platform", dict, "descriptor")
        return cls(
            media_type=media_type,
            digest=Digest.parse(digest),
            size=size,
            urls=_take_strings(doc, "urls", "descriptor"),
            annotations=_take(doc, "annotations", dict, "descriptor"),
            platform=Platform.from_dict(platform) if platform is not None else None,
            artifact_type=_take(doc, "artifactType", str, "descriptor"),
            data=_take(doc, "data", str, "descriptor"),
            extra=doc,
        )

    def to_dict(self) -> JSON:
        doc = dict(self.extra)
        doc |= {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        _put(doc, "urls", self.urls)
        _put(doc, "annotations", self.annotations)
        _put(doc, "platform", self.platform.to_dict() if self.platform else None)
        _put(doc, "artifactType", self.artifact_type)
        _put(doc, "data", self.data)
        return doc

    @classmethod
    def from_json(cls, data: bytes) -> Descriptor:
        return cls.from_dict(_load(data, "descriptor"))

    def to_json(self) -> bytes:
        return _dump(self.to_dict())


def _take_descriptors(doc: JSON, key: str, what: str) -> list[Descriptor]:
    items = _take(doc, key, list, what) or []
    if not all(isinstance(item, dict) for item in items):
        raise errors.InvalidArgument(f"invalid {what}: {key} must hold descriptors")
    return [Descriptor.from_dict(item) for item in items]


def _take_descriptor(doc: JSON, key: str, what: str) -> Descriptor | None:
    value = _take(doc, key, dict, what)
    return Descriptor.from_dict(value) if value is not None else None


def _check_schema_version(doc: JSON, what: str) -> int:
    version = _take(doc, "schemaVersion", int, what)
    if version != 2:
        raise errors.InvalidArgument(f"invalid {what}: unsupported schemaVersion {version}")
    return version


# --- manifest and index ----------------------------------------------------


@dataclass(slots=True)
class Manifest:
    """An image manifest (OCI, or Docker schema 2 when `media_type` says so)."""

    config: Descriptor
    layers: list[Descriptor]
    media_type: str | None = mediatypes.OCI_MANIFEST
    schema_version: int = 2
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None
    extra: JSON = field(default_factory=dict)

    @property
    def is_docker(self) -> bool:
        return self.media_type == mediatypes.DOCKER_MANIFEST

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        doc = _load(data, "manifest")
        version = _check_schema_version(doc, "manifest")
        config = _take_descriptor(doc, "config", "manifest")
        if config is None:
            raise errors.InvalidArgument("invalid manifest: config is required")
        return cls(
            config=config,
            layers=_take_descriptors(doc, "layers", "manifest"),
            media_type=_take(doc, "mediaType", str, "manifest"),
            schema_version=version,
            annotations=_take(doc, "annotations", dict, "manifest"),
            subject=_take_descriptor(doc, "subject", "manifest"),
            artifact_type=_take(doc, "artifactType", str, "manifest"),
            extra=doc,
        )

    def to_json(self) -> bytes:
        doc = dict(self.extra)
        doc["schemaVersion"] = self.schema_version
        _put(doc, "mediaType", self.media_type)
        doc["config"] = self.config.to_dict()
        doc["layers"] = [layer.to_dict() for layer in self.layers]
        _put(doc, "annotations", self.annotations)
        _put(doc, "subject", self.subject.to_dict() if self.subject else None)
        _put(doc, "artifactType", self.artifact_type)
        return _dump(doc)


@dataclass(slots=True)
class Index:
    """An OCI image index or a Docker manifest list: one manifest per platform."""

    manifests: list[Descriptor]
    media_type: str | None = mediatypes.OCI_INDEX
    schema_version: int = 2
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes) -> Index:
        doc = _load(data, "index")
        version = _check_schema_version(doc, "index")
        return cls(
            manifests=_take_descriptors(doc, "manifests", "index"),
            media_type=_take(doc, "mediaType", str, "index"),
            schema_version=version,
            annotations=_take(doc, "annotations", dict, "index"),
            subject=_take_descriptor(doc, "subject", "index"),
            artifact_type=_take(doc, "artifactType", str, "index"),
            extra=doc,
        )

    def to_json(self) -> bytes:
        doc = dict(self.extra)
        doc["schemaVersion"] = self.schema_version
        _put(doc, "mediaType", self.media_type)
        doc["manifests"] = [m.to_dict() for m in self.manifests]
        _put(doc, "annotations", self.annotations)
        _put(doc, "subject", self.subject.to_dict() if self.subject else None)
        _put(doc, "artifactType", self.artifact_type)
        return _dump(doc)


# --- image config ----------------------------------------------------------


@dataclass(slots=True)
class Healthcheck:
    """Durations are nanoseconds, as in Docker's JSON."""

    test: list[str] | None = None
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None
    extra: JSON = field(default_factory=dict)

    _KEYS = (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
        ("retries", "Retries"),
    )

    @classmethod
    def from_dict(cls, doc: JSON) -> Healthcheck:
        doc = dict(doc)
        check = cls(test=_take_strings(doc, "Test", "healthcheck"))
        for attr, key in cls._KEYS:
            setattr(check, attr, _take(doc, key, int, "healthcheck"))
        check.extra = doc
        return check

    def to_dict(self) -> JSON:
        doc = dict(self.extra)
        _put(doc, "Test", self.test)
        for attr, key in self._KEYS:
            _put(doc, key, getattr(self, attr))
        return doc


@dataclass(slots=True)
class ContainerConfig:
    """The defaults an image gives its containers (the config's "config" object).

    `exposed_ports` and `volumes` are sets in Docker's JSON ({"80/tcp": {}});
    here they are sorted lists of the keys.
    """

    user: str | None = None
    env: list[str] | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    working_dir: str | None = None
    labels: dict[str, str] | None = None
    exposed_ports: list[str] | None = None
    volumes: list[str] | None = None
    stop_signal: str | None = None
    healthcheck: Healthcheck | None = None
    on_build: list[str] | None = None
    shell: list[str] | None = None
    args_escaped: bool | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: JSON) -> ContainerConfig:
        doc = dict(doc)
        what = "image config"
        healthcheck = _take(doc, "Healthcheck", dict, what)
        return cls(
            user=_take(doc, "User", str, what),
            env=_take_strings(doc, "Env", what),
            entrypoint=_take_strings(doc, "Entrypoint", what),
            cmd=_take_strings(doc, "Cmd", what),
            working_dir=_take(doc, "WorkingDir", str, what),
            labels=_take(doc, "Labels", dict, what),
            exposed_ports=_take_set(doc, "ExposedPorts", what),
            volumes=_take_set(doc, "Volumes", what),
            stop_signal=_take(doc, "StopSignal", str, what),
            healthcheck=Healthcheck.from_dict(healthcheck) if healthcheck is not None else None,
            on_build=_take_strings(doc, "OnBuild", what),
            shell=_take_strings(doc, "Shell", what),
            args_escaped=_take(doc, "ArgsEscaped", bool, what),
            extra=doc,
        )

    def to_dict(self) -> JSON:
        doc = dict(self.extra)
        _put(doc, "User", self.user)
        _put(doc, "Env", self.env)
        _put(doc, "Entrypoint", self.entrypoint)
        _put(doc, "Cmd", self.cmd)
        _put(doc, "WorkingDir", self.working_dir)
        _put(doc, "Labels", self.labels)
        _put(doc, "ExposedPorts", _as_set(self.exposed_ports))
        _put(doc, "Volumes", _as_set(self.volumes))
        _put(doc, "StopSignal", self.stop_signal)
        _put(doc, "Healthcheck", self.healthcheck.to_dict() if self.healthcheck else None)
        _put(doc, "OnBuild", self.on_build)
        _put(doc, "Shell", self.shell)
        _put(doc, "ArgsEscaped", self.args_escaped)
        return doc


@dataclass(slots=True)
class HistoryEntry:
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool | None = None
    extra: JSON = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: JSON) -> HistoryEntry:
        doc = dict(doc)
        return cls(
            created=_take(doc, "created", str, "history"),
            created_by=_take(doc, "created_by", str, "history"),
            author=_take(doc, "author", str, "history"),
            comment=_take(doc, "comment", str, "history"),
            empty_layer=_take(doc, "empty_layer", bool, "history"),
            extra=doc,
        )

    def to_dict(self) -> JSON:
        doc = dict(self.extra)
        _put(doc, "created", self.created)
        _put(doc, "created_by", self.created_by)
        _put(doc, "author", self.author)
        _put(doc, "comment", self.comment)
        _put(doc, "empty_layer", self.empty_layer)
        return doc


@dataclass(slots=True)
class ImageConfig:
    """The image config blob: platform, run defaults, layer diff ids, history.

    Its digest is the image id Docker shows.
    """

    architecture: str = ""
    os: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    rootfs_diff_ids: list[Digest] = field(default_factory=list)
    rootfs_type: str = "layers"
    history: list[HistoryEntry] = field(default_factory=list)
    created: str | None = None
    author: str | None = None
    os_version: str | None = None
    os_features: list[str] | None = None
    variant: str | None = None
    extra: JSON = field(default_factory=dict)
    rootfs_extra: JSON = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes) -> ImageConfig:
        doc = _load(data, "image config")
        what = "image config"
        rootfs = dict(_take(doc, "rootfs", dict, what) or {})
        config = _take(doc, "config", dict, what)
        history = _take(doc, "history", list, what) or []
        if not all(isinstance(h, dict) for h in history):
            raise errors.InvalidArgument("invalid image config: history must hold objects")
        return cls(
            architecture=_take(doc, "architecture", str, what) or "",
            os=_take(doc, "os", str, what) or "",
            config=ContainerConfig.from_dict(config) if config else ContainerConfig(),
            rootfs_type=_take(rootfs, "type", str, what) or "layers",
            rootfs_diff_ids=[
                Digest.parse(d) for d in _take_strings(rootfs, "diff_ids", what) or []
            ],
            history=[HistoryEntry.from_dict(h) for h in history],
            created=_take(doc, "created", str, what),
            author=_take(doc, "author", str, what),
            os_version=_take(doc, "os.version", str, what),
            os_features=_take_strings(doc, "os.features", what),
            variant=_take(doc, "variant", str, what),
            extra=doc,
            rootfs_extra=rootfs,
        )

    def to_json(self) -> bytes:
        doc = dict(self.extra)
        doc |= {"architecture": self.architecture, "os": self.os}
        doc["config"] = self.config.to_dict()
        doc["rootfs"] = dict(self.rootfs_extra) | {
            "type": self.rootfs_type,
            "diff_ids": [str(d) for d in self.rootfs_diff_ids],
        }
        if self.history:
            doc["history"] = [h.to_dict() for h in self.history]
        _put(doc, "created", self.created)
        _put(doc, "author", self.author)
        _put(doc, "os.version", self.os_version)
        _put(doc, "os.features", self.os_features)
        _put(doc, "variant", self.variant)
        return _dump(doc)

    def chain_ids(self) -> list[Digest]:
        return chain_ids(self.rootfs_diff_ids)


def chain_ids(diff_ids: list[Digest]) -> list[Digest]:
    """OCI ChainIDs: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).

    A chain id names a stack of layers, so a committed snapshot keyed by it is
    shared by every image whose lower layers are the same.
    """
    chain: list[Digest] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            hasher = sha256_hasher(f"{chain[-1]} {diff_id}".encode())
            chain.append(Digest.from_hasher(hasher))
    return chain
