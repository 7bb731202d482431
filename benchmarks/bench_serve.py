"""The served trader dashboard under N concurrent sessions: update rate, update lag, server CPU and memory.

Prints one JSON object (the last line of stdout); progress goes to stderr.

What runs: ``vtrade serve`` as a separate server process (its defaults, plus whatever
``--server-args`` adds), on a free loopback port. ``--sessions`` dashboard sessions are opened by
real Bokeh protocol clients (``bokeh.client.pull_session``: the websocket protocol a browser
speaks, the whole document pulled), in ``--client-procs`` separate client processes so that the
clients' own work does not share a GIL with the measurement. Each session is one account with
its views refreshed by the server's one fan-out timer (every ``period_ms``, 2 Hz by default).

What is measured, after every session is connected and a ``--warmup`` (excluded):

- ``lag_ms``: for every update of a session's clock badge (``<span class='vt-clock'
  data-wall='…'>``, where ``data-wall`` is the wall-clock time at which the market computed the
  slice shown), the client's ``time.time()`` when the patch arrived minus ``data-wall``. It is
  the age of what the user sees at the moment it arrives: the slice's staleness when the refresh
  read it (up to one market slice, 50 ms at the default speed), plus the refresh, the
  serialisation, any queueing behind other sessions' refreshes, and the websocket. Client and
  server share the machine's clock.
- ``staleness_ms``: the age of the clock each session shows, sampled every 50 ms of the window
  (now minus the ``data-wall`` of the last update received). Unlike ``lag_ms``, which only
  counts the updates that arrive, it also sees the sessions that are not being updated.
- ``updates_per_session_per_s``: clock updates received per connected session per second (the
  target is ``1000 / period_ms``); ``updates_per_session_min_per_s`` is the slowest session's.
- ``server_cpu_pct``: user + system CPU time of the server process (all its threads) over the
  measured window, in % of one core (the GIL caps the Python work near 100 %).
  ``server_rss_mb``: resident memory at the end of the window (``server_rss_peak_mb``: the
  kernel's high-water mark).
- ``patch_events_per_session_per_s``: what the server pushes, by model type and attribute
  (diagnostics: what each refresh costs on the wire).
- ``connect_s_per_session``: how long pulling one session's document took while the others
  were already running (what a user arriving in a busy class waits for the page). Sessions
  open one after the other; past ``--connect-timeout`` no more are opened and the run measures
  those connected (``sessions_connected`` says how many; the floor then fails).
- ``machine.other_processes_cpu_pct``: CPU used by everything else on the machine during the
  window (the server competes with it for the cores; a busy machine makes the figures worse).

The clients read the websocket themselves (a plain loop over the connection's messages)
instead of ``ClientSession.loop_until_closed``: bokeh's client drives its connection by a
coroutine that awaits itself once per message, so its stack grows with every message and it
dies of ``RecursionError`` after a few hundred messages, i.e. within half a minute here. Each
client sends ``DocumentReady`` after pulling, as BokehJS does once the page is rendered: Panel
holds back some updates until then, so a client that stays
silent costs the server less than a browser. By default the clients only decode each message
and read the clock from it; ``--apply-patches`` also applies every patch to the client's copy
of the document, as a browser would (more client CPU, same server work).

The floor: at least 30 sessions connected, p95 lag <= 500 ms, and the achieved update rate at
least 90 % of the target.

``--scenario class`` (issue 12): before the server starts, a class is made in its data dir (the
default rules: the 500-stock universe), ``--sessions`` students join it and the teacher starts
its clock at ``--class-speed``; the server resumes it. The sessions are then the students'
``/student`` pages (each signed in by its token, as a personal link does), the teacher's
``/teacher`` page and the ``/projector`` page, all refreshed at 2 Hz. Every page shows the
class's clock with its ``data-wall``, so lag is measured alike on each (``lag_ms_by_kind``).
The class floor: p95 lag <= 250 ms.

``--bus URL --ui-processes N`` (issue 15): the market is scaled out with ``vtrade up --bus URL
--ui-processes N`` (a fresh namespace; one execution worker) and the sessions are spread round-robin
over the N servers, as a load balancer would. ``server_cpu_pct`` is then the whole tree of
processes ``vtrade up`` started (``cpu_pct_by_role`` splits it), and a replica's clock badge
carries the wall time at which the market's pacer started the slice, so its lag includes the
replication. ``--capacity 20,40,60`` runs the trader scenario at each session count, for 1 and then
for 2 UI processes (with ``--bus``), stops a ladder at its first count that misses 2 Hz at
p95 <= 250 ms, and prints both ladders and the ratio of capacities (the largest count that held).

    python benchmarks/bench_serve.py [--scenario trader|class] [--sessions 30] [--seconds 30] [--warmup 5]
                                     [--client-procs 1] [--server-args "--speed 20"] [--period-ms 500]
                                     [--apply-patches] [--class-speed 20]
                                     [--bus redis://localhost:6379/0 [--ui-processes 2] [--capacity 20,40,60]]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import math
import multiprocessing as mp
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import IO, Any

import numpy as np

from vtrade.runtime.localhost import free_ports

ROOT = Path(__file__).resolve().parent.parent
FLOOR_P95_LAG_MS = 500.0
FLOOR_SESSIONS = 30
FLOOR_RATE_FRACTION = 0.9
FLOOR_CLASS_P95_LAG_MS = 250.0  # issue 12: a class's 30 students, teacher and projector
FLOOR_SCALE_P95_LAG_MS = 250.0  # issue 15: what a session count must hold to count as served
TEACHER_SECRET = "bench-teacher-secret-0123456789"
Target = tuple[str, dict[str, str]]  # a session's page URL and its query arguments
WALL = re.compile(r"data-wall=['\"]([0-9]+(?:\.[0-9]+)?)['\"]")


def log(msg: str) -> None:
    print(f"[bench_serve {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the server process


def server_command(port: int, extra: list[str], bus: str | None = None, ui_processes: int = 1) -> list[str]:
    """``vtrade serve`` with this interpreter (``vtrade.cli`` runs ``main`` under ``-m``); with a
    ``bus``, ``vtrade up`` on a fresh namespace of it with ``ui_processes`` servers."""
    where = ["--port", str(port), "--address", "127.0.0.1"]
    if bus is None:
        return [sys.executable, "-m", "vtrade.cli", "serve", *where, *extra]
    url = f"{bus}{'&' if '?' in bus else '?'}namespace=bench-serve-{os.getpid()}-{time.time_ns()}"
    return [sys.executable, "-m", "vtrade.cli", "up", "--bus", url, "--ui-processes", str(ui_processes),
            "--execution-workers", "1", *where, *extra]  # fmt: skip


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until_served(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> float:
    """Seconds until ``url`` answers. A HEAD request: Tornado answers it (405) without running the
    app, so waiting opens no dashboard session (a GET would open one, with its own account)."""
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=2):
                return time.monotonic() - t0
        except urllib.error.HTTPError as err:
            if err.code < 500:  # 405: the route exists and the server is answering
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f}s:\n{tail(log_path)}")
        time.sleep(0.25)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def tree_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU time of a process and of each process below it, by command (the role
    ``vtrade up`` gave it: ``serve --port P``, ``worker execution``; or the process itself)."""
    import psutil

    out: dict[str, float] = {}
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            argv = proc.cmdline()
            words = argv[argv.index("vtrade.cli") + 1 :] if "vtrade.cli" in argv else [proc.name()]
            role = words[0] if words[0] != "worker" else " ".join(words[:2])
            if "--port" in words:  # one server of several
                role += f" :{words[words.index('--port') + 1]}"
            t = proc.cpu_times()
            out[role] = out.get(role, 0.0) + float(t.user + t.system)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads (not its children)."""
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def log_errors(text: str, limit: int = 10) -> dict[str, int]:
    """The server log's errors, counted: ERROR lines and each traceback's exception line."""
    found: Counter[str] = Counter()
    in_tb = False
    for ln in text.splitlines():
        if ln.startswith("Traceback"):
            in_tb = True
        elif in_tb and ln and not ln[0].isspace():
            found[ln[:300]] += 1
            in_tb = False
        elif "ERROR" in ln:
            found[ln[:300]] += 1
    return dict(found.most_common(limit))


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine, all cores (/proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory in MiB, from /proc (VmRSS, VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in status.splitlines()) if k in ("VmRSS", "VmHWM")}
    return kb.get("VmRSS", 0) / 1024, kb.get("VmHWM", 0) / 1024


# ---------------------------------------------------------------------------- the client processes
def _import_panel_models() -> None:
    """A pulled document holds Panel's (and Bokeh's) custom models: their classes must be
    registered in the client before deserialising, and ``panel.models`` imports its submodules
    lazily, so import them all."""
    import importlib
    import pkgutil

    import panel
    import panel.models

    for mod in pkgutil.iter_modules(panel.models.__path__):
        with contextlib.suppress(ImportError):  # optional extras (e.g. vtk) may be missing
            importlib.import_module(f"panel.models.{mod.name}")
    # The dashboard's own components (the clickable watchlist) define their models on import.
    importlib.import_module("vtrade.ui.trader")


class _Client:
    """One dashboard session: its Bokeh client session and what it received."""

    def __init__(self, index: int, session: Any, apply_patches: bool, window: Any) -> None:
        self.index = index
        self.window = window  # [start, end] of the measured window (0 = not yet), set by the parent
        self.session = session
        self.apply_patches = apply_patches
        self.kinds = {m.id: type(m).__name__ for m in session.document.models}
        clocks = [m.id for m in session.document.models if "vt-clock" in str(getattr(m, "text", "") or "")]
        self.clock_id = clocks[0] if clocks else None
        self.updates: list[tuple[float, float]] = []  # (received, data-wall), wall-clock seconds
        self.events: list[tuple[float, str]] = []  # (received, "Model.attr")
        self.closed_by_server = False
        self.closing = False  # set before we close: the end of the stream is ours, not the server's
        self.error = ""

    async def read(self) -> None:
        """Receive the server's messages until the connection closes (iteratively; see the notes)."""
        conn = self.session._connection
        try:
            while True:
                msg = await conn._pop_message()
                now = time.time()
                if msg is None:
                    self.closed_by_server = not self.closing
                    return
                if msg.msgtype != "PATCH-DOC":
                    continue
                start, end = self.window[0], self.window[1]
                counted = 0 < start <= now and not 0 < end < now  # only the window's events are kept
                for e in msg.content.get("events", ()):
                    attr = e.get("attr", e.get("kind", "?"))
                    if counted:
                        model = e.get("model")
                        mid = model.get("id") if isinstance(model, dict) else None
                        self.events.append((now, f"{self.kinds.get(mid, '?')}.{attr}"))
                    new = e.get("new")
                    if attr == "text" and isinstance(new, str) and "vt-clock" in new:
                        m = WALL.search(html.unescape(new))
                        if m:
                            self.updates.append((now, float(m.group(1))))
                if self.apply_patches:
                    self.session._handle_patch(msg)
        except Exception as exc:  # a client bug must show in the result, not vanish in the loop
            self.error = f"{type(exc).__name__}: {exc}"

    def result(self) -> dict[str, Any]:
        return {"index": self.index, "updates": self.updates, "events": self.events,
                "closed_by_server": self.closed_by_server, "error": self.error, "clock_found": bool(self.clock_id)}


