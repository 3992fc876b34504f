"""log2 calibrator (being written)."""
