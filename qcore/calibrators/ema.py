"""ema calibrator (being written)."""
