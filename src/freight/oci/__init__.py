"""freight.oci."""
