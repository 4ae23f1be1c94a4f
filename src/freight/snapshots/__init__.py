"""freight.snapshots: layered filesystems for images and containers (see `overlay`)."""

from freight.snapshots.model import Kind, Mount, SnapshotInfo
from freight.snapshots.overlay import OverlaySnapshotter

__all__ = ["Kind", "Mount", "OverlaySnapshotter", "SnapshotInfo"]
