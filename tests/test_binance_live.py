"""The live Binance feed: its synchronisation core on message sequences, and the real connector
against a local exchange on 127.0.0.1 that replays the shipped captures over Binance's wire
formats, with faults injected one by one and in a seeded storm. No internet is used."""

from __future__ import annotations

import bisect
import gzip
import json
import logging
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from vtrade.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    FeedGap,
    FeedResync,
    FeedStale,
    MarketBatch,
    MarketEvent,
    Side,
    decode,
    encode,
    event_type,
)
from vtrade.core.instruments import BINANCE_BTCUSDT_SPOT, BINANCE_BTCUSDT_USDM
from vtrade.execution.engine import EngineConfig
from vtrade.execution.orders import OrderType, SubmitOrder
from vtrade.market.feeds.binance import BinanceFeed, binance_instrument
from vtrade.market.feeds.binance_live import (
    BinanceSync,
    Fetch,
    Reconnect,
    Skipped,
    instrument_from_exchange_info,
    replay_lines,
)
from vtrade.market.l2book import L2Book
from vtrade.runtime.binance_live import BinanceLive
from vtrade.runtime.binance_local import FAULTS, LocalBinance
from vtrade.runtime.bus import open_bus
from vtrade.runtime.execution_worker import ExecutionWorker, Sequencer, output_hash

DATA = Path(__file__).resolve().parent.parent / "data/crypto"
SPOT = DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
USDM = DATA / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
TOP = 20  # levels per side compared after every update
S = 1_000_000_000


# ---------------------------------------------------------------------------------------------
# the reference: the capture read from its file


def _top(book: L2Book) -> tuple[tuple[int, ...], ...]:
    t = book.top(TOP)
    return tuple(tuple(a.tolist()) for a in (t.bid_px, t.bid_sz, t.ask_px, t.ask_sz))


@dataclass
class Reference:
    events: list[MarketEvent]
    tops: dict[int, tuple[tuple[int, ...], ...]]  # update id -> top of the book after it
    keys: list[int] = field(default_factory=list)

    def at(self, update_id: int) -> tuple[tuple[int, ...], ...]:
        """The reference book as of ``update_id`` (the last update at or before it)."""
        return self.tops[self.keys[bisect.bisect_right(self.keys, update_id) - 1]]


@cache
def reference(path: Path) -> Reference:
    events = list(BinanceFeed(path))
    book, tops = L2Book("BTCUSDT"), {}
    for e in events:
        if isinstance(e, BookSnapshot | BookDelta):
            book.apply(e)
            tops[e.seq] = _top(book)
    return Reference(events, tops, sorted(tops))


def check_books(events: list[Event], ref: Reference) -> int:
    """Rebuild the live books and compare the top after every update with the reference; returns
    the number of updates compared."""
    book: L2Book | None = None
    n = 0
    for e in events:
        if isinstance(e, BookSnapshot):
            book = L2Book("BTCUSDT")
            book.apply(e)
            expected = ref.at(e.seq)
        elif isinstance(e, BookDelta):
            assert book is not None, "a delta before any snapshot"
            book.apply(e)
            expected = ref.tops[e.seq]
        else:
            continue
        assert _top(book) == expected, f"book differs from the capture's at update {e.seq}"
        n += 1
    return n


def _strip(e: MarketEvent) -> MarketEvent:
    return type(e)(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "recv_ts": 0})


# ---------------------------------------------------------------------------------------------
# the core on message sequences (no I/O)


def _diff(u0: int, u1: int, pu: int | None = None, bids: list[list[str]] | None = None) -> str:
    data: dict[str, Any] = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u0, "u": u1,
                            "b": bids or [["61800.00", "1.5"]], "a": []}  # fmt: skip
    if pu is not None:
        data["pu"] = pu
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data})


SNAP = '{"lastUpdateId":10,"E":1,"bids":[["61800.00","2"]],"asks":[["61801.00","3"]]}'


def _kinds(outs: list[Any]) -> list[str]:
    return [type(o).__name__ for o in outs]


