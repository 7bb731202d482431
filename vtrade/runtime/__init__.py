"""Runtime: the imperative shell. Bus backends, workers, pacing, the DuckDB store.

Domain packages never import from here (DESIGN.md §2).
"""
