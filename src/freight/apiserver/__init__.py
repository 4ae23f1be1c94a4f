"""freight.apiserver."""
