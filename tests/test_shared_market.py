"""Issue 15, item 3: several UI processes on one log show the same accounts.

One process paces the market (it puts a tick on ``orders`` before each slice); the others are
replicas that fold the same ``orders`` and run a slice wherever the log has a tick. Whatever
process a person's entry goes through, every process folds it at the same place, so each
account reads the same from any of them: orders, fills, portfolio, NAV history and quotes.
Checked on memory, Redis and Kafka, stepped by hand and with both markets running in threads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from vtrade.runtime.bus import Bus, MemoryBus, open_bus
from vtrade.runtime.execution_worker import DeterminismError
from vtrade.runtime.live import AccountTakenError, LiveConfig, LiveMarket, market_fingerprint
from vtrade.runtime.live_log import ENTRIES, MarketMismatch, claim_pace, pacer_running

CONFIG = LiveConfig(speed=0, seed=5, symbols=("AAPL", "JPM", "XOM"))


def clients(request: pytest.FixtureRequest, transport: str) -> Iterator[tuple[Bus, Bus]]:
    """Two clients of one log, as two processes would hold (one object on memory://)."""
    if transport == "memory":
        bus = MemoryBus()
        yield bus, bus
        return
    base = request.getfixturevalue("redis_url" if transport == "redis" else "kafka_url")
    url = f"{base}?namespace=shared-{uuid.uuid4().hex[:10]}"
    first, second = open_bus(url), open_bus(url)
    yield first, second
    second.close()
    first.close()


@pytest.fixture(params=["memory", "redis", "kafka"])
def two_buses(request: pytest.FixtureRequest) -> Iterator[tuple[Bus, Bus]]:
    """:func:`clients` on every transport."""
    yield from clients(request, request.param)


@pytest.fixture(params=["memory", "redis"])
def two_quick_buses(request: pytest.FixtureRequest) -> Iterator[tuple[Bus, Bus]]:
    """:func:`clients` where the other tests already cover Kafka's part (its clients are slow to start)."""
    yield from clients(request, request.param)


def pair(buses: tuple[Bus, Bus], config: LiveConfig = CONFIG) -> tuple[LiveMarket, LiveMarket]:
    """A pacer and a replica of ``config`` on the two clients, claimed as ``vtrade serve`` does."""
    fingerprint = market_fingerprint(config)
    assert claim_pace(buses[0], fingerprint) is True
    assert claim_pace(buses[1], fingerprint) is False
    return LiveMarket(config, bus=buses[0], role="pacer"), LiveMarket(config, bus=buses[1], role="replica")


def views(m: LiveMarket, account: str) -> dict[str, object]:
    """Everything a person sees of ``account`` (the same frames the dashboard reads)."""
    portfolio = m.portfolio(account)
    return {
        "orders": m.orders(account),
        "fills": m.fills(account),
        "positions": portfolio["positions"],
        "nav": m.nav_history(account),
        "value": m.portfolio_value(account),
        "version": m.version(account),
    }


def assert_same(a: LiveMarket, b: LiveMarket, accounts: tuple[str, ...]) -> None:
    assert a.now == b.now
    pd.testing.assert_frame_equal(a.quotes(), b.quotes())
    for account in accounts:
        va, vb = views(a, account), views(b, account)
        for key, value in va.items():
            if isinstance(value, pd.DataFrame):
                pd.testing.assert_frame_equal(value, vb[key], obj=f"{account} {key}")  # type: ignore[arg-type]
            else:
                assert value == vb[key], (account, key)


def test_an_account_reads_the_same_from_the_pacer_and_a_replica(two_buses: tuple[Bus, Bus]) -> None:
    pacer, replica = pair(two_buses)
    pacer.open_account("ada", cash=100_000)
    replica.open_account("bob", cash=50_000)  # opened through the replica: on the shared log
    symbols = pacer.symbols()
    for i in range(12):
        pacer.advance(3)
        symbol = symbols[i % len(symbols)]
        # ada trades through either server; bob through the replica, resting limits too.
        (replica if i % 2 else pacer).submit("ada", symbol, "buy" if i % 3 else "sell", 5 + i)
        if i % 4 == 1:
            bid = float(replica.quotes([symbol]).bid[0])
            assert replica.submit("bob", symbol, "buy", 7, "limit", round(bid - 0.02, 2), "gtc").ok
    pacer.advance(20)
    replica.catch_up()
    assert len(pacer.fills("ada")) > 5 and len(pacer.orders("bob")) == 3, "the session must trade"
    assert_same(pacer, replica, ("ada", "bob"))
    # The replica cancels one of bob's resting orders; the pacer folds the same cancel.
    resting = replica.orders("bob").query("status == 'accepted'").client_order_id.iloc[0]
    assert replica.cancel("bob", resting).ok
    pacer.advance(3)
    replica.catch_up()
    assert pacer.orders("bob").set_index("client_order_id").status[resting] == "cancelled"
    assert_same(pacer, replica, ("ada", "bob"))
    replica.close()
    pacer.close()


def test_two_servers_entering_for_one_account_at_once_get_distinct_orders(two_quick_buses: tuple[Bus, Bus]) -> None:
    pacer, replica = pair(two_quick_buses)
    pacer.open_account("ada")
    replica.catch_up()
    pacer.advance(2)
    # The replica has not folded the pacer's order yet: both name the order they send ada-1.
    first = pacer.submit("ada", "AAPL", "buy", 3)
    second = replica.submit("ada", "AAPL", "buy", 4)
    assert (first.client_order_id, second.client_order_id) == ("ada-1", "ada-2")  # the log's order decides
    pacer.advance(5)
    replica.catch_up()
    assert pacer.orders("ada").client_order_id.tolist() == ["ada-1", "ada-2"]
    assert_same(pacer, replica, ("ada",))
    # The same name opened through both: the log's first entry has it, the other is refused.
    pacer.open_account("cy")
    with pytest.raises(AccountTakenError, match="already open"):
        replica.open_account("cy")
    assert replica.open_account_if_free("cy") is False
    assert replica.open_account_if_free("dee") is True
    # An account opened through the pacer a moment ago is there for the replica's next request
    # (it folds the log when it does not know a name), before it has folded anything by itself.
    pacer.open_account("eve")
    assert replica.has_account("eve") and replica.submit("eve", "JPM", "buy", 1).ok
    replica.close()
    pacer.close()


def test_a_running_pacer_and_replica_agree_under_concurrent_traders(
    two_buses: tuple[Bus, Bus], eventually: Callable[..., None]
) -> None:
    pacer, replica = pair(two_buses)
    accounts = ("ada", "bob", "cy")
    for name in accounts:
        pacer.open_account(name)
    pacer.start()
    replica.start()  # it has not folded the accounts yet: its traders' first orders make it
    errors: list[BaseException] = []

    def trade(m: LiveMarket, name: str, orders: int) -> None:
        try:
            for i in range(orders):
                m.submit(name, ("AAPL", "JPM", "XOM")[i % 3], "buy" if i % 2 else "sell", 1 + i % 4,
                         size_to_cash=True)  # fmt: skip
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=trade, args=(m, name, 15)) for m in (pacer, replica) for name in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    eventually(lambda: pacer.now > pacer.start_ts + 30 * 10**9, timeout_s=120, what="the pacer to run 30 slices")
    pacer.stop()
    end = two_buses[0].end_offsets(ENTRIES)[0]
    # The replica follows the log by itself (its own thread) up to the pacer's last tick.
    eventually(lambda: replica._log._entries_at >= end, timeout_s=120, what="the replica to fold the log")
    replica.stop()
    assert sum(len(pacer.orders(a)) for a in accounts) == 2 * 15 * len(accounts)
    assert_same(pacer, replica, accounts)
    replica.close()
    pacer.close()


