"""`vtrade replay`: strategies from modules or files, Parquet outputs written atomically, the
summary line, and clear errors (exit 2) for bad input."""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

import vtrade as vt
from vtrade.cli import fee_model, load_strategy, main
from vtrade.runtime.replay import parse_duration

ROOT = Path(__file__).resolve().parent.parent
USDM = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
SPY_BARS = ROOT / "data/intraday/lean_second_trade_bars_SPY.csv.gz"
MINUTE_BARS = ROOT / "data/intraday/lean_minute_trade_bars.csv.gz"
STRATEGIES = ROOT / "examples/strategies.py"
OUTPUTS = ["book.parquet", "fills.parquet", "orders.parquet"]
SUMMARY = re.compile(
    r"^(?P<symbol>\w+) (?P<realism>\w+) replay: [\d,]+ inputs, (?P<fills>[\d,]+) fills, "
    r"VWAP shortfall [+-]\d+\.\d\d bps, fees (?P<fees>[\d,.]+) (?P<ccy>\w+), P&L [+-][\d,.]+ \w+, "
    r"maker share (?P<maker>\d+)%$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def short_usdm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 15,000 lines of the Binance capture (a sixth of it), to keep the test fast."""
    path = tmp_path_factory.mktemp("feeds") / "usdm_short.jsonl.gz"
    with gzip.open(USDM, "rt") as fin, gzip.open(path, "wt") as fout:
        for _, line in zip(range(15_000), fin, strict=False):
            fout.write(line)
    return path


@pytest.mark.parametrize("strategy", [f"{STRATEGIES}:market_maker", "vtrade.strategies:market_maker_jit"],
                         ids=["python", "compiled"])
def test_market_maker_on_binance_l2(short_usdm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    strategy: str) -> None:  # fmt: skip
    out = tmp_path / "mm"
    argv = ["replay", str(short_usdm), "--strategy", strategy, "--realism", "L2",
            "--every", "100ms", "--latency", "1ms", "--fees", "maker-taker", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    fills = pd.read_parquet(out / "fills.parquet")
    orders = pd.read_parquet(out / "orders.parquet")
    book = pd.read_parquet(out / "book.parquet")
    assert len(fills) > 10 and set(fills.liquidity) == {"maker"}  # post-only quotes only ever make
    assert (fills.quantity_lots == 1).all() and (fills.fee > 0).all()  # 2 bps maker fee
    quoted = book.dropna(subset=["bid_px", "ask_px"])
    assert {"cancelled", "filled"} <= set(orders.status) and len(quoted) > 100 and (quoted.bid_px < quoted.ask_px).all()
    # The files hold exactly what the library call returns for the same options.
    expected = vt.replay(short_usdm, strategy=load_strategy(f"{STRATEGIES}:market_maker"), every="100ms",
                         realism="L2", latency="1ms", fees=fee_model("maker-taker"))  # fmt: skip
    pd.testing.assert_frame_equal(fills, expected.fills)
    stdout = capsys.readouterr().out
    m = SUMMARY.search(stdout)
    assert m is not None, stdout
    assert (m["symbol"], m["realism"], m["ccy"], m["maker"]) == ("BTCUSDT", "L2", "USDT", "100")
    assert int(m["fills"].replace(",", "")) == len(fills)
    assert float(m["fees"]) == pytest.approx(fills.fee.sum(), abs=0.005)
    assert f"-> {out}" in stdout
    assert ("ran in the compiled loop" in stdout) == strategy.endswith("_jit")


def test_buy_and_hold_on_spy_second_bars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bh"
    argv = ["replay", str(SPY_BARS), "--strategy", f"{STRATEGIES}:buy_and_hold", "--realism", "bars",
            "--fees", "per-share", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    fills = pd.read_parquet(out / "fills.parquet")
    orders = pd.read_parquet(out / "orders.parquet")
    assert len(orders) == 1 and orders.status.iloc[0] == "filled" and orders.quantity_lots.iloc[0] == 100
    assert fills.quantity_lots.sum() == 100 and set(fills.liquidity) == {"taker"}
    assert fills.fee.sum() == pytest.approx(1.00)  # IBKR: 100 x $0.005 raised to the $1.00 order minimum
    m = SUMMARY.search(capsys.readouterr().out)
    assert m is not None and (m["symbol"], m["realism"], m["fees"], m["ccy"]) == ("SPY", "bars", "1.00", "USD")


def test_symbol_picks_one_ticker_of_a_multi_ticker_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ibm"
    argv = ["replay", str(MINUTE_BARS), "--symbol", "IBM", "--strategy", f"{STRATEGIES}:buy_and_hold",
            "--realism", "bars", "--every", "1min", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    orders = pd.read_parquet(out / "orders.parquet")
    assert list(orders.status) == ["filled"]
    m = SUMMARY.search(capsys.readouterr().out)
    assert m is not None and m["symbol"] == "IBM"


def test_a_module_path_strategy_is_found_from_the_current_directory(
    short_usdm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "mystrats"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "quiet.py").write_text('"""Never trades."""\n\ndef idle(ctx):\n    """Do nothing."""\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert main(["replay", str(short_usdm), "--strategy", "mystrats.quiet:idle", "--out", "o", "--quiet"]) == 0
    assert pd.read_parquet(tmp_path / "o/fills.parquet").empty
    assert str(tmp_path) not in sys.path  # the current directory was only borrowed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--strategy": "no_such_strategies:f"}, "unknown strategy module 'no_such_strategies'"),
        ({"--strategy": f"{STRATEGIES}:nope"}, "has no function 'nope' (it has: buy_and_hold, market_maker)"),
        ({"--strategy": "missing/strats.py:f"}, "--strategy: no such file: missing/strats.py"),
        ({"--strategy": str(STRATEGIES)}, "expected MODULE:FUNCTION or path/to/file.py:FUNCTION"),
        ({"--strategy": f"{STRATEGIES}:__all__"}, "is a list, not a function"),
        ({"--realism": "L9"}, "--realism: unknown realism 'L9' (choose from bars, L1, L2, L3)"),
        ({"--realism": "bars"}, "--realism bars needs bars or trade prints"),
        ({"--realism": "L3"}, "--realism L3 needs order-by-order data"),
        ({"--every": "10 parsecs"}, "--every: not a duration: '10 parsecs'"),
        ({"--every": "0ms"}, "--every: must be a positive duration"),
        ({"--latency": "fast"}, "--latency: not a duration: 'fast'"),
        ({"--fees": "gratis"}, "--fees: unknown fee model 'gratis' (choose from none, per-share, maker-taker)"),
        ({"--format": "bogus"}, "unknown format 'bogus'"),
        ({"file": "nowhere.jsonl.gz"}, "no such file: nowhere.jsonl.gz"),
    ],
)
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(
    short_usdm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str], message: str
) -> None:
    options = {"--strategy": f"{STRATEGIES}:market_maker", "--realism": "L2", "--every": "100ms",
               "--latency": "1ms", "--fees": "none", "--format": "auto"}  # fmt: skip
    file = change.pop("file", str(short_usdm))
    options.update(change)
    out = tmp_path / "out"
    argv = ["replay", file, *(x for kv in options.items() for x in kv), "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("vtrade replay: error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_unrecognised_files_and_bars_with_a_book_realism_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("hello\n")
    strategy = f"{STRATEGIES}:buy_and_hold"
    assert main(["replay", str(odd), "--strategy", strategy, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "unrecognised format" in capsys.readouterr().err
    argv = ["replay", str(SPY_BARS), "--strategy", strategy, "--realism", "L2", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--realism L2 needs quotes or depth; lean_second_trade_bars_SPY.csv.gz is a bars feed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.txt"]


def test_outputs_are_replaced_whole_or_not_at_all(
    short_usdm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = tmp_path / "outs"
    out = outs / "run"

    def argv(every: str, strategy: str = f"{STRATEGIES}:market_maker", to: Path = out) -> list[str]:
        return ["replay", str(short_usdm), "--strategy", strategy, "--every", every, "--out", str(to), "--quiet"]

    assert main(argv("1s")) == 0  # creates the missing parent too
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    # A writer that dies on the second file: the directory keeps the previous run's files.
    real = pd.DataFrame.to_parquet
    calls: list[str] = []

    def failing(self: pd.DataFrame, path: Path, *a: object, **kw: object) -> None:
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pd.DataFrame, "to_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        main(argv("500ms"))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in outs.iterdir()] == ["run"]  # no temporary directory left behind

    # A strategy that raises: nothing written either.
    boom = tmp_path / "boom.py"
    boom.write_text("def boom(ctx):\n    raise RuntimeError('strategy bug')\n")
    with pytest.raises(RuntimeError, match="strategy bug"):
        main(argv("1s", f"{boom}:boom", outs / "boom"))
    assert [p.name for p in outs.iterdir()] == ["run"]

    # A second successful run replaces the first one's files.
    assert main(argv("500ms")) == 0
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(after) == OUTPUTS and after != before
    assert [p.name for p in outs.iterdir()] == ["run"]
    # ... but a directory holding anything else is not ours to replace.
    (out / "notes.txt").write_text("mine")
    assert main(argv("1s")) == 2
    assert "holds files that are not a replay's (notes.txt)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ LOBSTER at L3
LOBSTER = ROOT / "tests/fixtures/lobster"
GOOG_L1 = LOBSTER / "GOOG_2012-06-21_34200000_57600000_message_1.csv.gz"
AAPL_L10 = LOBSTER / "AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz"
RAW_PER_TICK = 50  # LOBSTER prices are USD x 10,000; the default LOBSTER grid is half a cent
QUOTE_AND_LOG = '''
import json
from pathlib import Path

from vtrade.strategies import market_maker

LOG = Path({log!r})


def quote_and_log(ctx):
    """market_maker, logging what it sees and how many commands it sends at each call."""
    bid, ask = ctx.book.best_bid(), ctx.book.best_ask()
    commands = len(ctx.open_orders) + (2 if bid is not None and ask is not None else 0)
    with LOG.open("a") as f:
        f.write(json.dumps([ctx.now, bid, ask, commands]) + "\\n")
    market_maker(ctx)
'''


@pytest.mark.parametrize(
    ("feed", "every", "latency", "market_events", "calls", "checkpoints"),
    [
        # Level 1, a whole day: 49,482 messages, 11,207 levels revealed from beyond the window
        # (each its own BookDelta) and the opening snapshot. The strategy runs every second from
        # the first message (34200.015105074 s after midnight, New York); with no feed latency
        # it sees every message up to its call. Checkpoints: (call, orderbook row = messages seen,
        # bid and ask as the orderbook file's row shows them: raw price, size).
        (
            GOOG_L1,
            "1s",
            "0ms",
            49_482 + 11_207 + 1,
            23_401,  # 34200.015105074 s to 57600.015105074 s, the first call at or after the last message
            [
                (1, 24, (5794000, 88), (5797900, 210)),  # at 34201.015105074: row 24 is message 34200.763732578
                (11_700, 25_506, (5691200, 100), (5694000, 126)),  # 45900.015105074: row 25,506 at 45899.236213837
                (23_400, 49_482, (5651200, 200), (5652200, 42)),  # 57600.015105074: the last row (57599.320718269)
            ],
        ),
        # Level 10, the first 999 messages (34200.004241176 to 34249.086375027) with 318 levels
        # revealed; every 100 ms with 1 ms of feed latency, so a call at t sees messages up to t - 1 ms.
        (
            AAPL_L10,
            "100ms",
            "1ms",
            999 + 318 + 1,
            492,  # 34200.004241176 s to 34249.104241176 s
            [
                (0, 0, None, None),  # at the first message itself: nothing has reached the strategy yet
                (1, 7, (5853300, 18), (5859100, 18)),  # 34200.104241176: row 7 is message 34200.050241056
                (246, 579, (5854300, 35), (5856800, 2)),  # 34224.604241176: row 579 at 34224.336665396
                (491, 999, (5853500, 18), (5857100, 100)),  # 34249.104241176: the last row
            ],
        ),
    ],
    ids=["GOOG-level1", "AAPL-level10"],
)
def test_lobster_l3_replay_with_a_quoting_strategy_sees_the_feeds_own_top_of_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed: Path, every: str, latency: str, market_events: int,
    calls: int, checkpoints: list[tuple[int, int, tuple[int, int] | None, tuple[int, int] | None]],
) -> None:  # fmt: skip
    # The strategy's delayed view is rebuilt from the order events with the engine's rules (an
    # L3 book cut to the file's window); it used to take only the snapshot and the reveals, so a
    # level-1 file's first reveal (GOOG seq 203) crossed the stale opening bid and the replay died.
    log = tmp_path / "seen.jsonl"
    strategy = tmp_path / "quote_and_log.py"
    strategy.write_text(QUOTE_AND_LOG.format(log=str(log)))
    out = tmp_path / "out"
    argv = ["replay", str(feed), "--strategy", f"{strategy}:quote_and_log", "--realism", "L3",
            "--every", every, "--latency", latency, "--out", str(out), "--quiet"]  # fmt: skip
    before = set(sys.modules)
    try:
        assert main(argv) == 0
    finally:  # the strategy file's module is only borrowed
        for name in set(sys.modules) - before:
            if name.startswith("vtrade_strategy_quote_and_log_"):
                del sys.modules[name]
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(seen) == calls
    stdout = capsys.readouterr().out
    m = re.search(r"L3 replay: (?P<inputs>[\d,]+) inputs", stdout)
    assert m is not None, stdout
    # Every market event and every command the strategy sent reached the exchange.
    commands = sum(row[3] for row in seen)
    assert int(m["inputs"].replace(",", "")) == market_events + commands
    assert commands > len(seen)  # it quoted (and re-quoted) through the file
    fills = pd.read_parquet(out / "fills.parquet")
    assert len(fills) > 0 and set(fills.liquidity) == {"maker"}
    step = parse_duration(every)
    for call, row, bid, ask in checkpoints:
        now, got_bid, got_ask, _ = seen[call]
        assert now == seen[0][0] + call * step
        want_bid = None if bid is None else [bid[0] // RAW_PER_TICK, bid[1]]
        want_ask = None if ask is None else [ask[0] // RAW_PER_TICK, ask[1]]
        assert (got_bid, got_ask) == (want_bid, want_ask), f"call {call} at {now} ns (orderbook row {row})"
