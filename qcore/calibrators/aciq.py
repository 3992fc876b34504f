"""aciq calibrator (being written)."""
