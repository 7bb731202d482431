"""Operations: what running workers say about themselves, and the status table built from it.

Pure domain code (DESIGN.md §2): :mod:`vtrade.ops.status` defines the heartbeat event a worker
publishes on the ``status`` topic and computes the status table (lag per partition, throughput,
last snapshot, stale workers) from heartbeats and offsets. Reading the bus and the wall clock is
the runtime's job (:mod:`vtrade.runtime.status`).
"""
