"""The session store: NAV history, fills (idempotent), benchmarks, SQL, and bad input."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from vtrade.core.events import Side
from vtrade.core.instruments import us_equity
from vtrade.execution.events import OrderFilled
from vtrade.execution.orders import Liquidity
from vtrade.execution.tables import FILLS, fills_frame
from vtrade.runtime.store import Store, StoreError, grid_times

SPY = us_equity("SPY")


def fills(*ids: str, account: str = "a") -> pd.DataFrame:
    events = [OrderFilled(i, account, "c", "SPY", fid, Side.BUY, 10_000, 1, 0, Liquidity.TAKER, Decimal(0), 20_000, 0.0,
                          "l2-walk") for i, fid in enumerate(ids)]  # fmt: skip
    return fills_frame(events, SPY)


def test_fills_are_idempotent_by_fill_id() -> None:
    s = Store()
    assert s.append_fills(fills("f1", "f2")) == 2
    assert s.append_fills(fills("f2", "f3", "f3")) == 1  # f2 stored already, f3 twice in one batch
    assert s.sql("select fill_id from fills order by fill_id").fill_id.tolist() == ["f1", "f2", "f3"]
    # Fill ids are unique per exchange run: another account's f1 is a different fill.
    assert s.append_fills(fills("f1", account="b")) == 1


def test_fills_come_back_in_the_public_schema_with_nanosecond_utc_times() -> None:
    s = Store()
    written = fills("f1", "f2", "f3")
    written["ts"] = pd.to_datetime([1_700_000_000_000_000_001, 1_700_000_000_000_000_001, 1_700_000_000_000_000_002],
                                   unit="ns", utc=True)  # two fills at one nanosecond keep their order
    s.append_fills(written)
    back = s.fills()
    FILLS.check(back)
    pd.testing.assert_frame_equal(back, written)
    assert s.fills("nobody").empty and list(s.fills("nobody").columns) == list(FILLS)
    assert str(s.sql("select ts from fills").ts.dtype) == "datetime64[ns, UTC]"  # SQL results are UTC too


def test_a_fills_frame_not_in_the_schema_is_refused() -> None:
    s = Store()
    old = pd.DataFrame({"ts": [0], "account": "a", "client_order_id": "c", "fill_id": "f1", "symbol": "SPY",
                        "side": 1, "price": 100.0, "quantity": 1.0, "fee": 0.0, "liquidity": "taker"})  # fmt: skip
    with pytest.raises(StoreError, match="missing columns"):
        s.append_fills(old)
    assert s.fills().empty


def test_a_store_file_from_before_the_schema_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE fills (ts BIGINT, account VARCHAR, fill_id VARCHAR, side INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="older vtrade"):
        Store(path)


def test_benchmarks_replace_and_join_with_nav(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "session.duckdb")
    closes = pd.DataFrame({"date": pd.to_datetime(["2017-01-03", "2017-01-04"]).date, "symbol": "SPY",
                           "close": [225.24, 226.58]})  # fmt: skip
    assert s.load_benchmarks(closes) == 2
    assert s.load_benchmarks(closes) == 2  # reloading replaces, never duplicates
    assert s.sql("select count(*) as n from benchmarks").n.iloc[0] == 2
    s.close()
    reopened = Store(tmp_path / "session.duckdb")
    assert reopened.sql("select max(close) as c from benchmarks").c.iloc[0] == pytest.approx(226.58)


def test_bad_input_is_a_clear_error_and_changes_nothing() -> None:
    s = Store()
    with pytest.raises(StoreError, match="missing columns"):
        s.append_nav(pd.DataFrame({"ts": [1], "account": ["a"]}))
    with pytest.raises(StoreError, match="SQL failed"):
        s.sql("select * from no_such_table")
    with pytest.raises(StoreError, match="unknown grid"):
        grid_times(0, 10, "5s")
    assert s.sql("select count(*) as n from nav_history").n.iloc[0] == 0


def test_grid_is_aligned_and_inclusive() -> None:
    day = 86_400_000_000_000
    assert grid_times(1, 2 * day, "1d").tolist() == [day, 2 * day]
    assert grid_times(0, 0, "1min").tolist() == [0]
