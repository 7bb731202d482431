"""Fuzzed order input: ``submit_from_user``, the ``vtrade book``/``vtrade replay`` options and the
notebook session's order entry either accept the input or raise a documented error naming the
field (the option), and a refused input changes nothing (no order kept, no file written).

Also runs the fuzz harness's pure-Python mode for 2 s (its atheris mode is the real fuzzer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vtrade as vt
from vtrade._fuzz import CLI_VALUES, ORDER_TYPES, ORDER_VALUES, SIDES, TIFS, FeedCase, check_cli, check_submit
from vtrade.core.errors import VtradeError
from vtrade.execution.validation import OrderInputError
from vtrade.runtime.live import LiveConfig
from vtrade.runtime.live_session import LiveSession

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]

values = st.one_of(
    st.sampled_from(ORDER_VALUES), st.text(max_size=12), st.floats(), st.integers(), st.decimals(), st.none()
)


@FUZZ
@given(
    instrument=st.sampled_from(["BTCUSDT", "spy", "NOPE", "", 5]), side=st.sampled_from(SIDES) | st.text(max_size=5),
    order_type=st.sampled_from(ORDER_TYPES), quantity=values, tif=st.sampled_from(TIFS),
    extra=st.dictionaries(st.sampled_from(["limit_price", "stop_price", "trail", "trail_percent", "expire_ts"]),
                          values),
    post_only=st.booleans(),
)  # fmt: skip
def test_submit_from_user_gives_an_exact_order_or_names_the_field(
    instrument: object, side: object, order_type: object, quantity: object, tif: object, extra: dict, post_only: bool
) -> None:
    check_submit(dict(instrument=instrument, side=side, order_type=order_type, quantity=quantity, tif=tif,
                      post_only=post_only, **extra))  # fmt: skip


@pytest.mark.parametrize("quantity", ["1e-999999999", "1e999999", "1e40", "9" * 40])
def test_extreme_quantities_are_refused_not_crashed(quantity: str) -> None:
    from vtrade.core.instruments import BINANCE_BTCUSDT_USDM
    from vtrade.execution.validation import submit_from_user

    with pytest.raises(OrderInputError) as err:
        submit_from_user("a", "c", BINANCE_BTCUSDT_USDM, "buy", "market", quantity)
    assert err.value.field == "quantity"


@pytest.fixture(scope="module")
def session() -> Iterator[LiveSession]:
    s = vt.Session.demo(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000), start=False)
    s.advance(2)
    yield s
    s.close()


@FUZZ
@given(symbol=st.sampled_from(["AAPL", "aapl", "APPL", "", "𝟙"]), side=st.sampled_from(SIDES), quantity=values,
       order_type=st.sampled_from(ORDER_TYPES), limit_price=values, tif=st.sampled_from(TIFS))  # fmt: skip
def test_notebook_order_entry_refuses_bad_input_and_changes_nothing(
    session: LiveSession, symbol: object, side: object, quantity: object, order_type: object, limit_price: object,
    tif: object,
) -> None:
    before = len(session.orders())
    try:
        outcome = session.submit(symbol, side, quantity, order_type, limit_price, tif)  # type: ignore[arg-type]
    except OrderInputError as exc:
        assert exc.field and str(exc)
        assert len(session.orders()) == before  # nothing sent, nothing recorded
    except VtradeError:  # the unknown-symbol error (names close matches)
        assert len(session.orders()) == before
    else:
        assert outcome.ok or outcome.reason


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    case = FeedCase.make("binance-usdm", d / "feed", lines=120)
    strategy = d / "idle.py"
    strategy.write_text("def idle(ctx):\n    pass\n")
    garbage = d / "garbage.csv"
    garbage.write_text("hello,world\n1,2\n")
    return {"feed": case.write(case.texts)[0], "strategy": strategy, "garbage": garbage, "missing": d / "nope.csv",
            "dir": d}  # fmt: skip


def _options(names: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    pairs = [st.one_of(st.none(), st.sampled_from(CLI_VALUES[n]), st.text(max_size=6)).map(
        lambda v, n=n: [] if v is None else [n, v]) for n in names]  # fmt: skip
    return st.tuples(*pairs).map(lambda ps: [x for p in ps for x in p])


@FUZZ
@given(file=st.sampled_from(["feed", "garbage", "missing", "dir"]),
       options=_options(("--format", "--symbol", "--levels")))
def test_book_options_fail_with_a_message_and_leave_no_file(
    cli_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, file: str, options: list[str]
) -> None:
    out = tmp_path_factory.mktemp("out") / "book.parquet"
    code = check_cli(["book", str(cli_files[file]), "--out", str(out), "--quiet", *options], out)
    assert (code == 0) == out.exists()


@FUZZ
@given(file=st.sampled_from(["feed", "garbage", "missing"]),
       options=_options(("--format", "--realism", "--every", "--latency", "--fees", "--seed")))  # fmt: skip
def test_replay_options_fail_with_a_message_and_write_nothing(
    cli_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, file: str, options: list[str]
) -> None:
    out = tmp_path_factory.mktemp("out") / "run"
    argv = ["replay", str(cli_files[file]), "--strategy", f"{cli_files['strategy']}:idle", "--out", str(out),
            "--quiet", *options]  # fmt: skip
    code = check_cli(argv, out)
    assert (code == 0) == out.exists()


def test_cli_names_its_own_flags(cli_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vtrade.cli import main

    assert main(["book", str(cli_files["garbage"]), "--out", str(tmp_path / "b.parquet"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unrecognised format" in err and err.rstrip().endswith("pass --format") and "format=" not in err
    argv = ["replay", str(cli_files["feed"]), "--strategy", f"{cli_files['strategy']}:idle", "--out",
            str(tmp_path / "r"), "--every", "999999min"]  # fmt: skip
    assert main(argv) == 2
    assert "--every: must be at most 365 days" in capsys.readouterr().err


def test_fuzz_harness_fallback_mode_runs_and_finds_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/fuzz_inputs.py"), "--seconds", "2", "--fallback",
         "--targets", "binance-usdm,taq-quotes,orders"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert report["mode"] == "fallback" and set(report["targets"]) == {"binance-usdm", "taq-quotes", "orders"}
    assert all(t["executions"] > 0 for t in report["targets"].values())
    assert report["total"]["distinct_crashes"] == 0, report


@pytest.mark.parametrize("command", ["book", "replay"])
def test_a_ticker_with_control_characters_is_a_usage_error(command: str, tmp_path: Path) -> None:
    """Found by benchmarks/fuzz_inputs.py (atheris, cli target): `--symbol '+\\x00\\x02…'` reached
    Instrument() and raised a bare ValueError. argparse now refuses it, naming the option."""
    feed = str(ROOT / "data/taq/lean_tick_quotes_IBM_BAC.csv.gz")  # multi-ticker: --symbol builds an Instrument
    extra = ["--strategy", "vtrade.strategies:buy_and_hold", "--realism", "L1"] if command == "replay" else []
    for bad in ["+\x00\x02\x03\t\n", " BTCUSDT", "BTC USDT", ""]:
        assert check_cli([command, feed, "--symbol", bad, *extra, "--out", str(tmp_path / "o"), "--quiet"],
                         tmp_path / "o") == 2  # fmt: skip