def test_the_core_replays_a_capture_into_the_readers_events() -> None:
    sync = BinanceSync("usdm", [BINANCE_BTCUSDT_USDM])
    with gzip.open(USDM, "rt") as fh:
        outs = list(replay_lines(sync, fh))
    assert [o for o in outs if isinstance(o, MarketEvent)] == reference(USDM).events
    assert _kinds([o for o in outs if not isinstance(o, MarketEvent)]) == ["Fetch", "FeedResync"]
    assert sync.stats["gaps"] == sync.stats["malformed"] == 0 and sync.state("BTCUSDT") == "live"


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_gap_stops_the_book_until_a_new_snapshot_restates_it(market: str) -> None:
    futures = market == "usdm"
    sync = BinanceSync(market, [BINANCE_BTCUSDT_USDM if futures else BINANCE_BTCUSDT_SPOT])
    (fetch,) = sync.connected(0)
    assert isinstance(fetch, Fetch) and sync.message(1, _diff(9, 12, 8 if futures else None)) == []
    assert _kinds(sync.snapshot(2, "BTCUSDT", fetch.token, SNAP)) == ["BookSnapshot", "BookDelta", "FeedResync"]
    assert _kinds(sync.message(3, _diff(13, 14, 12 if futures else None))) == ["BookDelta"]
    # updates 15-16 never arrive
    gap, refetch = sync.message(4, _diff(17, 18, 16 if futures else None))
    assert isinstance(gap, FeedGap) and "sequence gap" in gap.reason and isinstance(refetch, Fetch)
    assert sync.state("BTCUSDT") == "syncing"
    assert sync.message(5, _diff(19, 20, 18 if futures else None)) == []  # buffered, nothing invented
    late = '{"lastUpdateId":18,"bids":[["61800.00","7"]],"asks":[["61801.00","3"]]}'
    assert sync.snapshot(6, "BTCUSDT", fetch.token, late) == []  # an answer to the old request: ignored
    outs = sync.snapshot(6, "BTCUSDT", refetch.token, late)
    assert _kinds(outs) == ["BookSnapshot", "BookDelta", "FeedResync"]
    assert outs[1].seq == 20 and outs[2].reason == gap.reason and outs[2].took_ns == 2


def test_duplicates_and_late_diffs_are_ignored_and_an_old_snapshot_is_fetched_again() -> None:
    sync = BinanceSync("spot", [BINANCE_BTCUSDT_SPOT])
    (fetch,) = sync.connected(0)
    assert sync.message(1, _diff(15, 16)) == []
    (again,) = sync.snapshot(2, "BTCUSDT", fetch.token, SNAP)  # id 10: updates 11-14 are missing
    assert isinstance(again, Fetch) and sync.stats["snapshots_too_old"] == 1
    newer = SNAP.replace('"lastUpdateId":10', '"lastUpdateId":15')
    assert _kinds(sync.snapshot(3, "BTCUSDT", again.token, newer)) == ["BookSnapshot", "BookDelta", "FeedResync"]
    assert sync.message(4, _diff(15, 16)) == []  # the same diff again
    assert sync.stats["diffs_old"] == 1 and sync.stats["gaps"] == 0
    assert _kinds(sync.message(5, _diff(17, 17))) == ["BookDelta"]


def test_stale_stream_age_limit_and_disconnect() -> None:
    sync = BinanceSync("spot", [BINANCE_BTCUSDT_SPOT], stale_after_ns=2 * S, max_connection_ns=100 * S)
    assert sync.tick(5) == []  # not connected: nothing to watch
    (fetch,) = sync.connected(0)
    sync.message(1, _diff(11, 12))
    sync.snapshot(2, "BTCUSDT", fetch.token, SNAP)
    assert sync.tick(S) == []
    stale, reconnect = sync.tick(2 * S + 1)
    assert isinstance(stale, FeedStale) and stale.silent_ns == 2 * S and isinstance(reconnect, Reconnect)
    (gap,) = sync.disconnected(2 * S + 2, reconnect.reason)
    assert isinstance(gap, FeedGap) and "stale stream" in gap.reason and sync.state("BTCUSDT") == "disconnected"
    assert sync.snapshot(3 * S, "BTCUSDT", fetch.token, SNAP) == []
    assert _kinds(sync.connected(3 * S)) == ["Fetch"]  # the book is asked for again at once
    assert sync.message(102 * S, _diff(13, 14)) == []  # the stream goes on
    (age,) = sync.tick(103 * S)
    assert isinstance(age, Reconnect) and "connection age limit" in age.reason


