"""How long ``vtrade demo`` takes to serve its first page: fresh, and restarted on a full data dir.

Prints one JSON object (the last line of stdout); progress goes to stderr.

What runs: ``vtrade demo --port P --data-dir D`` as a subprocess (the installed command, as a
user starts it). ``first_page_s`` is the wall time from the process start to the first
``HTTP 200`` of ``/trader`` (the page a browser opens, with its account made), polled every
50 ms.

Then the data dir is filled the way a busy class fills it: ``--accounts`` accounts open on the
same demo market (in this process, on the same data dir), each entering ``--orders`` orders
(market and limit, across the universe, the capture and the synthetic stock) while the market
runs ``--slices`` slices; the market stops (a checkpoint, as on SIGTERM) and then runs
``--after`` more slices with more orders *without* a checkpoint (what a SIGKILL leaves: entries
after the last checkpoint, which a restart re-runs). The server is started again on that dir:
``restart_first_page_s`` is the same figure, and ``resumed`` what the market says it brought
back (its first lines of output).

The issue's floor: both within 45 s once installed.

    python benchmarks/bench_startup.py [--accounts 100] [--orders 10] [--slices 2000] [--after 600]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.localhost import free_port

FLOOR_S = 45.0




def _vtrade() -> list[str]:
    exe = shutil.which("vtrade", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "vtrade.cli"]


def first_page(data_dir: Path, timeout_s: float = 180.0) -> tuple[float, list[str]]:
    """Start ``vtrade demo`` on ``data_dir``; seconds to the first HTTP 200 of /trader, and its
    output lines; the server is stopped with SIGTERM after."""
    port = free_port()
    cmd = [*_vtrade(), "demo", "--port", str(port), "--data-dir", str(data_dir)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/trader"
    try:
        while True:
            if proc.poll() is not None:
                said = proc.stdout.read() if proc.stdout else ""
                raise RuntimeError(f"vtrade demo exited with {proc.returncode}: {said}")
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"no page at {url} within {timeout_s:.0f}s")
            time.sleep(0.05)
        took = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return took, out.splitlines()


def fill(data_dir: Path, accounts: int, orders: int, slices: int, after: int) -> dict[str, Any]:
    """Fill ``data_dir`` as a class would (see the module notes); returns what went in."""
    m = LiveMarket(LiveConfig.demo(speed=0), data_dir=data_dir)
    names = [f"bench-{i}" for i in range(accounts)]
    for n in names:
        if not m.has_account(n):
            m.open_account(n)
    symbols = ["SYNTH", "BTCUSDT", "AAPL", "MSFT", "JPM", "XOM"]
    entered = 0

    def trade(k: int) -> None:
        nonlocal entered
        for j, n in enumerate(names):
            if (j + k) % max(1, slices // orders) == 0:
                sym = symbols[(j + k) % len(symbols)]
                qty = m.suggested_quantity(sym) if sym == "BTCUSDT" else "10"
                side = "buy" if (j + k) % 3 else "sell"
                m.submit(n, sym, side, qty)
                entered += 1

    for k in range(slices):
        trade(k)
        m.advance(1)
    m.stop()  # a checkpoint, as on SIGTERM
    for k in range(after):
        trade(slices + k)
        m.advance(1)
    fills = sum(len(m.fills(n)) for n in names)
    assert m._durable is not None
    m._durable.close()  # as a kill leaves it: no checkpoint after the last entries
    m._durable = None
    size = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
    return {"accounts": accounts, "orders_entered": entered, "fills": fills, "slices": slices + after,
            "data_dir_mb": round(size / 1e6, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--orders", type=int, default=10, help="orders per account before the checkpoint")
    ap.add_argument("--slices", type=int, default=2000)
    ap.add_argument("--after", type=int, default=600, help="slices after the last checkpoint (as a kill leaves)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vtrade-startup-") as tmp:
        d = Path(tmp) / "data"
        print("fresh start ...", file=sys.stderr, flush=True)
        fresh, _ = first_page(d)
        print(f"  first page in {fresh:.1f}s; filling the data dir ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        filled = fill(d, args.accounts, args.orders, args.slices, args.after)
        filled["fill_s"] = round(time.perf_counter() - t, 1)
        print(f"  {filled}; restarting ...", file=sys.stderr, flush=True)
        again, lines = first_page(d)
    resumed = [ln for ln in lines if "resumed" in ln]
    out = {
        "first_page_s": round(fresh, 2),
        "restart_first_page_s": round(again, 2),
        "floor_s": FLOOR_S,
        "floor_ok": fresh <= FLOOR_S and again <= FLOOR_S,
        "data_dir": filled,
        "resumed": resumed[0] if resumed else None,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
