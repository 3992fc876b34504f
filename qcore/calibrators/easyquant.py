"""easyquant calibrator (being written)."""
