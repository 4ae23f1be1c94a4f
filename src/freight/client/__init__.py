"""freight.client."""
