"""mse calibrator (being written)."""
