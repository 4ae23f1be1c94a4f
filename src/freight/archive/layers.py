"""The layer operations other packages use: apply, write, diff id.

    with store.open(layer.digest) as blob:
        size = apply_layer(blob, snapshotter.upper_dir(key), whiteouts="overlay",
                           expected_diff_id=config.rootfs_diff_ids[i])

Implementation lives in `apply` (extraction, hostile input) and `write`
(deterministic tars).
"""

from freight.archive.apply import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_SIZE,
    WhiteoutMode,
    apply_layer,
)
from freight.archive.write import compute_diff_id, write_layer_from_dir

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_SIZE",
    "WhiteoutMode",
    "apply_layer",
    "compute_diff_id",
    "write_layer_from_dir",
]
