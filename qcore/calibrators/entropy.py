"""entropy calibrator (being written)."""