def client_worker(worker: int, targets: list[Target], indices: list[int], out: Any, enough: EventType,
                  stop: EventType, window: Any, apply_patches: bool) -> None:
    """A client process: connect its sessions one after the other on one IOLoop (no more once
    ``enough`` is set), read them all until ``stop``, close them, and send back what each received."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import asyncio

    _import_panel_models()
    from bokeh.client import pull_session
    from bokeh.events import DocumentReady
    from tornado.ioloop import IOLoop, PeriodicCallback

    loop = IOLoop()
    clients: list[_Client] = []
    errors: list[str] = []
    pull_s: list[float] = []
    for i in indices:
        if enough.is_set() or stop.is_set():
            break
        t = time.monotonic()
        try:
            url, arguments = targets[i]
            session = pull_session(url=url, io_loop=loop, arguments=arguments or None)
        except Exception as exc:
            errors.append(f"session {i}: {type(exc).__name__}: {exc}")
            continue
        if not session.connected:
            errors.append(f"session {i}: not connected: {session.error_detail}")
            continue
        pull_s.append(time.monotonic() - t)
        client = _Client(i, session, apply_patches, window)
        if client.clock_id is None:
            errors.append(f"session {i}: no vt-clock model in the pulled document")
        clients.append(client)
        loop.add_callback(client.read)
        # What BokehJS sends once it has rendered the page. Panel holds back some updates (the
        # charts among them) until a session has said so: without it the server
        # would do less for these clients than for a browser.
        session.document.callbacks.send_event(DocumentReady())
        out.put(("progress", worker, len(clients), len(indices)))
    out.put(("connected", worker, len(clients), errors, pull_s))

    def poll() -> None:
        if stop.is_set():
            loop.stop()

    ticker = PeriodicCallback(poll, 50)
    ticker.start()
    loop.start()  # the sessions are read here until the parent says stop
    ticker.stop()
    for c in clients:
        c.closing = True
        with contextlib.suppress(Exception):
            c.session.close()
    with contextlib.suppress(Exception):
        loop.run_sync(lambda: asyncio.sleep(0.3))  # let the close frames go out
    out.put(("done", worker, [c.result() for c in clients]))


# ---------------------------------------------------------------------------- the run
def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "p99": round(float(np.percentile(a, 99)), 1), "max": round(float(a.max()), 1)}  # fmt: skip


def prepare_class(data_dir: Path, students: int, speed: float) -> tuple[str, list[str]]:
    """The class scenario's class, made before the server starts (as a teacher would have made it
    the day before): registration, ``students`` students joined, trading started at ``speed``.
    The server then resumes it from ``data_dir``. Returns the class id and the students' tokens."""
    from vtrade.classroom import ClassRules
    from vtrade.runtime.classroom import Classroom

    room = Classroom(data_dir, teacher_secret=TEACHER_SECRET)
    try:
        teacher = room.teacher(TEACHER_SECRET)
        cid = teacher.create_class("Benchmark class", ClassRules())  # the default: the 500-stock universe
        teacher.open_registration(cid)
        tokens = [room.join(teacher.join_code(cid), f"Student {i + 1}", address=f"bench-{i}").token
                  for i in range(students)]  # fmt: skip
        teacher.set_speed(cid, speed)
        teacher.start(cid)
    finally:
        room.close()
    return cid, tokens


