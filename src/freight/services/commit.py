"""`docker commit` and `docker export`: a container's filesystem as an image or a tar.

Commit writes the container's upper dir as one new layer (overlay whiteouts
and opaque dirs become OCI `.wh.` entries) straight into the content store,
then makes an image of the base image's layers plus that one, with the
container's config (edited by `--change`) and a history entry carrying the
comment. Order (crash safety): layer blob, snapshot, config and manifest
blobs, then one metadata transaction; a kill before that leaves only
unreferenced blobs and snapshots, swept at the next start.

A running container is frozen (linux.freezer) while its layer is written,
as Docker pauses it, so the layer is one instant of its filesystem; one the
user paused is left as it is, before and after. With
`pause=False` files may change under the writer: the tar is still well
formed (each file's size is fixed by its header), its digest is of the bytes
written and extraction checks it, and a file that shrinks or vanishes midway
fails the commit with a clear error rather than storing a torn layer.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from freight.archive import layers as layer_archive
from freight.errors import Conflict, InvalidArgument, NotFound, Unavailable
from freight.linux.freezer import Freezer
from freight.oci import mediatypes
from freight.oci import reference as refs
from freight.oci.digest import Digest
from freight.oci.image import HistoryEntry, Manifest
from freight.services import diffs, mounting
from freight.services.changes import apply_changes
from freight.services.clock import now_rfc3339
from freight.services.images import ImageService, NewLayer, to_oci_config
from freight.services.model import Container, ContainerConfig
from freight.snapshots import Mount

FREEZE_TIMEOUT_S = 10.0


@dataclass
class CommitRequest:
    container: str
    repo_tag: str = ""
    comment: str = ""
    author: str = ""
    changes: list[str] = field(default_factory=list)
    pause: bool = True
    config: ContainerConfig | None = None  # the API body's overrides (unset fields: None/empty)


# --- diff ------------------------------------------------------------------


def container_changes(images: ImageService, c: Container) -> list[diffs.Change]:
    upper, lowers = diffs.layer_dirs(images.snapshots.mounts(c.snapshot_key))
    return diffs.changes(upper, lowers)


# --- commit ----------------------------------------------------------------


def commit(images: ImageService, c: Container, req: CommitRequest) -> str:
    """Make an image of the container; returns the new image id."""
    config = _commit_config(c, req)  # bad --change fails before any work
    tags = [_full_tag(req.repo_tag)] if req.repo_tag else []
    upper, lowers = diffs.layer_dirs(images.snapshots.mounts(c.snapshot_key))
    below = diffs.LowerDirs(lowers)

    def exclude(rel: str, st: os.stat_result) -> bool:
        return diffs.is_init_stub(rel, st) and below.stat(rel) is None

    try:
        with images.creating():
            with _frozen(c) if req.pause and c.state.running else contextlib.nullcontext():
                layer = _write_layer(images, upper, exclude)
            image_id = _make_image(images, c, req, config, layer, tags)
    except BaseException:
        images.collect_garbage()
        raise
    ref = refs.parse_normalized(tags[0]).familiar_string() if tags else ""
    attrs = {"comment": req.comment, "imageID": image_id, "imageRef": ref}
    images.events.container(c, "commit", attrs)  # dockerd's container commit event
    return image_id


def write_snapshot_layer(
    images: ImageService, key: str, skip: Iterable[str] = (), max_mtime: int | None = None
) -> NewLayer:
    """The changes in snapshot `key` (a build step's) as a new layer blob.

    `skip`: paths (relative, no leading /) of empty mount-point stubs made for the
    step's own mounts, left out unless a lower layer has them, as the runtime's.
    """
    upper, lowers = diffs.layer_dirs(images.snapshots.mounts(key))
    below = diffs.LowerDirs(lowers)
    stubs = set(skip)

    def exclude(rel: str, st: os.stat_result) -> bool:
        stub = diffs.is_init_stub(rel, st) or (rel in stubs and _empty_stub(upper / rel, st))
        return stub and below.stat(rel) is None

    return _write_layer(images, upper, exclude, max_mtime)


def _empty_stub(path: Path, st: os.stat_result) -> bool:
    if os.path.isdir(path) and not os.path.islink(path):
        return not os.listdir(path)
    return st.st_size == 0


def _write_layer(
    images: ImageService, upper: Path, exclude, max_mtime: int | None = None
) -> NewLayer:
    writer = images.content.writer(f"commit-{secrets.token_hex(8)}")
    try:
        layer_archive.write_layer_from_dir(upper, writer, exclude, max_mtime)  # type: ignore[arg-type]
        digest = writer.commit(None, None)
    except OSError as e:
        writer.abort()
        raise Conflict(
            f"the container's files changed while its layer was written ({e}); "
            "commit it paused (--pause=true) or stopped"
        ) from None
    except BaseException:
        writer.abort()
        raise
    size = images.content.info(digest).size
    return NewLayer(digest, size, mediatypes.OCI_LAYER, digest)


def _make_image(
    images: ImageService,
    c: Container,
    req: CommitRequest,
    config: ContainerConfig,
    layer: NewLayer,
    tags: list[str],
) -> str:
    base = images.config(c.image_id)
    row = images.meta.image(c.image_id)
    manifest = Manifest.from_json(images.content.read(Digest(row.manifest)))
    base_layers = [
        NewLayer(d.digest, d.size, d.media_type, diff_id)
        for d, diff_id in zip(manifest.layers, base.rootfs_diff_ids, strict=True)
    ]
    created = now_rfc3339()
    oci = to_oci_config(config)
    # Keep what the services' model does not carry (healthcheck, shell, onbuild...).
    oci = replace(
        oci,
        healthcheck=base.config.healthcheck,
        on_build=base.config.on_build,
        shell=base.config.shell,
        extra=base.config.extra,
    )
    entry = HistoryEntry(
        created=created,
        created_by=" ".join([c.path, *c.args]) if c.path else "",
        author=req.author or None,
        comment=req.comment or None,
    )
    new = replace(
        base,
        config=oci,
        created=created,
        author=req.author or None,
        rootfs_diff_ids=[*base.rootfs_diff_ids, layer.diff_id],
        history=[*base.history, entry],
    )
    return images.store_image(new.to_json(), [*base_layers, layer], tags, parent=c.image_id)


def _commit_config(c: Container, req: CommitRequest) -> ContainerConfig:
    config = replace(c.config, image="")
    if req.config is not None:
        config = _overlay(config, req.config)
    return apply_changes(config, list(req.changes))


def _overlay(base: ContainerConfig, over: ContainerConfig) -> ContainerConfig:
    """Fields the request sets replace the container's (env and labels merge by key)."""
    env = {e.split("=", 1)[0]: e for e in base.env}
    env.update({e.split("=", 1)[0]: e for e in over.env})
    return replace(
        base,
        cmd=over.cmd if over.cmd is not None else base.cmd,
        entrypoint=over.entrypoint if over.entrypoint is not None else base.entrypoint,
        env=list(env.values()),
        working_dir=over.working_dir or base.working_dir,
        user=over.user or base.user,
        labels={**base.labels, **over.labels},
        stop_signal=over.stop_signal or base.stop_signal,
        exposed_ports={**base.exposed_ports, **over.exposed_ports},
        volumes={**base.volumes, **over.volumes},
    )


def _full_tag(repo_tag: str) -> str:
    ref = refs.parse_normalized(repo_tag)
    if ref.digest:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    return str(ref if ref.tag else ref.with_tag(refs.DEFAULT_TAG))


# --- pausing: the cgroup freezer ---------------------------------------------

# Commits in progress per container: the first freezes, the last one out thaws.
_holds: dict[str, int] = {}
_holds_lock = threading.Lock()


@contextlib.contextmanager
def _frozen(c: Container) -> Iterator[None]:
    """The container frozen while the layer is written, as dockerd pauses it.

    A container the user paused stays as it is (already still, and still
    paused after); one the user pauses during the commit is left paused.
    """
    if c.state.status == "paused":
        yield
        return
    freezer = Freezer.of_process(c.state.pid)
    if freezer is None:
        raise Unavailable("no cgroup freezer for the container: commit it with --pause=false")
    with _holds_lock:
        _holds[c.id] = _holds.get(c.id, 0) + 1
    try:
        freezer.freeze(FREEZE_TIMEOUT_S)
        yield
    finally:
        with _holds_lock:
            _holds[c.id] -= 1
            last = _holds[c.id] == 0
            if last:
                del _holds[c.id]
        if last and c.state.status != "paused":
            with contextlib.suppress(OSError):  # the container may have exited meanwhile
                freezer.thaw()


def thaw_interrupted(containers: Iterable[Container]) -> None:
    """At daemon start: a daemon killed while committing left its container frozen.

    Only containers recorded as running are thawed: a paused one is frozen on purpose.
    """
    for c in containers:
        if c.state.status != "running" or not c.state.pid:
            continue
        try:
            freezer = Freezer.of_process(c.state.pid)
            if freezer is not None and freezer.frozen():
                freezer.thaw()
        except OSError:
            continue


# --- export ----------------------------------------------------------------


@contextlib.contextmanager
def mounted_rootfs(images: ImageService, c: Container, running_rootfs: Path) -> Iterator[Path]:
    """The container's merged filesystem: its own mount when running, else a temporary one.

    The temporary one is read-only, with the container's upper dir as the top lower
    dir (overlay honours whiteouts and opaque dirs in lower dirs), so it never uses the
    snapshot's work dir and any number of exports can run side by side.
    """
    if c.state.running and os.path.ismount(running_rootfs):
        yield running_rootfs
        return
    upper, lowers = diffs.layer_dirs(images.snapshots.mounts(c.snapshot_key))
    if lowers:
        layers = ":".join(str(d) for d in [upper, *lowers])
        mounts = [Mount("overlay", "overlay", [f"lowerdir={layers}"])]
    else:
        mounts = [Mount("bind", str(upper), ["ro", "rbind"])]
    with tempfile.TemporaryDirectory(prefix="freight-export-") as tmp:
        target = Path(tmp)
        mounting.mount_all(mounts, target)
        try:
            yield target
        finally:
            mounting.unmount(target)


def export(images: ImageService, c: Container, running_rootfs: Path, out: BinaryIO) -> None:
    """Write the container's flattened filesystem as a tar to `out`."""
    try:
        with mounted_rootfs(images, c, running_rootfs) as root:
            layer_archive.write_layer_from_dir(root, out)
    except NotFound:
        raise NotFound(f"No such container: {c.id}") from None
    images.events.container(c, "export")
