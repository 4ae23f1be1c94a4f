"""freight.cli."""