def run(args: argparse.Namespace, server_log: IO[bytes], log_path: Path) -> dict[str, Any]:
    servers = args.ui_processes if args.bus else 1
    port = free_ports(servers)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/trader"
    extra = shlex.split(args.server_args)
    if not {"--data-dir", "--ephemeral"} & set(extra):
        # As users run it (durable, on the log), but never in the user's own data dir.
        extra += ["--data-dir", str(log_path.parent / "data")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Round-robin over the servers, as a load balancer in front of `vtrade up` would spread people.
    urls = [f"http://127.0.0.1:{port + i}/trader" for i in range(servers)]
    targets: list[Target] = [(urls[i % servers], {}) for i in range(args.sessions)]
    kinds = ["trader"] * args.sessions
    if args.scenario == "class":
        if "--data-dir" not in extra:
            raise RuntimeError("the class scenario keeps its class in a data dir: drop --ephemeral")
        data_dir = Path(extra[extra.index("--data-dir") + 1])
        log(f"making a class of {args.sessions} students in {data_dir}")
        cid, tokens = prepare_class(data_dir, args.sessions, args.class_speed)
        env["VTRADE_TEACHER_SECRET"] = TEACHER_SECRET
        url = f"{base}/join"
        targets = [(f"{base}/student", {"token": t}) for t in tokens]
        targets += [(f"{base}/teacher", {"secret": TEACHER_SECRET}),
                    (f"{base}/projector", {"class": cid, "secret": TEACHER_SECRET})]  # fmt: skip
        kinds = ["student"] * len(tokens) + ["teacher", "projector"]
    sessions = len(targets)
    cmd = server_command(port, extra, args.bus, servers)
    log(f"starting the server: {shlex.join(cmd)}")
    server = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    ctx = mp.get_context("spawn")  # fresh interpreters: nothing of this process's state is shared
    enough, stop = ctx.Event(), ctx.Event()
    shared_window = ctx.RawArray("d", 2)  # the measured window's [start, end], wall-clock; 0 = not yet
    out: Any = ctx.Queue()
    workers: list[Any] = []
    try:
        t_start = time.monotonic()
        for u in urls:
            wait_until_served(server, u, log_path, args.start_timeout)
        startup_s = time.monotonic() - t_start
        log(f"{url} answers after {startup_s:.1f}s; opening {sessions} sessions in {args.client_procs} "
            "client process(es)")  # fmt: skip
        procs = max(1, min(args.client_procs, sessions))
        for w in range(procs):
            indices = list(range(w, sessions, procs))
            work = (w, targets, indices, out, enough, stop, shared_window, args.apply_patches)
            p = ctx.Process(target=client_worker, name=f"bench-serve-client-{w}", daemon=True, args=work)
            p.start()
            workers.append(p)

        # Sessions open one at a time per client process, as people arrive. Past the connect
        # budget no more are opened and the run goes on with those that are connected (the
        # result says how many), rather than ending without figures.
        t_connect = time.monotonic()
        connected: dict[int, int] = {}
        errors: list[str] = []
        pull_s: list[float] = []
        while len(connected) < len(workers):
            if not enough.is_set() and time.monotonic() > t_connect + args.connect_timeout:
                log(f"connect budget of {args.connect_timeout:g}s spent: no more sessions are opened")
                enough.set()
            grace = t_connect + args.connect_timeout + 180.0  # a pull under way may take a while
            msg = _get(out, grace, server, workers, log_path, wait=5.0)
            if msg is None:
                continue
            if msg[0] == "progress":
                log(f"client process {msg[1]}: {msg[2]}/{msg[3]} sessions connected")
            elif msg[0] == "connected":
                connected[msg[1]] = msg[2]
                errors += msg[3]
                pull_s += msg[4]
        connect_s = time.monotonic() - t_connect
        n_connected = sum(connected.values())
        for e in errors:
            log(f"client error: {e}")
        log(f"{n_connected}/{sessions} sessions connected in {connect_s:.1f}s; warm-up {args.warmup:g}s")

        time.sleep(args.warmup)
        _check_alive(server, workers, log_path)
        load_before = os.getloadavg()[0]
        tree0, mcpu0 = tree_cpu_seconds(server.pid), machine_cpu_seconds()
        ccpu0 = [cpu_seconds(p.pid) for p in workers]
        t0 = time.time()
        shared_window[0] = t0
        log(f"measuring for {args.seconds:g}s")
        rss_samples = []
        while time.time() < t0 + args.seconds:
            time.sleep(min(1.0, max(0.0, t0 + args.seconds - time.time())))
            _check_alive(server, workers, log_path)
            rss_samples.append(rss_mb(server.pid)[0])
        tree1, mcpu1 = tree_cpu_seconds(server.pid), machine_cpu_seconds()
        ccpu1 = [cpu_seconds(p.pid) for p in workers]
        t1 = time.time()
        shared_window[1] = t1
        rss_end, rss_peak = rss_mb(server.pid)
        if args.bus:  # every process `vtrade up` started, not the supervisor alone
            import psutil

            rss = [rss_mb(p.pid) for p in psutil.Process(server.pid).children(recursive=True)]
            rss_end, rss_peak = sum(r[0] for r in rss), sum(r[1] for r in rss)
        stop.set()

        results: list[dict[str, Any]] = []
        done = 0
        deadline = time.monotonic() + 60
        while done < len(workers):
            msg = _get(out, deadline, server, workers, log_path, server_may_exit=True)
            if msg is not None and msg[0] == "done":
                results += msg[2]
                done += 1
    finally:
        stop.set()
        for p in workers:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)
        # `vtrade up` stops its roles one by one (servers, market, workers): give it the time, or
        # killing it would leave them running.
        stop_process(server, grace_s=90.0 if args.bus else 10.0)

    window = t1 - t0
    results.sort(key=lambda r: r["index"])
    if args.samples_out is not None:
        raw = {"t0": t0, "t1": t1, "sessions": {r["index"]: r["updates"] for r in results}}
        args.samples_out.write_text(json.dumps(raw))
    lags: list[float] = []
    per_session: list[int] = []
    events: Counter[str] = Counter()
    client_errors = [f"session {r['index']}: {r['error']}" for r in results if r["error"]]
    closed = sum(r["closed_by_server"] for r in results)
    stale: list[np.ndarray] = []
    grid = np.arange(t0, t1, 0.05)
    for r in results:
        if r["updates"]:
            recv, wall = np.array(r["updates"]).T
            last = np.searchsorted(recv, grid, side="right") - 1  # the update on screen at each instant
            shown = last >= 0
            stale.append((grid[shown] - wall[last[shown]]) * 1e3)
        mine = [(recv - wall) * 1e3 for recv, wall in r["updates"] if t0 <= recv <= t1]
        lags += mine
        per_session.append(len(mine))
        events.update(k for recv, k in r["events"] if t0 <= recv <= t1)
    target = 1000.0 / args.period_ms
    rate = sum(per_session) / (n_connected * window) if n_connected else 0.0
    lag = percentiles(lags)
    by_role = {role: (tree1[role] - tree0.get(role, 0.0)) / window * 100 for role in tree1}
    server_cpu = sum(by_role.values())
    client_cpu = [(b - a) / window * 100 for a, b in zip(ccpu0, ccpu1, strict=True)]
    machine_cpu = (mcpu1 - mcpu0) / window * 100
    floor_lag = args.floor_lag_ms or (FLOOR_P95_LAG_MS if args.scenario == "trader" else FLOOR_CLASS_P95_LAG_MS)
    ok = (n_connected >= FLOOR_SESSIONS and lag["p95"] is not None and lag["p95"] <= floor_lag
          and rate >= FLOOR_RATE_FRACTION * target)  # fmt: skip
    by_kind: dict[str, list[float]] = {}
    for r in results:
        by_kind.setdefault(kinds[r["index"]], []).extend(
            (recv - wall) * 1e3 for recv, wall in r["updates"] if t0 <= recv <= t1)
    return {
        "benchmark": "serve_sessions" if args.scenario == "trader" else "serve_class",
        "scenario": args.scenario,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "loadavg_1m_before": round(load_before, 2),
                    # Busy CPU of everything else on the machine during the window, in % of one
                    # core: the server and the clients share the cores with it.
                    "other_processes_cpu_pct": round(machine_cpu - server_cpu - sum(client_cpu), 1)},
        "server": {"command": shlex.join(cmd[1:]), "startup_s": round(startup_s, 1), "ui_processes": servers},
        "sessions": sessions,
        "sessions_by_kind": dict(Counter(kinds)),
        "sessions_connected": n_connected,
        "connect_s": round(connect_s, 1),
        # Time to pull one session's document, as sessions keep arriving: what a new user waits.
        "connect_s_per_session": {"p50": round(float(np.median(pull_s)), 2) if pull_s else None,
                                  "max": round(max(pull_s), 2) if pull_s else None},
        "period_ms": args.period_ms,
        "seconds": round(window, 2),
        "warmup_s": args.warmup,
        "client_procs": len(workers),
        "apply_patches": args.apply_patches,
        "updates_total": sum(per_session),
        "updates_per_session_per_s": round(rate, 3),
        "updates_per_session_min_per_s": round(min(per_session) / window, 3) if per_session else 0.0,
        "updates_by_session": per_session,
        "target_updates_per_session_per_s": round(target, 3),
        "lag_ms": lag,
        "lag_mean_ms": round(float(np.mean(lags)), 1) if lags else None,
        "lag_ms_by_kind": {k: percentiles(v) for k, v in sorted(by_kind.items())},
        "staleness_ms": percentiles(np.concatenate(stale).tolist() if stale else []),
        "server_cpu_pct": round(server_cpu, 1),
        "cpu_pct_by_role": {role: round(v, 1) for role, v in sorted(by_role.items())},
        "server_rss_mb": round(rss_end, 1),
        "server_rss_peak_mb": round(rss_peak, 1),
        "server_rss_min_mb_in_window": round(min(rss_samples), 1) if rss_samples else None,
        "client_cpu_pct": [round(c, 1) for c in client_cpu],
        "patch_events_per_session_per_s": {
            k: round(v / (max(n_connected, 1) * window), 2) for k, v in events.most_common()
        },
        "problems": errors + client_errors + ([f"{closed} session(s) closed by the server"] if closed else []),
        "floor": {"p95_lag_ms_max": floor_lag, "sessions_min": FLOOR_SESSIONS,
                  "update_rate_min_fraction": FLOOR_RATE_FRACTION, "ok": ok},
    }


