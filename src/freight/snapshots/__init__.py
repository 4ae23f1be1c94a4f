"""freight.snapshots."""
