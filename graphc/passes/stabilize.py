"""stabilize rules (being written)."""
