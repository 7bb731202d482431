"""Peer engines run on the same input as vtrade, for side-by-side benchmarks (see README.md)."""
