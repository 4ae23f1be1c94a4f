"""What a snapshotter hands out: snapshot info and mounts (descriptions, not mounts).

The lifecycle, shared by every snapshotter (after containerd's
core/snapshots/snapshotter.go). A snapshot is a directory tree; a committed
snapshot never changes; children are layered on a committed parent.

    s.prepare("extract-1", parent=None)     # active: writable, empty
    apply_layer(blob, s.upper_dir("extract-1"))
    s.commit("sha256:<chainid L0>", "extract-1")
                                            # committed, immutable, named by chain id;
                                            # the key "extract-1" is gone
    s.prepare("extract-2", parent="sha256:<chainid L0>")
    apply_layer(blob2, s.upper_dir("extract-2"))   # only L1's changes land here
    s.commit("sha256:<chainid L1>", "extract-2")

    mounts = s.prepare("ctr-abc", parent="sha256:<chainid L1>")
                                            # a container's writable rootfs;
                                            # the caller mounts `mounts` at its rootfs
    mounts = s.view("ro-abc", parent="sha256:<chainid L1>")
                                            # read-only, never committed
    s.remove("ctr-abc")                     # when the container is deleted
    s.remove("sha256:<chainid L1>")         # only once it has no children (else Conflict)

Kinds: ACTIVE (from prepare; may be committed), VIEW (from view; read-only,
may only be removed), COMMITTED (from commit; may be a parent). Names and keys
share one namespace.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Kind(enum.StrEnum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount to perform, in the shape of mount(8): `mount -t type -o options source target`."""

    type: str
    source: str
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    name: str
    parent: str | None
    kind: Kind
    created: datetime