def test_coinm_messages_follow_the_futures_rules() -> None:
    inst, _ = binance_instrument("coinm", "BTCUSD_PERP", "0.1", "1")
    sync = BinanceSync("coinm", [inst])
    (fetch,) = sync.connected(0)

    def diff(u0: int, u1: int, pu: int) -> str:
        return json.dumps({"stream": "btcusd_perp@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSD_PERP", "ps": "BTCUSD", "U": u0, "u": u1, "pu": pu,
            "b": [["61800.0", "12"]], "a": []}})  # fmt: skip

    assert sync.message(1, diff(9, 12, 8)) == []
    snap = ('{"lastUpdateId":10,"E":1,"T":1,"symbol":"BTCUSD_PERP","pair":"BTCUSD",'
            '"bids":[["61800.0","5"]],"asks":[["61800.1","7"]]}')  # fmt: skip
    assert _kinds(sync.snapshot(2, "BTCUSD_PERP", fetch.token, snap)) == ["BookSnapshot", "BookDelta", "FeedResync"]
    trade = ('{"stream":"btcusd_perp@trade","data":{"e":"trade","E":2,"T":2,"s":"BTCUSD_PERP","t":5,'
             '"p":"61800.1","q":"3","m":false}}')  # fmt: skip
    (t,) = sync.message(3, trade)
    assert t.size == 3 and t.aggressor == Side.BUY  # whole contracts
    assert _kinds(sync.message(4, diff(20, 25, 12))) == ["BookDelta"]  # futures ids skip: pu links the diffs
    assert _kinds(sync.message(5, diff(30, 31, 26))) == ["FeedGap", "Fetch"]


BROKEN = [
    ("{not json", "malformed message skipped (DecodeError"),
    ("[1, 2]", "expected a JSON object"),
    ('{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT","b":[],"a":[]}}', "integer 'U'"),
    (
        '{"stream":"btcusdt@trade","data":{"e":"trade","T":1,"s":"BTCUSDT","t":1,"p":"1.001","q":"1","m":true}}',
        "is not on the 0.01 grid",
    ),
    ('{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"1.00"}}', "missing field"),
    ('{"stream":"ethusdt@trade","data":{"e":"trade","s":"ETHUSDT"}}', "not one of ['BTCUSDT']"),
    ('{"stream":"btcusdt@kline_1m","data":{"e":"kline","s":"BTCUSDT"}}', "unknown message"),
    (_diff(13, 14, bids=[["61800.001", "1"]]), "is not on the 0.01 grid"),
]