def test_a_replica_of_another_market_is_refused_and_changes_nothing() -> None:
    bus = MemoryBus()
    assert claim_pace(bus, market_fingerprint(CONFIG)) is True
    other = LiveConfig(speed=0, seed=6, symbols=("AAPL", "JPM", "XOM"))
    with pytest.raises(MarketMismatch, match="same --market, --seed and --queue"):
        claim_pace(bus, market_fingerprint(other))
    assert bus.end_offsets(ENTRIES) == [1]
    # A log opened by a market that was not shared is not joined either.
    solo = MemoryBus()
    LiveMarket(CONFIG, bus=solo).open_account("ada")
    with pytest.raises(MarketMismatch, match="not opened to be shared"):
        claim_pace(solo, market_fingerprint(CONFIG))
    assert solo.end_offsets(ENTRIES) == [1]


def test_a_replica_that_disagrees_with_the_ticks_stops_with_a_clear_error() -> None:
    bus = MemoryBus()
    pacer = LiveMarket(CONFIG, bus=bus, role="pacer")
    # A replica built with another slice length (what claim_pace would refuse): the first tick
    # ends where this market's slice does not.
    replica = LiveMarket(LiveConfig(speed=0, seed=5, symbols=("AAPL", "JPM", "XOM"), step="2s"), bus=bus,
                         role="replica")  # fmt: skip
    pacer.advance(1)
    with pytest.raises(DeterminismError, match="the pacer runs another market"):
        replica.catch_up()


