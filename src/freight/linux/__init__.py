"""freight.linux."""