@pytest.mark.parametrize(("text", "why"), BROKEN)
def test_a_malformed_message_is_counted_and_skipped_with_its_reason(text: str, why: str) -> None:
    sync = BinanceSync("spot", [BINANCE_BTCUSDT_SPOT])
    (fetch,) = sync.connected(0)
    sync.message(1, _diff(11, 12))
    sync.snapshot(2, "BTCUSDT", fetch.token, SNAP)
    (skipped,) = sync.message(3, text)
    assert isinstance(skipped, Skipped) and why in skipped.reason, skipped.reason
    assert sync.stats["malformed"] == 1 and sync.state("BTCUSDT") == "live"
    if "61800.001" in text:  # a diff that could not be applied: the next one shows the hole
        assert _kinds(sync.message(4, _diff(15, 16))) == ["FeedGap", "Fetch"]
    else:
        assert _kinds(sync.message(4, _diff(13, 14))) == ["BookDelta"]
    bad_snapshot = sync.snapshot(5, "BTCUSDT", 999, "nonsense")
    assert bad_snapshot == []  # no request of that token: ignored


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="market must be"):
        BinanceSync("margin", [BINANCE_BTCUSDT_SPOT])
    with pytest.raises(ValueError, match="at least one instrument"):
        BinanceSync("spot", [])
    with pytest.raises(ValueError, match="positive"):
        BinanceSync("spot", [BINANCE_BTCUSDT_SPOT], stale_after_ns=0)
    with pytest.raises(ValueError, match="does not list ETHUSDT"):
        instrument_from_exchange_info("spot", "ETHUSDT", {"symbols": []})
    with pytest.raises(ValueError, match="market must be"):
        BinanceLive(["BTCUSDT"], market="margin")
    with pytest.raises(ValueError, match="stale_after must be a positive"):
        BinanceLive(["BTCUSDT"], stale_after="0s")
    with pytest.raises(ValueError, match="depth speed"):
        BinanceLive(["BTCUSDT"], depth="5ms")
    with pytest.raises(ValueError, match="unknown fault"):
        LocalBinance([SPOT], limit=10).inject("earthquake")


def test_status_events_encode_like_every_event() -> None:
    events = [FeedGap(1, "binance-spot", "BTCUSDT", "sequence gap"), FeedResync(2, "f", "X", "start", 5, 9),
              FeedStale(3, "f", "", "quiet", 7)]  # fmt: skip
    for e in events:
        assert decode(encode(e)) == e
    assert [event_type(e) for e in events] == ["feed.gap", "feed.resync", "feed.stale"]


# ---------------------------------------------------------------------------------------------
# the real connector against the local exchange


class Run:
    """A live feed on a local exchange; collects what comes out until the book reaches the end
    of the tape (what comes after, such as the stream going stale once the tape is out, is not
    part of the run)."""

    def __init__(self, ex: LocalBinance, **kw: Any) -> None:
        self.ex = ex
        self.events: list[Event] = []
        self.last_seq = 0
        self.syncing = True  # between a gap (or the start) and the resync that ends it
        self.end: int | None = None
        self.lock = threading.Lock()
        self.feed = BinanceLive(ex.symbols, market=ex.market, ws_url=ex.ws_url, rest_url=ex.rest_url,
                                on_event=self._on, **kw)  # fmt: skip
        self.final_u = max(m.diff["u"] for m in ex.tape if m.diff is not None)

    def _on(self, e: Event) -> None:
        with self.lock:
            self.events.append(e)
            if isinstance(e, BookDelta | BookSnapshot):
                self.last_seq = e.seq
            elif isinstance(e, FeedGap):
                self.syncing = True
            if isinstance(e, FeedResync):
                self.syncing = False
            if self.end is None and self.last_seq >= self.final_u and not self.syncing:
                self.end = len(self.events)

    def until_end(self, eventually: Callable[..., None]) -> list[Event]:
        """Wait until the live book is at the tape's last update, in sync; what came until then."""
        eventually(lambda: self.end is not None, timeout_s=120, what="the live book to reach the end of the tape")
        return self.of(Event)

    def of(self, kind: type[Event]) -> list[Any]:
        with self.lock:
            return [e for e in self.events[: self.end] if isinstance(e, kind)]


@pytest.fixture
def run(request: pytest.FixtureRequest) -> Iterator[Callable[..., Run]]:
    started: list[tuple[LocalBinance, Run]] = []

    def make(path: Path = SPOT, *, limit: int | None = 12_000, ex_kw: dict[str, Any] | None = None,
             **kw: Any) -> Run:  # fmt: skip
        ex = LocalBinance([path], limit=limit, **(ex_kw or {})).start()
        r = Run(ex, **kw)
        started.append((ex, r))
        return r

    yield make
    for ex, r in started:
        r.feed.stop()
        ex.stop()


