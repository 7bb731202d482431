"""``vtrade up``: the roles of a scaled-out market as separate local processes, supervised together.

Each role is one ``vtrade`` command (``worker execution``, ``serve``) in its own process. The
supervisor starts them, prefixes every line they print with the role's name (``[execution-1]
...``, as ``docker compose`` does), restarts a role that dies on its own (a worker resumes from
its snapshots and the log), and stops them all together: on Ctrl-C or SIGTERM it sends each
SIGTERM, last started first (the server before the workers that it waits on), and SIGKILLs
what has not exited after ``grace_s``. If a role keeps dying (more than ``restarts`` times) the
supervisor stops everything and fails: a crash loop is a configuration error to read, not to hide.

>>> import sys
>>> up = Supervisor([Role("hello", [sys.executable, "-c", "print('hi')"])], restarts=0)
>>> up.roles[0].name
'hello'
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Role", "Supervisor"]


@dataclass(frozen=True)
class Role:
    """One process of the deployment: its name and its command line."""

    name: str
    argv: list[str]


@dataclass
class _Running:
    role: Role
    proc: subprocess.Popen[str]
    reader: threading.Thread
    starts: int = 1
    lines: list[str] = field(default_factory=list)  # the last few, for a crash report


class Supervisor:
    """Start ``roles`` in order, forward their output to ``out``, keep them up, stop them together."""

    def __init__(self, roles: Sequence[Role], *, out: TextIO = sys.stdout, restarts: int = 3,
                 grace_s: float = 30.0, env: dict[str, str] | None = None) -> None:  # fmt: skip
        names = [r.name for r in roles]
        if len(set(names)) != len(names):
            raise ValueError(f"role names must differ, got {names}")
        self.roles = list(roles)
        self.out = out
        self.restarts = restarts
        self.grace_s = grace_s
        self.env = env
        self._running: dict[str, _Running] = {}
        self._out_lock = threading.Lock()
        self._changed = threading.Condition()

    def say(self, line: str) -> None:
        with self._out_lock:
            print(line, file=self.out, flush=True)

    def start(self) -> None:
        """Start every role (in order) and say where each is."""
        for role in self.roles:
            self._spawn(role, starts=1)

    def _spawn(self, role: Role, starts: int) -> None:
        # Their own process group: Ctrl-C in the terminal reaches the supervisor only, which
        # stops the roles in order instead of all at once.
        proc = subprocess.Popen(role.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, env=self.env, start_new_session=True)  # fmt: skip
        reader = threading.Thread(target=self._forward, args=(role.name, proc), name=f"up-{role.name}", daemon=True)
        self._running[role.name] = _Running(role, proc, reader, starts)
        reader.start()
        self.say(f"vtrade up: {role.name} started, pid {proc.pid}: {' '.join(role.argv[1:])}")

    def _forward(self, name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            running = self._running.get(name)
            if running is not None and running.proc is proc:
                running.lines = [*running.lines[-19:], line.rstrip()]
            self.say(f"[{name}] {line.rstrip()}")
        proc.wait()
        with self._changed:
            self._changed.notify_all()

    def run(self, stop: threading.Event) -> int:
        """Keep the roles up until ``stop`` is set (0), or one keeps dying (1); then stop all."""
        try:
            while not stop.is_set():
                with self._changed:
                    dead = [r for r in self._running.values() if r.proc.poll() is not None]
                    if not dead:
                        # Woken by a role's exit; the timeout only bounds how late a stop is seen.
                        self._changed.wait(0.2)
                        continue
                for r in dead:
                    code = r.proc.returncode
                    if r.starts > self.restarts:
                        self.say(f"vtrade up: {r.role.name} exited with {code} after {r.starts} starts; stopping all")
                        return 1
                    self.say(f"vtrade up: {r.role.name} exited with {code}; restarting it")
                    r.reader.join(timeout=5)
                    self._spawn(r.role, r.starts + 1)
            return 0
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM each running role, last started first; SIGKILL what outlives ``grace_s``."""
        for r in reversed(list(self._running.values())):
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
                try:
                    r.proc.wait(timeout=self.grace_s)
                except subprocess.TimeoutExpired:
                    self.say(f"vtrade up: {r.role.name} did not stop within {self.grace_s:g} s; killing it")
                    os.killpg(r.proc.pid, signal.SIGKILL)
                    r.proc.wait()
            r.reader.join(timeout=5)
            self.say(f"vtrade up: {r.role.name} stopped ({r.proc.returncode})")

    def pids(self) -> dict[str, int]:
        """The running process of each role."""
        return {name: r.proc.pid for name, r in self._running.items()}