def test_roles_are_checked() -> None:
    with pytest.raises(ValueError, match="role must be"):
        LiveMarket(CONFIG, role="leader")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shares its market on a bus"):
        LiveMarket(CONFIG, role="replica")
    with pytest.raises(ValueError, match="execution must be 'embedded'"):
        LiveMarket(CONFIG, bus=MemoryBus(), role="replica", execution="remote")
    replica = LiveMarket(CONFIG, bus=MemoryBus(), role="replica")
    with pytest.raises(RuntimeError, match="call catch_up"):
        replica.advance()


def test_a_pacer_that_never_beat_or_stopped_is_not_running() -> None:
    bus = MemoryBus()
    assert pacer_running(bus, wait_s=0.0) is False  # none ever beat
    pacer = LiveMarket(CONFIG, bus=bus, role="pacer").start()
    assert pacer_running(bus, wait_s=60.0) is True
    pacer.stop()
    assert pacer_running(bus, wait_s=0.0) is False  # its last beat says it stopped


def test_a_replica_takes_the_pacing_over_when_its_pacer_stops(eventually: Callable[..., None]) -> None:
    bus = MemoryBus()
    assert claim_pace(bus, market_fingerprint(CONFIG))
    pacer = LiveMarket(CONFIG, bus=bus, role="pacer")
    replica = LiveMarket(CONFIG, bus=bus, role="replica")
    pacer.open_account("ada")
    pacer.advance(5)
    replica.start()
    pacer.start()
    eventually(lambda: replica.now > pacer.start_ts + 10 * 10**9, timeout_s=60, what="the replica to follow")
    pacer.stop()  # its last heartbeat says it stopped
    stopped_at = pacer.now
    eventually(lambda: replica.role == "pacer", timeout_s=60, what="the replica to take the pacing over")
    eventually(lambda: replica.now > stopped_at + 5 * 10**9, timeout_s=60, what="the market to go on")
    assert replica.submit("ada", "AAPL", "buy", 2).ok  # trading goes on through the new pacer
    # A server joining now folds the whole log, both pacers' ticks, and agrees with the new pacer.
    late = LiveMarket(CONFIG, bus=bus, role="replica")
    replica.stop()
    late.catch_up()
    assert_same(replica, late, ("ada",))
    assert pacer_running(bus, wait_s=0.0) is False


def test_two_pacers_ticking_the_same_slices_run_each_slice_once() -> None:
    bus = MemoryBus()
    one = LiveMarket(CONFIG, bus=bus, role="pacer")
    two = LiveMarket(CONFIG, bus=bus, role="replica")
    follower = LiveMarket(CONFIG, bus=bus, role="replica")
    one.open_account("ada")
    one.advance(3)
    two.take_over()  # as if it thought the first was gone
    for _ in range(4):
        one.advance()  # ticks the next slice...
        two.advance()  # ...which two has not folded yet: it ticks the same slice end, then skips it
    follower.catch_up()
    ticks = [r.event for r in bus.read(ENTRIES, 0, 0, 1000) if type(r.event).__name__ == "SliceTick"]
    assert len(ticks) == 3 + 2 * 4 and len({t.ts for t in ticks}) == 3 + 4  # each slice end ticked twice
    assert one.now == two.now == follower.now == one.start_ts + 7 * 10**9
    assert_same(one, follower, ("ada",))
    assert_same(two, follower, ("ada",))
    with pytest.raises(RuntimeError, match="only a replica takes the pacing over"):
        one.take_over()
