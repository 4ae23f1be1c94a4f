"""freight.services."""
