"""freight.runtime."""
