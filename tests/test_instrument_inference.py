"""Instruments from the data (issue 9): Binance captures of any symbol and market (spot, USD-M,
COIN-M inverse), grids inferred from a first pass over the whole file, and --tick-size /
--lot-size / --contract-size on every format.

The captures here are made from the two shipped ones by rewriting them; each builder says how.
"0 gaps, 0 crossed books" is checked the way the book path checks it: a gap raises
SequenceGapError and a crossed venue book raises CrossedBookError (L2Book crossing="reject"),
so a command that exits 0 had neither; we also count BinanceFeed.stats (every diff applied or
dropped before the snapshot, none skipped) and look at the written top of book ourselves.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import vtrade as vt
from vtrade.cli import main
from vtrade.core.errors import DataError
from vtrade.core.events import Side
from vtrade.core.instruments import BINANCE_BTCUSDT_SPOT, BINANCE_BTCUSDT_USDM, Instrument
from vtrade.execution.fees import FillContext, MakerTaker
from vtrade.execution.orders import Liquidity
from vtrade.market.feeds import open_feed
from vtrade.market.feeds.binance import BinanceFeed, infer_instrument, scan_grids
from vtrade.runtime.replay import Context, ReplayResult

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
USDM = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
MINUTE_BARS = ROOT / "data/intraday/lean_minute_trade_bars.csv.gz"
STRATEGIES = ROOT / "examples/strategies.py"


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------ the captures
@pytest.fixture(scope="module")
def eth_spot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped spot BTCUSDT capture renamed to ETHUSDT: streams ``btcusdt@…`` become
    ``ethusdt@…`` and ``"s":"BTCUSDT"`` becomes ``"s":"ETHUSDT"``; update ids, prices and
    quantities are untouched, so the sequencing is the original's."""
    lines = [ln.replace("btcusdt@", "ethusdt@").replace('"BTCUSDT"', '"ETHUSDT"') for ln in _lines(SPOT)]
    return _write(tmp_path_factory.mktemp("eth") / "binance_spot_ethusdt.jsonl.gz", lines)


def _contracts(qty: str, price: str, *, at_least_one: bool = False) -> str:
    """USD-M quantity (BTC) -> COIN-M BTCUSD contracts of 100 USD: round(qty x price / 100).

    A depth level may round to 0 contracts (a small level then reads as absent, which can only
    widen the book); a trade or a top-of-book size stays at least 1 contract."""
    n = round(float(qty) * float(price) / 100)
    return str(max(n, 1) if at_least_one and float(qty) > 0 else n)


def _coinm_line(line: str) -> str:
    ts, _, body = line.partition(" ")
    msg = json.loads(body)
    if "lastUpdateId" in msg:  # the REST snapshot: COIN-M's names its symbol and pair
        msg = {"lastUpdateId": msg["lastUpdateId"], "symbol": "BTCUSD_PERP", "pair": "BTCUSD",
               **{k: v for k, v in msg.items() if k != "lastUpdateId"}}  # fmt: skip
        for side in ("bids", "asks"):
            msg[side] = [[p, _contracts(q, p)] for p, q in msg[side]]
    else:
        msg["stream"] = msg["stream"].replace("btcusdt@", "btcusd_perp@")
        d = msg["data"]
        d["s"] = "BTCUSD_PERP"
        d = {**{k: v for k, v in d.items() if k in ("e", "E", "T", "s", "u")}, "ps": "BTCUSD", **d}
        if d.get("e") == "depthUpdate":
            d["b"] = [[p, _contracts(q, p)] for p, q in d["b"]]
            d["a"] = [[p, _contracts(q, p)] for p, q in d["a"]]
        elif d.get("e") == "trade":
            d["q"] = _contracts(d["q"], d["p"], at_least_one=True)
        else:  # bookTicker
            d["B"] = _contracts(d["B"], d["b"], at_least_one=True)
            d["A"] = _contracts(d["A"], d["a"], at_least_one=True)
        msg["data"] = d
    return f"{ts} {json.dumps(msg, separators=(',', ':'))}"


