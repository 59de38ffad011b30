"""specialize rules (being written)."""