def test_live_feed_reproduces_the_capture_and_the_engine_outputs(run: Callable[..., Run], eventually: Any) -> None:
    r = run(USDM, limit=30_000)
    r.feed.start()
    events = r.until_end(eventually)
    ref = reference(USDM)
    assert check_books(events, ref) > 1500
    live = [e for e in events if isinstance(e, MarketEvent)]
    assert not r.of(FeedGap) and r.feed.stats["malformed"] == 0, r.of(FeedGap)
    assert [e.snapshot_id for e in r.of(FeedResync)] == [live[[type(e) for e in live].index(BookSnapshot)].seq]
    # Trades and quotes: the same events as the file's (but for when they reached us).
    trades = [_strip(e) for e in live if not isinstance(e, BookSnapshot | BookDelta)]
    ref_trades = [_strip(e) for e in ref.events if not isinstance(e, BookSnapshot | BookDelta)]
    assert len(trades) > 10_000 and trades == ref_trades[: len(trades)]
    # The same orders on both feeds, through the sequenced log and the execution worker: one hash.
    t0 = next(e.ts for e in live if isinstance(e, BookSnapshot))
    book = L2Book("BTCUSDT")
    for e in ref.events:
        if isinstance(e, BookSnapshot | BookDelta):
            book.apply(e)
        if e.ts > t0 + 5 * S:
            break
    (bid, _), (ask, _) = book.best_bid(), book.best_ask()  # type: ignore[misc]
    orders = [
        SubmitOrder(t0 + 5 * S, "ana", "a1", "BTCUSDT", Side.BUY, OrderType.MARKET, 40),
        SubmitOrder(t0 + 6 * S, "ben", "b1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 25, limit_price=bid),
        SubmitOrder(t0 + 7 * S, "cat", "c1", "BTCUSDT", Side.SELL, OrderType.LIMIT, 30, limit_price=ask + 5),
        SubmitOrder(t0 + 20 * S, "ana", "a2", "BTCUSDT", Side.SELL, OrderType.MARKET, 15),
    ]
    end = live[-1].ts
    hashes = []
    for market in (live, [e for e in ref.events if e.ts <= end]):
        bus = open_bus("memory://")
        Sequencer(bus, entry_latency="1ms").feed(market, orders)
        with ExecutionWorker(bus, {"BTCUSDT": EngineConfig(BINANCE_BTCUSDT_USDM)}) as w:
            w.run()
        hashes.append(output_hash(bus, "exec"))
        assert any(type(x.event).__name__ == "OrderFilled" for x in _records(bus))
    assert hashes[0] == hashes[1]


def _records(bus: Any) -> list[Any]:
    from vtrade.runtime.execution_worker import read_topic

    return read_topic(bus, "exec")


def _assert_recovered(r: Run, events: list[Event], ref: Reference) -> None:
    """Every update equals the reference; every gap was followed by a resync; the end is exact."""
    check_books(events, ref)
    order = [type(e).__name__ for e in events if isinstance(e, FeedGap | FeedResync)]
    assert order[0] == "FeedResync" and order[-1] == "FeedResync", order
    assert r.last_seq == r.final_u


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_detected_and_recovered(fault: str, run: Callable[..., Run], eventually: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    r = run(stale_after="2s", snapshot_timeout="1s")
    at = r.ex.diff_positions()[400]
    if fault == "malformed":
        for k in range(5):  # every kind of broken frame, in a row
            r.ex.inject("malformed", at=at + k * 50, variant=k)
    elif fault == "stale":
        r.ex.inject("stale", at=at, pause_s=4)
    elif fault == "slow_snapshot":  # a gap, and the snapshot to repair it comes too late and is asked again
        r.ex.inject("drop", at=at)
        r.ex.inject("slow_snapshot", at=at, delay_s=2)
    else:
        r.ex.inject(fault, at=at)
    with caplog.at_level(logging.INFO, logger="vtrade.binance_live"):
        r.feed.start()
        events = r.until_end(eventually)
    _assert_recovered(r, events, reference(SPOT))
    gaps, resyncs, stale = r.of(FeedGap), r.of(FeedResync), r.of(FeedStale)
    stats = r.feed.stats
    assert r.ex.injected[fault] == (5 if fault == "malformed" else 1)
    if fault == "duplicate":  # harmless by Binance's rules: ignored, counted, the book never left the reference
        assert stats["diffs_old"] == 1 and not gaps and len(resyncs) == 1
    elif fault == "malformed":
        assert stats["malformed"] == 5 and not gaps
        assert sum("malformed message skipped" in m for m in caplog.messages) == 5
    else:
        assert len(gaps) == 1 and len(resyncs) == 2
        assert gaps[0].reason.split(": ", 1)[1] in resyncs[1].reason
    if fault in ("drop", "reorder", "slow_snapshot"):
        assert "sequence gap" in gaps[0].reason
    if fault == "disconnect":
        assert "disconnected: the server closed the connection" in gaps[0].reason and r.ex.connections == 2
    if fault == "stale":
        assert len(stale) == 1 and "stale stream" in gaps[0].reason and r.ex.connections == 2
    if fault == "slow_snapshot":
        assert any("depth snapshot of BTCUSDT failed" in m for m in caplog.messages)
        assert resyncs[1].took_ns >= 1 * S


def test_a_seeded_storm_of_faults(run: Callable[..., Run], eventually: Any) -> None:
    r = run(limit=25_000, stale_after="2s", snapshot_timeout="1s")
    rng = random.Random(17)
    positions = r.ex.diff_positions()
    chosen = sorted(rng.sample(positions[100 : int(len(positions) * 0.85)], 16))
    kinds = [rng.choice(FAULTS) for _ in chosen]
    for at, kind in zip(chosen, kinds, strict=True):
        r.ex.inject(kind, at=at, pause_s=3, delay_s=1.5, lost=30)
    r.feed.start()
    events = r.until_end(eventually)
    _assert_recovered(r, events, reference(SPOT))
    injected = r.ex.injected
    assert sum(injected.values()) == len(chosen)
    stats = r.feed.stats
    assert stats["malformed"] == injected["malformed"]
    assert len(r.of(FeedStale)) >= injected["stale"]  # (a loaded machine may add one: never fewer)
    assert r.ex.connections >= 1 + injected["stale"] + injected["disconnect"]
    if injected["drop"] + injected["reorder"] + injected["disconnect"]:
        assert r.of(FeedGap)


def test_renews_a_connection_at_its_age_limit(run: Callable[..., Run], eventually: Any) -> None:
    r = run(max_connection="1s")
    r.feed.start()
    eventually(lambda: any("connection age limit" in e.reason for e in r.of(FeedResync)), timeout_s=60,
               what="a resync after the connection's age limit")  # fmt: skip
    _assert_recovered(r, r.until_end(eventually), reference(SPOT))


def test_a_recording_replays_exactly(run: Callable[..., Run], eventually: Any, tmp_path: Path) -> None:
    rec = tmp_path / "live.jsonl.gz"
    r = run(record=rec, snapshot_timeout="1s")
    positions = r.ex.diff_positions()
    r.ex.inject("drop", at=positions[300])
    r.ex.inject("malformed", at=positions[500], variant=3)
    r.feed.start()
    events = r.until_end(eventually)
    r.feed.stop()
    with gzip.open(rec, "rt") as fh:
        replayed = list(replay_lines(BinanceSync("spot", [BINANCE_BTCUSDT_SPOT]), fh))
    live_market = [e for e in events if isinstance(e, MarketEvent)]  # the recording goes on after the run's end
    assert [e for e in replayed if isinstance(e, MarketEvent)][: len(live_market)] == live_market
    assert [e.reason for e in replayed if isinstance(e, FeedGap)] == [e.reason for e in r.of(FeedGap)][:1]


def test_an_unknown_symbol_fails_with_a_clear_error(eventually: Any) -> None:
    with LocalBinance([SPOT], limit=100) as ex:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{ex.rest_url}/api/v3/depth?symbol=DOGEUSDT&limit=5", timeout=10)
        assert info.value.code == 400 and json.loads(info.value.read())["code"] == -1121
        feed = BinanceLive(["DOGEUSDT"], ws_url=ex.ws_url, rest_url=ex.rest_url).start()
        try:
            eventually(lambda: feed.state() == "failed", timeout_s=30, what="the feed to give up")
            assert feed.error is not None and "DOGEUSDT" in feed.error and "400" in feed.error
        finally:
            feed.stop()


def test_grids_come_from_exchange_info() -> None:
    with LocalBinance([SPOT], limit=100) as ex:
        feed = BinanceLive(["BTCUSDT"], ws_url=ex.ws_url, rest_url=ex.rest_url).start()
        try:
            assert feed.wait_live(30)
            assert feed.grid_sources == {"BTCUSDT": "exchangeInfo"}
            assert feed.instruments["BTCUSDT"].tick_size == BINANCE_BTCUSDT_SPOT.tick_size
        finally:
            feed.stop()


def test_a_live_market_trades_on_the_live_feed(eventually: Any) -> None:
    from vtrade.runtime.execution_worker import read_topic
    from vtrade.runtime.live import LiveConfig, LiveMarket

    with LocalBinance([USDM], limit=20_000) as ex:
        ex.inject("drop", at=ex.diff_positions("BTCUSDT")[200])  # a gap: the feed must resync
        cfg = LiveConfig(symbols=(), binance=("BTCUSDT",), binance_market="usdm", binance_urls=(ex.ws_url, ex.rest_url),
                         bots=False, speed=0)  # fmt: skip
        m = LiveMarket(cfg, keep_log=True)
        try:
            m.open_account("ada", cash=1_000_000)
            eventually(lambda: ex.done, what="the tape to be out")
            m.advance(3)
            # The feed's status events are on the log (topic "feeds"), and nothing piles up in it.
            status = [type(r.event).__name__ for r in read_topic(m._log.bus, "feeds")]
            assert "FeedGap" in status and status[-1] == "FeedResync", status
            assert m._live_feed is not None and not m._live_feed.take()
            top = m.depth("BTCUSDT", levels=1)
            out = m.submit("ada", "BTCUSDT", "buy", "0.25")
            assert out.ok, out.reason
            m.advance(2)
            assert m.orders("ada").status.tolist() == ["filled"]
            fill = m.fills("ada").iloc[0]
            assert fill.price >= top[top.side == "ask"].price.min()  # a market buy takes the live book's offers
            clock = m.clock()
            assert clock["live"]["state"] == "live" and clock["live"]["delay_ms"] is not None
            batches = [r.event for r in read_topic(m._log.bus, "exec.in") if isinstance(r.event, MarketBatch)]
            deltas = [e for b in batches for e in b.events if isinstance(e, BookDelta)]
            assert len(deltas) > 50  # the live feed's updates are on the sequenced log
        finally:
            m.close()
        with pytest.raises(ValueError, match="without a data dir"):
            LiveMarket(cfg, data_dir="/tmp/never-made")


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (["--symbols", " , "], "--symbols: expected symbols"),
        (["--symbols", "BTC-USDT"], "--symbols: expected symbols"),
        (["--binance-url", "http://127.0.0.1:1"], "--binance-url: expected WS,REST"),
        (["--binance-url", "ws://a,ftp://b"], "--binance-url: expected WS,REST"),
    ],
)
def test_serve_binance_live_refuses_bad_flags(flags: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    from vtrade.cli import main

    assert main(["serve", "--market", "binance-live", "--ephemeral", *flags]) == 2
    assert why in capsys.readouterr().err


def test_the_servers_pings_are_answered(eventually: Any) -> None:
    with LocalBinance([SPOT], limit=200, ping_interval_s=0.3) as ex:
        feed = BinanceLive(["BTCUSDT"], ws_url=ex.ws_url, rest_url=ex.rest_url).start()
        try:
            assert feed.wait_live(30)
            eventually(lambda: ex.pongs >= 3, what="pongs to the server's pings")
            assert ex.connections == 1  # no ping went unanswered: the server would have closed the connection
        finally:
            feed.stop()
