"""inference rules (being written)."""
