"""freight.registry."""
