"""Loopback helpers shared by the servers' tests, the benchmarks and anything that starts a local
service: a free TCP port, and whether a Redis server answers on one.

>>> 0 < free_port() < 65536
True
>>> answers_ping(free_port())  # nothing listens on a port just found free
False
"""

from __future__ import annotations

import socket

__all__ = ["answers_ping", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis server on 127.0.0.1:``port`` answers ``PING`` (inline protocol)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
