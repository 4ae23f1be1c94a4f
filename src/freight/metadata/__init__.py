"""freight.metadata."""
