"""UI: renders state and sends commands; holds no rules (DESIGN.md §2)."""
