"""freight.content."""
