"""freight.builder."""