def _check_alive(server: subprocess.Popen[bytes], workers: list[Any], log_path: Path) -> None:
    if server.poll() is not None:
        raise RuntimeError(f"the server exited with code {server.returncode}:\n{tail(log_path)}")
    dead = [p.name for p in workers if not p.is_alive()]
    if dead:
        raise RuntimeError(f"client process(es) died: {', '.join(dead)}")


def _get(out: Any, deadline: float, server: subprocess.Popen[bytes], workers: list[Any], log_path: Path, *,
         server_may_exit: bool = False, wait: float | None = None) -> tuple[Any, ...] | None:
    """The next message from a client process (None after ``wait`` seconds without one),
    watching that everyone is still alive."""
    import queue

    until = time.monotonic() + wait if wait is not None else math.inf
    while time.monotonic() < until:
        try:
            return out.get(timeout=0.5)  # type: ignore[no-any-return]
        except queue.Empty:
            pass
        if not server_may_exit and server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}:\n{tail(log_path)}")
        if any(not p.is_alive() and p.exitcode not in (0, None) for p in workers):
            raise RuntimeError("a client process died: " + ", ".join(
                f"{p.name} (exit {p.exitcode})" for p in workers if not p.is_alive()))  # fmt: skip
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the client processes")
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30,
                    help="concurrent dashboard sessions (the floor needs 30); in a class, the students")
    ap.add_argument("--scenario", choices=("trader", "class"), default="trader",
                    help="trader: sessions of /trader; class: a class of --sessions students on /student, "
                         "plus the teacher's page and the projector")
    ap.add_argument("--class-speed", type=float, default=20.0, help="the class's clock speed (class scenario)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window, after all sessions connected")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after connecting that are not measured")
    ap.add_argument("--client-procs", type=int, default=1, help="client processes the sessions are spread over")
    ap.add_argument("--period-ms", type=int, default=500,
                    help="the server's refresh period, for the target rate (the server's default is 500 ms)")
    ap.add_argument("--server-args", default="", help="extra arguments for `vtrade serve` (one string, shlex-split)")
    ap.add_argument("--apply-patches", action="store_true", help="clients also apply every patch to their document")
    ap.add_argument("--samples-out", type=Path, help="also write every session's (received, data-wall) pairs here")
    ap.add_argument("--start-timeout", type=float, default=120.0, help="seconds to wait for the server to answer")
    ap.add_argument("--connect-timeout", type=float, default=600.0,
                    help="budget for opening the sessions; past it the run goes on with those connected")
    ap.add_argument("--bus", metavar="URL",
                    help="run the market with `vtrade up --bus URL` (a fresh namespace) instead of `vtrade serve`")
    ap.add_argument("--ui-processes", type=int, default=1, help="with --bus: servers the sessions are spread over")
    ap.add_argument("--capacity", metavar="N,N,...",
                    help="session counts to climb, for 1 and (with --bus) 2 UI processes: the largest that holds "
                         f"2 Hz at p95 <= {FLOOR_SCALE_P95_LAG_MS:g} ms, and the ratio")  # fmt: skip
    ap.add_argument("--floor-lag-ms", type=float, help="the p95 lag a run must hold (default: the scenario's floor)")
    args = ap.parse_args()
    if args.sessions < 1 or args.seconds <= 0 or args.warmup < 0 or args.client_procs < 1 or args.period_ms <= 0:
        ap.error("--sessions, --client-procs, --seconds and --period-ms must be positive, --warmup >= 0")
    if args.ui_processes < 1 or (args.ui_processes > 1 and not args.bus):
        ap.error("--ui-processes must be positive, and more than 1 needs --bus (the servers share its log)")
    if args.capacity:
        try:
            counts = sorted({int(c) for c in args.capacity.split(",")})
        except ValueError:
            ap.error(f"--capacity takes session counts like 20,40,60, got {args.capacity!r}")
        if not counts or counts[0] < 1 or args.scenario != "trader":
            ap.error("--capacity climbs positive session counts of the trader scenario")
        try:
            return capacity(args, counts)
        except KeyboardInterrupt:
            log("interrupted; the server and the clients are stopped")
            return 130
    try:
        out = measure(args)
    except KeyboardInterrupt:
        log("interrupted; the server and the clients are stopped")
        return 130
    if out is None:
        return 1
    print(json.dumps(out, indent=None))
    return 0 if math.isfinite(out["server_cpu_pct"]) else 1


