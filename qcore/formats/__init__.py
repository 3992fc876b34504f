"""Number formats: how values are encoded (element grids, block structure, scale encoding, storage cost)."""
