"""freight.shim."""