def measure(args: argparse.Namespace) -> dict[str, Any] | None:
    """One run of ``args`` (None if it failed, said on stderr)."""
    with tempfile.TemporaryDirectory(prefix="bench_serve-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as server_log:
            try:
                out = run(args, server_log, log_path)
            except RuntimeError as exc:
                log(f"error: {exc}")
                return None
        out["server_log_errors"] = log_errors(tail(log_path, 5000))
    return out


def capacity(args: argparse.Namespace, counts: list[int]) -> int:
    """Climb ``counts`` for 1 and (with ``--bus``) 2 UI processes; print one JSON object."""
    args.floor_lag_ms = args.floor_lag_ms or FLOOR_SCALE_P95_LAG_MS
    ladders: dict[int, list[dict[str, Any]]] = {}
    held: dict[int, int] = {}
    for servers in (1, 2) if args.bus else (1,):
        args.ui_processes = servers
        ladders[servers], held[servers] = [], 0
        for n in counts:
            args.sessions = n
            log(f"capacity: {n} sessions on {servers} UI process(es)")
            out = measure(args)
            ok = out is not None and out["lag_ms"]["p95"] is not None and out["lag_ms"]["p95"] <= args.floor_lag_ms \
                and out["sessions_connected"] == n and out["updates_per_session_per_s"] >= FLOOR_RATE_FRACTION * (
                    1000.0 / args.period_ms)  # fmt: skip
            ladders[servers].append({
                "sessions": n, "held": ok,
                **({} if out is None else {k: out[k] for k in ("sessions_connected", "lag_ms",
                   "updates_per_session_per_s", "server_cpu_pct", "cpu_pct_by_role", "machine")}),
            })  # fmt: skip
            if not ok:
                break
            held[servers] = n
    result = {
        "benchmark": "serve_capacity",
        "bus": args.bus,
        "criterion": {"p95_lag_ms_max": args.floor_lag_ms, "update_rate_min_per_s": FLOOR_RATE_FRACTION * 1000.0
                      / args.period_ms, "seconds": args.seconds},
        "capacity_sessions": held,
        # Capacity of two UI processes over one (one run, same machine): what scaling out buys.
        "ratio_2_over_1": round(held[2] / held[1], 2) if len(held) == 2 and held[1] else None,
        "ladders": ladders,
    }
    print(json.dumps(result, indent=None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
