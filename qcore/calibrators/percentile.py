"""percentile calibrator (being written)."""
