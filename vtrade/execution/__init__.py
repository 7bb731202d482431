"""Execution: orders, their state machine, matching on the realism ladder, fees and account rules.

Pure domain code (DESIGN.md §2, §4-5): given state and an event, it returns new state and
output events; no I/O, no wall clock, randomness only from a seeded NumPy Generator.
"""
