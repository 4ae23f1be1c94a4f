"""freight.archive: layer tars in and out (see `layers` for the public operations)."""

from freight.archive.layers import apply_layer, compute_diff_id, write_layer_from_dir

__all__ = ["apply_layer", "compute_diff_id", "write_layer_from_dir"]
