"""`docker diff`: what a container changed, read from its overlay upper dir.

The upper dir holds everything the container wrote; the image's layers are
the lower dirs. Each path in the upper dir is

    D  a whiteout (char device 0:0): the container deleted it
    A  absent from every lower dir (or hidden there by a whiteout or an
       opaque directory)
    C  present below: changed (a directory only when its mtime differs or it
       is opaque, since overlay copies a directory up when a child changes)

An opaque directory (xattr trusted.overlay.opaque=y) replaced what was below
it: what the lower dirs had there and the upper dir lacks is reported D.
Parents of an A or D are reported C, as Docker does.

The container's mount-point stubs (`/etc/hosts` and friends, created empty by
the runtime to bind-mount over) are Docker's "init layer" and are neither
reported nor committed: `is_init_stub` decides.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from freight.archive.whiteouts import is_overlay_opaque, is_overlay_whiteout
from freight.snapshots import Mount

# Files the daemon bind-mounts over; the runtime creates them empty if missing.
INIT_FILES = frozenset({"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"})
# Mount points the runtime creates as empty directories if the image lacks them.
INIT_DIRS = frozenset({"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue"})


class Kind(IntEnum):
    """Docker's change kinds, with the numbers of its API."""

    MODIFIED = 0
    ADDED = 1
    DELETED = 2

    @property
    def letter(self) -> str:
        return "CAD"[self.value]


@dataclass(frozen=True, order=True)
class Change:
    path: str  # absolute inside the container: "/etc/motd"
    kind: Kind


def layer_dirs(mounts: list[Mount]) -> tuple[Path, list[Path]]:
    """(upper dir, lower dirs nearest first) of a container snapshot's mounts."""
    for m in mounts:
        if m.type == "bind":
            return Path(m.source), []
        opts = dict(o.partition("=")[::2] for o in m.options)
        if "upperdir" in opts:
            lowers = [Path(p) for p in opts.get("lowerdir", "").split(":") if p]
            return Path(opts["upperdir"]), lowers
    raise ValueError("the snapshot has no writable layer")


def is_init_stub(rel: str, st: os.stat_result) -> bool:
    """An empty mount-point stub the runtime made, not a change of the container's own."""
    if rel in INIT_FILES:
        return stat.S_ISREG(st.st_mode) and st.st_size == 0
    return rel in INIT_DIRS and stat.S_ISDIR(st.st_mode)


class LowerDirs:
    """Looks paths up through the lower dirs as overlay would."""

    def __init__(self, lowers: list[Path]) -> None:
        self.lowers = lowers

    def stat(self, rel: str) -> os.stat_result | None:
        parts = rel.split("/")
        for lower in self.lowers:
            st = _lstat(lower / rel)
            if st is not None:
                return None if is_overlay_whiteout(st) else st
            # An opaque ancestor in this layer hides everything further down.
            if any(is_overlay_opaque(lower.joinpath(*parts[:i])) for i in range(1, len(parts))):
                return None
        return None

    def names(self, rel: str) -> set[str]:
        """What the lower dirs show in directory `rel` (whiteouts applied)."""
        shown: set[str] = set()
        hidden: set[str] = set()
        for lower in self.lowers:
            d = lower / rel
            try:
                entries = list(os.scandir(d))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                if e.name in shown or e.name in hidden:
                    continue
                if is_overlay_whiteout(e.stat(follow_symlinks=False)):
                    hidden.add(e.name)
                else:
                    shown.add(e.name)
            if is_overlay_opaque(d):
                break
        return shown


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """The container's changes, sorted by path."""
    below = LowerDirs(lowers)
    found: dict[str, Kind] = {}

    def mark_parent(rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent and parent not in found:
            found[parent] = Kind.MODIFIED

    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        base = os.path.relpath(dirpath, upper)
        base = "" if base == "." else base
        for name in sorted(dirnames + filenames):
            rel = f"{base}/{name}" if base else name
            st = os.lstat(os.path.join(dirpath, name))
            kind = _kind(rel, st, os.path.join(dirpath, name), below)
            if kind is None:
                continue
            found[rel] = kind
            if kind is not Kind.MODIFIED:
                mark_parent(rel)
            if stat.S_ISDIR(st.st_mode) and is_overlay_opaque(os.path.join(dirpath, name)):
                mine = set(os.listdir(os.path.join(dirpath, name)))
                for gone in below.names(rel) - mine:
                    found[f"{rel}/{gone}"] = Kind.DELETED
    return sorted(Change("/" + rel, kind) for rel, kind in found.items())


def _kind(rel: str, st: os.stat_result, path: str, below: LowerDirs) -> Kind | None:
    if is_overlay_whiteout(st):
        return Kind.DELETED if below.stat(rel) is not None else None
    lower = below.stat(rel)
    if lower is None:
        return None if is_init_stub(rel, st) else Kind.ADDED
    if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lower.st_mode):
        same_time = st.st_mtime_ns == lower.st_mtime_ns
        if same_time and not is_overlay_opaque(path):
            return None
        if rel in INIT_DIRS:
            return None
    if is_init_stub(rel, st) and rel in INIT_FILES and lower.st_size == 0:
        return None
    return Kind.MODIFIED
