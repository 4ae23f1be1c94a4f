"""freight.daemon."""