@pytest.fixture(scope="module")
def coinm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped USD-M capture in COIN-M's format: stream ``btcusd_perp@depth@0ms`` (and
    ``@bookTicker``, ``@trade``), symbol ``BTCUSD_PERP``, ``"ps":"BTCUSD"`` on every message,
    the snapshot with ``symbol``/``pair``; every quantity converted to whole 100-USD contracts
    (:func:`_contracts`). Update ids (``U``, ``u``, ``pu``) and prices are untouched."""
    lines = [_coinm_line(ln) for ln in _lines(USDM)]
    return _write(tmp_path_factory.mktemp("coinm") / "binance_coinm_btcusd_perp.jsonl.gz", lines)


@pytest.fixture(scope="module")
def late_fine_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The USD-M capture renamed to ETHUSDT (not built in, so its grid is inferred), whose first
    1,000 lines print quantities with at most 3 decimals (as the original does throughout) and
    whose line 40,000, a depth diff, gets one quantity with 8: ``"x.yyy"`` -> ``"x.yyy00001"``.
    Returns the file and that line."""
    lines = [ln.replace("btcusdt@", "ethusdt@").replace('"BTCUSDT"', '"ETHUSDT"') for ln in _lines(USDM)]
    target = 40_000
    while "depthUpdate" not in lines[target - 1] or '"b":[[' not in lines[target - 1]:
        target += 1
    head, sep, rest = lines[target - 1].partition('"b":[["')
    price, _, after = rest.partition('","')
    qty, _, tail = after.partition('"]')
    lines[target - 1] = f'{head}{sep}{price}","{qty}00001"]{tail}'
    return _write(tmp_path_factory.mktemp("fine") / "binance_usdm_ethusdt.jsonl.gz", lines), target


