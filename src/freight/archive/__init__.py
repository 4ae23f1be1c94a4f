"""freight.archive."""
