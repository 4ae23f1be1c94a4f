"""freight.distribution."""
