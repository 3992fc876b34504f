"""admm calibrator (being written)."""
