"""Fuzz targets for vtrade's inputs, shared by ``tests/test_fuzz_*.py`` and ``benchmarks/fuzz_inputs.py``.

The contract every target checks (issue 9): any input either reads/validates, or raises one of
vtrade's documented errors (a :class:`~vtrade.core.errors.VtradeError`) naming the file and
line, or the field; never a bare library exception, never a hang. A target raises
:class:`Crash` (or lets the bare exception through) when the contract is broken.

Seeds are small slices (the first few hundred lines) of the shipped data files, so a run stays
fast; mutations model what corrupts real files: truncation, flipped bytes, reordered, dropped or
duplicated lines, and nasty values (NaN, inf, huge, negative, wrong types, unicode digits).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import re
import signal
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtrade.core.errors import DataError, VtradeError

ROOT = Path(__file__).resolve().parent.parent
_LOBSTER = ROOT / "tests" / "fixtures" / "lobster"
_LOBSTER_MSG = "AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz"

#: format -> (shipped file(s), first file is the one opened); LOBSTER's pair is mutated file by file.
FEED_SEEDS: dict[str, tuple[Path, ...]] = {
    "binance-spot": (ROOT / "data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz",),
    "binance-usdm": (ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz",),
    "lobster": (_LOBSTER / _LOBSTER_MSG, _LOBSTER / _LOBSTER_MSG.replace("message", "orderbook")),
    "lean-trade-bars": (ROOT / "data/intraday/lean_minute_trade_bars.csv.gz",),
    "lean-quote-bars": (ROOT / "data/intraday/lean_minute_quote_bars.csv.gz",),
    "taq-quotes": (ROOT / "data/taq/lean_tick_quotes_IBM_BAC.csv.gz",),
    "taq-trades": (ROOT / "data/taq/lean_tick_trades_IBM_BAC.csv.gz",),
    "daily": (ROOT / "data/equities_daily/sp500_2018members_daily_2013_2017.csv.gz",),
}
FORMAT_OF = {"binance-spot": "binance", "binance-usdm": "binance"}

#: Values that break parsers: non-numbers, non-finite, huge, negative, other types, unicode.
NASTY: tuple[str, ...] = (
    "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "-1", "-0", "0", "", " ", "00",
    "99999999999999999999999999999", "18446744073709551616", "9223372036854775808", "-9223372036854775809",
    "0x10", "1_000", ".5", "5.", "1,5", "١٢٣", "𝟙𝟚", "٣.٥", "\u00a0", "é", "\U0001f4a5", "null", "true", "[]", "{}",
    '"NaN"', '"1e400"', '"-5"', '"abc"', '""', '"١٢٣"', "[1]", '[["1","2"]]', "\\", '"', "'",
)  # fmt: skip
_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null')


class Crash(AssertionError):
    """A target broke the contract (a wrong error, or an error that does not say where)."""


class Hang(Crash):
    """A target ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` if the block runs longer than ``seconds`` (main thread, POSIX only)."""
    # Under libFuzzer (atheris) its own -timeout owns SIGALRM and saves the slow input.
    if not hasattr(signal, "setitimer") or os.environ.get("VTRADE_FUZZ_NO_ALARM"):
        yield
        return

    def _hang(*_: object) -> None:
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, _hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def head_lines(path: Path, lines: int) -> bytes:
    """The first ``lines`` lines of a shipped (possibly gzipped) file, decompressed."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = bytearray()
    with opener(path, "rb") as f:
        for _, line in zip(range(lines), f, strict=False):
            out += line
    return bytes(out)


@dataclass
class FeedCase:
    """A feed target: the seed files' text, written under ``dir`` with their shipped names."""

    name: str
    dir: Path
    texts: list[bytes]  # decompressed seed content per file
    names: list[str]

    @classmethod
    def make(cls, name: str, dir: Path, lines: int = 300) -> FeedCase:
        sources = FEED_SEEDS[name]
        # LOBSTER's message and orderbook rows pair up one to one: the same count of each.
        return cls(name, dir, [head_lines(p, lines) for p in sources], [p.name for p in sources])

    @property
    def format(self) -> str:
        return FORMAT_OF.get(self.name, self.name)

    def write(self, texts: Sequence[bytes], raw: dict[int, bytes] | None = None) -> list[Path]:
        """Write ``texts`` (gzipped when the name says so); ``raw[i]`` replaces file i's bytes as stored."""
        self.dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, (text, name) in enumerate(zip(texts, self.names, strict=True)):
            p = self.dir / name
            data = (raw or {}).get(i)
            if data is None:
                data = gzip.compress(text, mtime=0) if name.endswith(".gz") else text
            p.write_bytes(data)
            paths.append(p)
        return paths

    def read(self, paths: Sequence[Path]) -> list[Any] | VtradeError:
        """The feed's events, or the documented error it raised; :class:`Crash` for anything else."""
        from vtrade.market.feeds import open_feed

        try:
            with time_limit(20):
                return list(open_feed(paths[0], self.format))
        except VtradeError as exc:
            check_names_place(exc, paths)
            return exc


def check_names_place(exc: VtradeError, paths: Sequence[Path]) -> None:
    """A feed error must be a DataError naming one of the input files."""
    if not isinstance(exc, DataError):
        raise Crash(f"{type(exc).__name__} is not a DataError: {exc}") from exc
    if exc.path not in {str(p) for p in paths}:
        raise Crash(f"the error names {exc.path!r}, not the input file: {exc}") from exc
    if exc.line is not None and exc.line < 1:
        raise Crash(f"line {exc.line} is not a line number: {exc}") from exc


def mutate_text(text: bytes, rnd: random.Random) -> bytes:
    """One to three text-level corruptions of ``text`` (a file's decompressed content)."""
    for _ in range(rnd.randint(1, 3)):
        text = rnd.choice(_TEXT_MUTATIONS)(text, rnd)
    return text


def mutate_gzip(data: bytes, rnd: random.Random) -> bytes:
    """A corruption of a gzip file as stored: truncated, or a byte flipped."""
    if rnd.random() < 0.5:
        return data[: rnd.randrange(len(data) + 1)]
    i = rnd.randrange(len(data))
    return data[:i] + bytes([data[i] ^ rnd.randrange(1, 256)]) + data[i + 1 :]


def _truncate(text: bytes, rnd: random.Random) -> bytes:
    return text[: rnd.randrange(len(text) + 1)]


def _flip(text: bytes, rnd: random.Random) -> bytes:
    if not text:
        return bytes([rnd.randrange(256)])
    i = rnd.randrange(len(text))
    return text[:i] + bytes([rnd.randrange(256)]) + text[i + 1 :]


def _lines_op(text: bytes, rnd: random.Random) -> bytes:
    lines = text.split(b"\n")
    if len(lines) < 2:
        return text
    i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
    op = rnd.randrange(5)
    if op == 0:
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 1:
        del lines[i]
    elif op == 2:
        lines.insert(j, lines[i])
    elif op == 3:
        lines.insert(i, rnd.choice([b"", b" ", b"\r", "é,𝟙\t".encode(), b"1723161254206652067 {}"]))
    else:
        k = min(len(lines), i + rnd.randint(2, 10))
        block = lines[i:k]
        rnd.shuffle(block)
        lines[i:k] = block
    return b"\n".join(lines)


def _nasty_value(text: bytes, rnd: random.Random) -> bytes:
    tokens = list(_TOKEN.finditer(text, rnd.randrange(len(text) + 1) if text else 0))[:64]
    if not tokens:
        return text
    m = rnd.choice(tokens)
    return text[: m.start()] + rnd.choice(NASTY).encode() + text[m.end() :]


def _field_op(text: bytes, rnd: random.Random) -> bytes:
    """Drop or add a comma-separated field on one line (a row of the wrong width)."""
    lines = text.split(b"\n")
    i = rnd.randrange(len(lines))
    fields = lines[i].split(b",")
    if rnd.random() < 0.5 and len(fields) > 1:
        del fields[rnd.randrange(len(fields))]
    else:
        fields.insert(rnd.randrange(len(fields) + 1), rnd.choice(NASTY).encode())
    lines[i] = b",".join(fields)
    return b"\n".join(lines)


_TEXT_MUTATIONS = (_truncate, _flip, _lines_op, _nasty_value, _nasty_value, _field_op)


def crash_key(exc: BaseException) -> str:
    """``Type at file:line`` of the deepest vtrade frame (else the deepest frame): crashes
    with the same key are one bug."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/vtrade/" in f.filename and "_fuzz.py" not in f.filename]
    last = ours or frames
    where = f"{Path(last[-1].filename).name}:{last[-1].lineno}" if last else "?"
    return f"{type(exc).__name__} at {where}"


# ------------------------------------------------------------------------------------------ orders

#: Values for every order field: good ones, and every kind of wrong one.
ORDER_VALUES: tuple[object, ...] = (
    None, True, 0, 1, -1, 10, 2**63, 10**30, 0.0, 0.1, 1.5, -2.5, float("nan"), float("inf"), -float("inf"), 1e308,
    "1", "10", "0.01", "100.00", "61800.3", "1,000", "-5", "abc", "", " ", *NASTY, "1e999999999", "1e-999999999",
    "sNaN", "-sNaN", "1%", "150%", "nan%", b"10", [1], {"x": 1}, object(),
)  # fmt: skip
SIDES: tuple[object, ...] = ("buy", "SELL", "Buy", "sell ", "b", "", None, 1, "buy\x00", "ᴮᵁʸ")
ORDER_TYPES: tuple[object, ...] = (
    "market", "limit", "stop", "stop-limit", "trailing-stop", "mkt", "LMT", "", None, "limit ", "ordre", 3,
)  # fmt: skip
TIFS: tuple[object, ...] = ("day", "gtc", "ioc", "fok", "gtd", "GTC", "", None, "forever", 7)


def check_order_error(exc: BaseException) -> None:
    """Order input may only fail with a documented error naming the field (or the symbol)."""
    from vtrade.execution.validation import OrderInputError

    if isinstance(exc, OrderInputError):
        if not exc.field or not str(exc):
            raise Crash(f"OrderInputError without field or reason: {exc!r}") from exc
        return
    if isinstance(exc, VtradeError):
        return
    raise exc


def check_submit(kwargs: dict[str, Any]) -> None:
    """``submit_from_user(**kwargs)`` gives an exact order or a documented error naming the field."""
    from vtrade.core.instruments import BINANCE_BTCUSDT_USDM, us_equity
    from vtrade.execution.orders import SubmitOrder
    from vtrade.execution.validation import submit_from_user

    insts = {"BTCUSDT": BINANCE_BTCUSDT_USDM, "SPY": us_equity("SPY")}
    try:
        with time_limit(5):
            order = submit_from_user("acct", "c-1", ts=1_000, instruments=insts, **kwargs)
    except Exception as exc:
        check_order_error(exc)
        return
    if not isinstance(order, SubmitOrder) or not (isinstance(order.quantity, int) and order.quantity > 0):
        raise Crash(f"accepted a bad order: {order!r}")
    for px in (order.limit_price, order.stop_price, order.trail_ticks):
        if px is not None and not (isinstance(px, int) and px > 0):
            raise Crash(f"accepted a bad price: {order!r}")


#: ``vtrade`` options and values tried on the command line (good ones, bad ones, unicode).
CLI_VALUES: dict[str, tuple[str, ...]] = {
    "--format": ("auto", "binance", "lobster", "daily", "taq-quotes", "nope", "", "BINANCE", "é"),
    "--symbol": ("BTCUSDT", "IBM", "SPY", "nope", "", "𝟙"),
    "--levels": ("1", "10", "0", "-3", "1e3", "99999999999999999999", "nan", "x"),
    "--realism": ("bars", "L1", "L2", "l3", "L9", "", "ᴸ2"),
    "--every": ("1s", "100ms", "0s", "-1s", "1e999s", "99999999999999999999999min", "nan s", "٣s", "", "1"),
    "--latency": ("0ms", "1ms", "-1ms", "1e9s", "99999999999999999999999min", "x"),
    "--fees": ("none", "per-share", "maker-taker", "free", ""),
    "--seed": ("0", "-1", "1.5", "99999999999999999999999", "x"),
}


def check_cli(argv: list[str], out: Path) -> int:
    """Run ``vtrade <argv>``: exit 0, or 2 with a message (argparse's usage errors included).

    On an error nothing may be left at ``out`` that was not there, in particular no partial file.
    """
    from vtrade.cli import main

    before = _listing(out.parent)
    try:
        with time_limit(30), contextlib.redirect_stderr(io_err := _Sink()), contextlib.redirect_stdout(_Sink()):
            code = main(argv)
    except SystemExit as exc:  # argparse rejects malformed options by exiting with 2
        code = exc.code if isinstance(exc.code, int) else 2
    if code not in (0, 2):
        raise Crash(f"vtrade {' '.join(argv)} exited {code}")
    if code == 2:
        if not io_err.text.strip():
            raise Crash(f"vtrade {' '.join(argv)} failed without a message")
        if _listing(out.parent) != before:
            raise Crash(f"vtrade {' '.join(argv)} failed but left {sorted(_listing(out.parent) - before)}")
    return code


def _listing(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")} if d.exists() else set()


class _Sink:
    """A text sink for redirected output (keeps what was written)."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
