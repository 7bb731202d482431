"""The live market on the log, durable under a data dir (issue 10, items 3-4).

A market with a data dir journals every entry before it answers and checkpoints itself; a new
market on the same dir resumes from the latest checkpoint and re-runs the entries after it at the
slices they were made in. The tests compare the resumed market with the one that never stopped:
same orders, fills, portfolio and NAV history, and the same future.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from vtrade.runtime.bus import open_bus
from vtrade.runtime.datadir import DataDirError
from vtrade.runtime.execution_worker import output_hash
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.live_log import Durable

CONFIG = LiveConfig(symbols=("AAPL", "XOM"), speed=0, burn_in=20_000)


def _trade(m: LiveMarket) -> str:
    """A morning of one account: fills, a resting limit order, a cancel, a refusal."""
    m.open_account("ada", cash=50_000)
    m.advance(5)
    assert m.submit("ada", "AAPL", "buy", 10).ok
    m.advance(3)
    m.checkpoint()
    assert m.submit("ada", "XOM", "buy", 5).ok
    m.advance(2)
    rest = m.submit("ada", "XOM", "buy", 100, "limit", 50)
    assert not m.submit("ada", "AAPL", "buy", 100_000).ok  # refused by the account rules: kept as rejected
    m.advance(4)
    assert m.cancel("ada", rest.client_order_id).ok
    m.advance(1)
    assert m.submit("ada", "AAPL", "sell", 3).ok
    return rest.client_order_id


def _same(a: LiveMarket, b: LiveMarket, account: str = "ada") -> None:
    pd.testing.assert_frame_equal(a.orders(account), b.orders(account))
    pd.testing.assert_frame_equal(a.fills(account), b.fills(account))
    pd.testing.assert_frame_equal(a.nav_history(account), b.nav_history(account))
    assert a.portfolio(account)["summary"] == b.portfolio(account)["summary"]
    pd.testing.assert_frame_equal(a.leaderboard(), b.leaderboard())


def _killed(m: LiveMarket) -> None:
    """As if the process died: the data dir is let go of without a checkpoint or a clean stop."""
    assert m._durable is not None
    m._durable.close()
    m._durable = None


def test_a_restart_after_a_kill_brings_back_everything_and_the_same_future(tmp_path: Path) -> None:
    m = LiveMarket(CONFIG, data_dir=tmp_path)
    _trade(m)
    _killed(m)  # five entries after the last checkpoint exist only in the journal
    back = LiveMarket(CONFIG, data_dir=tmp_path)
    assert back.resumed is not None and "5 re-run after the last checkpoint" in back.resumed, back.resumed
    _same(m, back)
    assert set(back.orders("ada").status) == {"filled", "cancelled", "rejected", "pending_new"}
    m.advance(40)
    back.advance(40)
    _same(m, back)  # and the market goes on exactly as if it had never stopped
    back.close()


def test_a_clean_stop_checkpoints_and_a_restart_reruns_nothing(tmp_path: Path) -> None:
    m = LiveMarket(CONFIG, data_dir=tmp_path)
    _trade(m)
    m.close()
    back = LiveMarket(CONFIG, data_dir=tmp_path)
    assert back.resumed is not None and "(0 re-run" in back.resumed, back.resumed
    _same(m, back)
    back.close()


def test_a_resting_order_survives_a_restart_and_fills_after_it(tmp_path: Path) -> None:
    m = LiveMarket(CONFIG, data_dir=tmp_path)
    m.open_account("bo", cash=100_000)
    m.advance(3)
    bid = float(m.quotes(["AAPL"]).bid[0])
    coid = m.submit("bo", "AAPL", "buy", 10, "limit", round(bid - 0.05, 2), "gtc").client_order_id
    m.advance(2)
    m.close()
    back = LiveMarket(CONFIG, data_dir=tmp_path)
    row = back.orders("bo").set_index("client_order_id").loc[coid]
    assert row.status == "accepted"
    depth = back.depth("AAPL", account="bo")
    assert depth.mine.sum() == 10  # it rests in the restored book, at its place
    assert back.cancel("bo", coid).ok
    back.advance(1)
    assert back.orders("bo").set_index("client_order_id").loc[coid].status == "cancelled"
    back.close()


def test_a_sigkilled_process_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    """A real kill: the child prints each answer only after the broker gave it (the entry is in the
    journal then), and is killed with SIGKILL right after its last answer."""
    child = textwrap.dedent(
        f"""
        import sys
        from vtrade.runtime.live import LiveConfig, LiveMarket
        m = LiveMarket(LiveConfig(symbols=("AAPL", "XOM"), speed=0, burn_in=20_000), data_dir={str(tmp_path)!r})
        m.open_account("cy", cash=80_000)
        for i in range(6):
            m.advance(2)
            out = m.submit("cy", "AAPL" if i % 2 else "XOM", "buy", 1 + i)
            print(out.client_order_id, out.ok, flush=True)
        print("done", flush=True)
        sys.stdin.read()  # wait to be killed
        """
    )
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    acked = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # blocks on the child's answers: no sleeping
            if line.strip() == "done":
                break
            acked.append(line.split()[0])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) == 6, proc.stderr.read() if proc.stderr else ""
    back = LiveMarket(CONFIG, data_dir=tmp_path)
    orders = back.orders("cy")
    assert orders.client_order_id.tolist() == acked  # every acknowledged order, once, in order
    back.advance(3)
    assert len(back.fills("cy")) >= 6 and back.fills("cy").fill_id.is_unique
    back.close()


def test_bad_data_dirs_get_a_clear_error_and_change_nothing(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    with pytest.raises(DataDirError, match="is a file, not a directory"):
        LiveMarket(CONFIG, data_dir=a_file)
    assert a_file.read_text() == "x"
    m = LiveMarket(CONFIG, data_dir=tmp_path / "d")
    m.open_account("ada")
    m.close()
    # Another market under the same data dir keeps its own folder: nothing is replayed into it ...
    other = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, burn_in=20_000), data_dir=tmp_path / "d")
    assert not other.has_account("ada")
    other.close()
    assert LiveMarket(CONFIG, data_dir=tmp_path / "d").has_account("ada")  # ... and the first one is intact
    # A folder written by one market refuses another, rather than replaying into the wrong market.
    Durable(tmp_path / "f", fingerprint="market-a").close()
    with pytest.raises(DataDirError, match="another configuration"):
        Durable(tmp_path / "f", fingerprint="market-b")
    with pytest.raises(ValueError, match="with a bus of your own"):
        LiveMarket(CONFIG, data_dir=tmp_path / "e", bus=open_bus("memory://"))


def _session(bus_url: str | None) -> tuple[LiveMarket, str]:
    cfg = LiveConfig(symbols=("SYNTH",), prices={"SYNTH": "100.00"}, speed=0, burn_in=20_000, seed=11)
    m = LiveMarket(cfg, bus=None if bus_url is None else open_bus(bus_url), keep_log=True)
    m.open_account("ada", cash=100_000)
    for i in range(12):
        m.advance(3)
        side = "buy" if i % 3 else "sell"
        m.submit("ada", "SYNTH", side, 5 + i)
        if i % 4 == 1:
            bid = float(m.quotes(["SYNTH"]).bid[0])
            m.submit("ada", "SYNTH", "buy", 7, "limit", round(bid - 0.02, 2))
    m.advance(20)
    return m, output_hash(m._log.bus, "exec")


def test_the_same_session_gives_the_same_outputs_on_memory_and_redis(redis_url: str) -> None:
    mem, h_mem = _session(None)
    _, h_again = _session(None)
    red, h_red = _session(f"{redis_url}?namespace=live-det")
    assert h_mem == h_again == h_red
    pd.testing.assert_frame_equal(mem.fills("ada"), red.fills("ada"))
    assert len(mem.fills("ada")) > 10


def test_the_live_session_equals_vt_replay_of_its_recorded_input() -> None:
    """What the live market put on the log (market data, and every command at its entry time)
    replayed by ``vt.replay`` gives the same execution events, byte for byte, account by account."""
    import vtrade as vt
    from vtrade.core.events import Clock, MarketBatch, MarketEvent, encode
    from vtrade.execution.orders import SubmitOrder
    from vtrade.runtime.execution_worker import read_topic
    from vtrade.runtime.replay import Context

    m, _ = _session(None)
    latency = 5_000_000  # LiveConfig's "5ms"
    recorded = []
    for r in read_topic(m._log.bus, "exec.in"):  # a venue's slice of market data is one MarketBatch record
        recorded.extend(r.event.events if isinstance(r.event, MarketBatch) else [r.event])
    symbol_events = sorted((e for e in recorded if isinstance(e, MarketEvent) and not isinstance(e, Clock)),
                           key=lambda e: e.ts)  # fmt: skip  # one symbol: exec.in holds it in order already
    script: dict[int, list[object]] = {}
    for e in recorded:
        if not isinstance(e, MarketEvent):
            script.setdefault(e.ts - latency, []).append(e)

    def scripted(ctx: Context) -> None:
        for c in script.get(ctx.now, []):
            if isinstance(c, SubmitOrder):
                ctx.submit(c)
            else:
                ctx._send(c)  # type: ignore[arg-type]  # a cancel as entered

    cfg = m.config
    result = vt.replay(
        symbol_events, strategy=scripted, instrument=m.instrument("SYNTH"), every=cfg.step, realism=cfg.realism,
        latency=cfg.latency, fees=cfg.fees, queue=cfg.queue, seed=cfg.seed,
    )  # fmt: skip
    live = read_topic(m._log.bus, "exec")
    for account in ("ada", "bot-maker", "bot-noise"):
        ours = [r.value for r in live if r.key == account]
        theirs = [encode(e) for e in result.events if e.account == account]
        assert ours and ours == theirs, account


def test_a_notebook_session_comes_back_from_its_data_dir(tmp_path: Path) -> None:
    import vtrade as vt

    cfg = LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000)
    s = vt.live(cfg, account="nb", data_dir=tmp_path, start=False)
    s.advance(2)
    assert s.submit("AAPL", "buy", 10).ok
    bid = float(s.market.quotes(["AAPL"]).bid[0])
    resting = s.submit("AAPL", "buy", 5, "limit", round(bid - 0.10, 2), "gtc")
    s.advance(2)
    before = s.orders()
    assert s.close() == 0  # durable: the resting order stays for the session's return
    back = vt.live(cfg, account="nb", data_dir=tmp_path, start=False)
    pd.testing.assert_frame_equal(back.orders(), before)
    assert back.orders().set_index("client_order_id").loc[resting.client_order_id].status == "accepted"
    assert len(back.fills()) == 1
    back.close()
