"""A build step's changes committed as a layer in place: no extraction of the tar.

    settle(upper)    the runtime's and the step's empty mount-point stubs removed,
                     mtimes clamped to SOURCE_DATE_EPOCH: the upper dir now holds
                     exactly what the layer tar will say
    write the tar    into the content store; its digest is the layer's diff id,
                     so the image ID stays a content address (and reproducible)
    adopt            the step's snapshot becomes the layer's committed snapshot
                     (named by ChainID) as it is, the next step's lower dir

The round trip this replaces (write the tar, extract it into a new snapshot,
delete the step's snapshot) wrote every changed file twice more; for a COPY of
a 50 MB project that was most of the step.

An upper dir is reused only when overlay leaves no xattrs in it that point
into its lower dirs (redirect_dir, metacopy and index off, the kernel's
defaults); otherwise `commit_step` falls back to the round trip.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from freight.oci.digest import Digest
from freight.services import diffs
from freight.services.commit import write_snapshot_layer
from freight.services.images import ImageService, NewLayer

_OVERLAY_PARAMS = Path("/sys/module/overlay/parameters")
_UNSAFE_FEATURES = ("redirect_dir", "metacopy", "index")


def commit_step(
    images: ImageService,
    below: list[Digest],
    key: str,
    stubs: list[str],
    max_mtime: int | None,
    in_place: bool = True,
) -> tuple[NewLayer, bool]:
    """The step's layer from snapshot `key` on top of layers `below` (diff ids,
    bottom first); (layer, adopted).

    When adopted, `key` is gone (it is the layer's snapshot now); else the caller
    still owns it. The caller holds `images.creating()` until the image is stored.
    """
    in_place = in_place and in_place_supported()
    if in_place:
        upper, lowers = diffs.layer_dirs(images.snapshots.mounts(key))
        settle(upper, lowers, stubs, max_mtime)
    layer = write_snapshot_layer(images, key, stubs, max_mtime)
    if not in_place:
        return layer, False
    images.adopt_snapshot(key, [*below, layer.diff_id])
    return layer, True


def in_place_supported(params: Path = _OVERLAY_PARAMS) -> bool:
    """Whether overlay writes only self-contained upper dirs (no redirects, metacopy
    or index file handles): only then is an upper dir a valid lower dir elsewhere."""
    for name in _UNSAFE_FEATURES:
        try:
            value = (params / name).read_text().strip()
        except OSError:
            continue  # a kernel without the feature
        if value not in ("N", "n", "0", "off"):
            return False
    return True


def settle(upper: Path, lowers: list[Path], stubs: list[str], max_mtime: int | None) -> None:
    """Make `upper` what its layer tar extracts to (see the module docstring)."""
    _remove_stubs(upper, lowers, stubs)
    if max_mtime is not None:
        _clamp_mtimes(upper, max_mtime)
    st = os.lstat(upper)
    # The tar has no entry for the root: extraction leaves it root's, 0755.
    if stat.S_IMODE(st.st_mode) != 0o755:
        os.chmod(upper, 0o755)
    if (st.st_uid, st.st_gid) != (0, 0):
        os.chown(upper, 0, 0)


def _remove_stubs(upper: Path, lowers: list[Path], stubs: list[str]) -> None:
    """The entries `write_snapshot_layer` leaves out, gone from the upper dir too;
    their parent directories keep their times (the tar has those)."""
    below = diffs.LowerDirs(lowers)
    step_stubs = set(stubs)
    candidates = set(diffs.INIT_FILES) | set(diffs.INIT_DIRS) | step_stubs
    # Deepest first, so dev/pts goes before dev.
    for rel in sorted(candidates, key=lambda r: (-r.count("/"), r)):
        path = upper / rel
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        init = diffs.is_init_stub(rel, st)
        if not (init or (rel in step_stubs and _empty(path, st))):
            continue
        if below.stat(rel) is not None:
            continue  # the image has it: a change, kept
        parent = path.parent
        parent_st = os.lstat(parent)
        try:
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            continue  # a stub directory with contents: the contents are changes
        os.utime(parent, ns=(parent_st.st_atime_ns, parent_st.st_mtime_ns))


def _empty(path: Path, st: os.stat_result) -> bool:
    if stat.S_ISDIR(st.st_mode):
        with os.scandir(path) as it:
            return not any(True for _ in it)
    return st.st_size == 0


def _clamp_mtimes(root: Path, max_mtime: int) -> None:
    """Every entry's mtime at most `max_mtime`, as the layer tar has them, so a later
    step reading times (a RUN making an archive) sees what an extracted layer shows."""
    limit = max_mtime * 1_000_000_000
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if st.st_mtime_ns > limit:
                    os.utime(entry.path, ns=(st.st_atime_ns, limit), follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