def _book(file: Path, out: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    code = main(["book", str(file), "--levels", "5", "--out", str(out), "--quiet", *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _no_gap_no_cross(file: Path, out: Path) -> None:
    feed = BinanceFeed(file)
    for _ in feed:  # a gap raises SequenceGapError
        pass
    s = feed.stats
    assert s["diffs"] == s["diffs_applied"] + s["diffs_dropped"] and s["diffs_applied"] > 1000
    top = pd.read_parquet(out, columns=["bid_px_1", "ask_px_1"])
    assert len(top) == s["diffs_applied"] + 1  # the snapshot and every applied diff
    assert (top.bid_px_1 < top.ask_px_1).all()  # never crossed (the writer would have raised)


# ---------------------------------------------------------------------------------- spot ETH
def test_spot_ethusdt_infers_its_grid_and_rebuilds_from_the_cli(
    eth_spot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inferred = infer_instrument(eth_spot)
    inst = inferred.instrument
    assert (inferred.market, inst.symbol, inst.currency, inferred.source) == ("spot", "ETHUSDT", "USDT", "inferred")
    # Prices print "61837.63000000": 2 significant decimals; quantities at most 6 ("25.42618900").
    assert (inst.tick_size, inst.lot_size) == (Decimal("0.01"), Decimal("0.000001"))
    assert inferred.scan is not None and inferred.scan.lines == 41_249

    out = tmp_path / "eth.parquet"
    code, _, err = _book(eth_spot, out, capsys)
    assert code == 0, err
    assert "ETHUSDT (Binance spot): tick 0.01, lot 0.000001 — inferred from a first pass over 41,249 lines" in err
    _no_gap_no_cross(eth_spot, out)

    code = main(["replay", str(eth_spot), "--strategy", f"{STRATEGIES}:market_maker", "--every", "1s",
                 "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ETHUSDT L2 replay:" in captured.out and "USDT" in captured.out
    assert "inferred from a first pass over 41,249 lines" in captured.err


def test_shipped_captures_keep_their_built_in_instruments() -> None:
    assert open_feed(USDM).instrument is BINANCE_BTCUSDT_USDM
    assert open_feed(SPOT).instrument is BINANCE_BTCUSDT_SPOT
    assert open_feed(USDM).describe() == "BTCUSDT (Binance USD-M): tick 0.1, lot 0.001 — built-in"
    # A given tick on a built-in symbol: the tick is given, the lot still the built-in one.
    feed = open_feed(SPOT, tick_size="0.001")
    assert feed.instrument.tick_size == Decimal("0.001") and feed.instrument.lot_size == Decimal("1E-8")
    assert feed.describe().endswith("— tick given, lot built-in") and feed.grid_source == "tick given, lot built-in"


# ------------------------------------------------------------------------------- COIN-M
def test_coinm_capture_is_inverse_and_rebuilds_from_the_cli(
    coinm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inferred = infer_instrument(coinm)
    inst = inferred.instrument
    assert inferred.market == "coinm" and inst.symbol == "BTCUSD_PERP"
    assert (inst.tick_size, inst.lot_size, inst.contract_size, inst.inverse) == (
        Decimal("0.1"), Decimal(1), Decimal(100), True)  # fmt: skip
    assert inst.currency == "BTC"  # an inverse contract settles in the coin

    out = tmp_path / "coinm.parquet"
    code, _, err = _book(coinm, out, capsys)
    assert code == 0, err
    assert (
        "BTCUSD_PERP (Binance COIN-M, inverse, 100 USD/contract): tick 0.1, lot 1 contract — inferred from a "
        "first pass over 93,954 lines; contract size 100 USD (Binance's published size for BTCUSD)"
    ) in err
    _no_gap_no_cross(coinm, out)
    sizes = pd.read_parquet(out, columns=["bid_sz_1"]).bid_sz_1.dropna()
    assert (sizes == sizes.astype(int)).all()  # whole contracts

    # --contract-size overrides Binance's size, and says so.
    code, _, err = _book(coinm, tmp_path / "c10.parquet", capsys, "--contract-size", "10")
    assert code == 0 and "10 USD/contract" in err and "contract size given" in err


def test_coinm_replay_pnl_is_inverse(coinm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", str(coinm), "--strategy", f"{STRATEGIES}:market_maker", "--every", "1s",
                 "--fees", "maker-taker", "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "BTCUSD_PERP L2 replay:" in captured.out and " BTC, P&L " in captured.out
    assert len(pd.read_parquet(tmp_path / "r" / "fills.parquet")) > 0

    result = vt.replay(coinm, strategy=_buy_100_once_the_book_is_up, every="1s", fees=MakerTaker(2, 5))
    f, s = result.fills, result.summary()
    assert int(f.quantity_lots.sum()) == 100 and s["currency"] == "BTC"
    mark = result.book.mid.dropna().iloc[-1]
    # Long 100 contracts of 100 USD: P&L = sum over fills of q x 100 x (1/price - 1/mark), minus fees.
    expected = sum(q * 100 * (1 / p - 1 / mark) for q, p in zip(f.quantity, f.price, strict=True)) - f.fee.sum()
    assert s["pnl"] == pytest.approx(expected, rel=1e-12)
    # Taker fee 5 bps of the coin notional: 100 x 100 / price BTC.
    assert f.fee.sum() == pytest.approx(sum(5e-4 * q * 100 / p for q, p in zip(f.quantity, f.price, strict=True)),
                                        abs=1e-8 * len(f))  # fmt: skip


def _buy_100_once_the_book_is_up(ctx: Context) -> None:
    if not vars(ctx).get("bought") and ctx.book.best_ask() is not None:
        ctx.buy(100)  # a market order for 100 contracts: it walks the asks
        vars(ctx)["bought"] = True


# -------------------------------------------------------------------- inverse arithmetic
BTCUSD = Instrument("BTCUSD_PERP", Decimal("0.1"), Decimal(1), currency="BTC", contract_size=Decimal(100),
                    inverse=True)  # fmt: skip


def test_inverse_notional_fees_and_pnl_by_hand() -> None:
    # 10 contracts x 100 USD at 50,000 USD/BTC = 1,000 USD = 0.02 BTC.
    assert BTCUSD.notional(Decimal(50_000), Decimal(10)) == Decimal("0.02")
    fill = FillContext(BTCUSD, Side.BUY, 10, BTCUSD.price(50_000), Liquidity.TAKER)
    assert fill.notional == Decimal("0.02")
    assert MakerTaker(2, 5).fee(fill) == Decimal("0.00001000")  # 5 bps of 0.02 BTC

    # Long 10 from 50,000, out at 55,000: 10 x 100 x (1/50000 - 1/55000) = 0.0018181818… BTC.
    fills = pd.DataFrame({"price": [50_000.0, 55_000.0], "quantity": [10.0, 10.0], "side": ["buy", "sell"],
                          "fee": [0.0, 0.0], "quantity_lots": [10, 10], "slippage_bps": [0.0, 0.0],
                          "liquidity": ["taker", "taker"]})  # fmt: skip
    closed = ReplayResult(pd.DataFrame(), fills, pd.DataFrame({"mid": [55_000.0]}), [], 0, 0, BTCUSD)
    assert closed.summary()["pnl"] == pytest.approx(0.0018181818181818, rel=1e-12)
    # Still open, marked at 55,000: the same P&L; and a short loses it.
    open_long = ReplayResult(pd.DataFrame(), fills.iloc[:1], pd.DataFrame({"mid": [55_000.0]}), [], 0, 0, BTCUSD)
    assert open_long.summary()["pnl"] == pytest.approx(0.0018181818181818, rel=1e-12)
    short = fills.iloc[:1].assign(side=["sell"])
    open_short = ReplayResult(pd.DataFrame(), short, pd.DataFrame({"mid": [55_000.0]}), [], 0, 0, BTCUSD)
    assert open_short.summary()["pnl"] == pytest.approx(-0.0018181818181818, rel=1e-12)
    # A linear instrument keeps price x quantity: long 10 BTC from 50,000 to 55,000 = +50,000.
    linear = ReplayResult(pd.DataFrame(), fills, pd.DataFrame({"mid": [55_000.0]}), [], 0, 0, BINANCE_BTCUSDT_USDM)
    assert linear.summary()["pnl"] == 50_000.0


# ----------------------------------------------------------------- the whole file's grid
def test_a_finer_quantity_late_in_the_file_is_found_by_the_first_pass(
    late_fine_grid: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = late_fine_grid
    head = _write(tmp_path / "head.jsonl.gz", _lines(path)[:1000])
    assert scan_grids(head).size_decimals == 3  # what the first 1,000 lines alone would say
    assert scan_grids(path).size_decimals == 8
    out = tmp_path / "fine.parquet"
    code, _, err = _book(path, out, capsys)
    assert code == 0, err
    assert "ETHUSDT (Binance USD-M): tick 0.1, lot 0.00000001 — inferred from a first pass over 93,954 lines" in err
    _no_gap_no_cross(path, out)


def test_a_given_grid_that_a_later_line_breaks_is_an_error_naming_file_and_line(
    late_fine_grid: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, line = late_fine_grid
    out = tmp_path / "never.parquet"
    code, _, err = _book(path, out, capsys, "--tick-size", "0.1", "--lot-size", "0.001")
    assert code == 2
    assert f"{path}:{line}: " in err and "not on the 0.001 grid" in err
    assert "tick 0.1, lot 0.001 — given" in err  # said before the work started
    assert not out.exists() and not list(tmp_path.glob("never.parquet*"))
    with pytest.raises(DataError, match=rf":{line}: .*0\.001 grid"):
        list(open_feed(path, tick_size="0.1", lot_size="0.001"))
    # And on replay: exit 2, no output directory.
    code = main(["replay", str(path), "--strategy", f"{STRATEGIES}:market_maker", "--lot-size", "0.001",
                 "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    assert code == 2 and f":{line}: " in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_bad_grid_flags_are_refused_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["book", str(USDM), "--tick-size", "0", "--out", str(tmp_path / "x.parquet")])
    assert info.value.code == 2 and "--tick-size: must be a positive number" in capsys.readouterr().err
    code, _, err = _book(USDM, tmp_path / "x.parquet", capsys, "--contract-size", "100")
    assert code == 2 and "contract_size applies to COIN-M" in err


# ------------------------------------------------------------------ every other format
def test_tick_size_flag_on_spy_minute_bars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["replay", str(MINUTE_BARS), "--symbol", "SPY", "--realism", "bars",
            "--strategy", f"{STRATEGIES}:buy_and_hold", "--out", str(tmp_path / "x"), "--quiet"]  # fmt: skip
    assert main(argv) == 2  # the cent grid cannot hold 2023-08-03's 448.8190
    assert "448.8190" in capsys.readouterr().err
    assert main([*argv, "--tick-size", "0.0001"]) == 0
    captured = capsys.readouterr()
    assert "SPY (US): tick 0.0001, lot 1 — tick given, lot the US-equity default" in captured.err
    assert "SPY bars replay:" in captured.out
    fills = pd.read_parquet(tmp_path / "x" / "fills.parquet")
    assert int(fills.quantity_lots.sum()) == 100


@pytest.mark.parametrize(
    ("path", "fmt", "symbol"),
    [
        ("data/intraday/lean_minute_quote_bars.csv.gz", "lean-quote-bars", "SPY"),
        ("data/taq/lean_tick_quotes_IBM_BAC.csv.gz", "taq-quotes", "BAC"),
        ("data/taq/lean_tick_trades_IBM_BAC.csv.gz", "taq-trades", "BAC"),
        ("data/equities_daily/etf_benchmarks_daily.csv.gz", "daily", "SPY"),
    ],
)
def test_grid_keywords_reach_every_format(path: str, fmt: str, symbol: str) -> None:
    feed = open_feed(ROOT / path, symbol=symbol, tick_size="0.0001", lot_size="0.5")
    assert feed.format == fmt
    assert (feed.instrument.tick_size, feed.instrument.lot_size) == (Decimal("0.0001"), Decimal("0.5"))
    assert feed.grid_source == "given"
    first, default = next(iter(feed)), next(iter(open_feed(ROOT / path, symbol=symbol)))
    assert first.symbol == feed.instrument.symbol == symbol
    # The same row on both grids: 10,000 ticks of 0.0001 per cent tick, two 0.5 lots per share.
    px = next(f for f in ("close", "bid_px", "ask_px", "price", "bid_close") if getattr(first, f, 0))
    assert getattr(first, px) == getattr(default, px) * (100 if fmt != "daily" else 1)
    sz = next(f for f in ("volume", "bid_sz", "ask_sz", "size", "bid_size") if getattr(first, f, 0))
    assert getattr(first, sz) == 2 * getattr(default, sz)


def test_lobster_grid_keywords() -> None:
    message = ROOT / "tests/fixtures/lobster/GOOG_2012-06-21_34200000_57600000_message_1.csv.gz"
    feed, default = open_feed(message, tick_size="0.0001"), open_feed(message)
    assert feed.format == "lobster" and feed.instrument.tick_size == Decimal("0.0001")
    assert feed.grid_source == "tick given, lot the LOBSTER default"
    assert default.grid_source == "the LOBSTER default"
    first, before = next(iter(feed)), next(iter(default))
    assert first.bid_px == [p * 50 for p in before.bid_px]  # 0.005 -> 0.0001: 50 fine ticks a half cent
