"""freight.dockerapi."""
