"""freight.network."""
