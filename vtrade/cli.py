"""The ``vtrade`` command line."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from vtrade.core.errors import VtradeError

if TYPE_CHECKING:
    import pandas as pd

    from vtrade.execution.engine import Realism
    from vtrade.execution.fees import FeeModel
    from vtrade.market.feeds import Feed

DATA = Path(__file__).resolve().parent.parent / "data"
DEFAULT_DEMO_FEED = DATA / "crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vtrade", description="High-fidelity paper trading and analytics.")
    sub = parser.add_subparsers(dest="command", required=True)

    book = sub.add_parser("book", help="rebuild a recorded feed's order book and write it to Parquet")
    book.add_argument("file", type=Path, help="feed file (for LOBSTER, the message file)")
    book.add_argument("--format", default="auto", help="auto (default), binance, lobster, taq-quotes, …")
    book.add_argument("--symbol", type=_ticker, help="the ticker to rebuild, for files holding several")
    book.add_argument("--levels", type=int, default=10, help="levels per side to write (default 10)")
    book.add_argument("--out", type=Path, required=True, help="output Parquet file")
    book.add_argument("--quiet", action="store_true", help="no progress bar")
    _grid_args(book)

    sub.add_parser("warmup", help="compile the Numba kernels into the on-disk cache (make does this)")
    demo = sub.add_parser("demo", help="serve the trader dashboard on the demo market (what `make demo` runs)")
    _serving_args(demo)
    demo.add_argument("--terminal", action="store_true",
                      help="instead, replay a recorded feed in the terminal (depth ladder and trades)")  # fmt: skip
    demo.add_argument("--file", type=Path, default=DEFAULT_DEMO_FEED, help="feed for --terminal")
    demo.add_argument("--levels", type=_positive_int, default=10, help="depth levels shown with --terminal")

    serve = sub.add_parser("serve", help="serve the trader dashboard on a live simulated market")
    _serving_args(serve)

    replay = sub.add_parser(
        "replay",
        help="replay a recorded feed through the execution engine with a strategy; write orders, fills, book",
        description="Replay FILE through the execution engine, calling the strategy every --every of simulated\n"
        "time, and write orders.parquet, fills.parquet and book.parquet into --out.",
        epilog="example:\n  vtrade replay data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz \\\n"
        "    --strategy examples/strategies.py:market_maker --realism L2 --every 100ms --latency 1ms --out /tmp/mm",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("file", type=Path, help="recorded feed (any format `vtrade book` reads)")
    replay.add_argument(
        "--strategy", required=True, metavar="MODULE:FUNCTION",
        help="the strategy: a module path (pkg.mod:func) or a file (path/to/file.py:func)",
    )  # fmt: skip
    replay.add_argument("--realism", default="L2", help="bars, L1, L2 (default) or L3")
    replay.add_argument("--out", type=Path, required=True, help="output directory (written atomically)")
    replay.add_argument("--every", default="1s", help="how often the strategy runs, in simulated time (default 1s)")
    replay.add_argument("--latency", default="0ms", help="order entry, response and feed latency (default 0ms)")
    replay.add_argument("--symbol", type=_ticker, help="the ticker to replay, for files holding several")
    replay.add_argument("--format", default="auto", help="auto (default), binance, lobster, lean-trade-bars, …")
    replay.add_argument("--seed", type=int, default=0, help="session seed of the stochastic models (default 0)")
    replay.add_argument("--fees", default="none", help="none (default), per-share or maker-taker")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument("--corporate-actions", default="auto", metavar="FILE|auto|none",
                        help="Lean factor file whose splits and dividends adjust raw data; auto (default): the "
                             "project's factor file for raw Lean data; none: apply nothing")  # fmt: skip
    _grid_args(replay)
    _worker_args(sub)
    up = sub.add_parser(
        "up",
        help="start a scaled-out market on a Redis or Kafka log: execution workers and the server, as processes",
        description="Start the market's roles as separate local processes on one log, supervise them (a role\n"
        "that dies is restarted) and stop them together on Ctrl-C or SIGTERM. Every line a role\n"
        "prints is shown prefixed with its name. Each run gets a fresh namespace on the bus unless\n"
        "the URL names one (?namespace=...). With --ui-processes N, N servers share the market on\n"
        "ports --port, --port+1, ...: any of them serves any account (one paces the market, the\n"
        "others replicate it from the log); put a load balancer in front of them.",
        epilog="examples:\n"
        "  vtrade up --bus redis://localhost:6379/0 --market synthetic\n"
        "  vtrade up --bus redis://localhost:6379/0 --ui-processes 2\n"
        "  vtrade up --bus kafka://localhost:9092 --execution-workers 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _serving_args(up)
    up.add_argument("--execution-workers", type=_positive_int, default=2, metavar="N",
                    help="execution workers sharing the exchanges (default 2)")  # fmt: skip
    up.add_argument("--ui-processes", type=_positive_int, default=1, metavar="N",
                    help="servers sharing the market and its accounts, on ports --port to --port+N-1 (default 1)")
    _status_args(sub)

    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    flags = _flag_spelling(sub.choices[args.command])
    try:
        if args.command == "book":
            return _book(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "warmup":
            from vtrade.runtime.warmup import warm_up

            print(f"vtrade: compiled kernels are cached ({warm_up():.1f}s)")
            return 0
        if args.command == "replay":
            return _replay(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "up":
            return _up(args)
        if args.command == "status":
            return _status(args)
    except VtradeError as exc:
        print(f"vtrade {args.command}: error: {exc.render(flags)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _grid_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tick-size", type=_positive_decimal, metavar="D",
                   help="price increment to read the file on (default: built-in, inferred from the file, or the "
                        "format's; e.g. 0.0001 for sub-penny US prints)")
    p.add_argument("--lot-size", type=_positive_decimal, metavar="D", help="size increment (default as --tick-size)")
    p.add_argument("--contract-size", type=_positive_decimal, metavar="D",
                   help="quote-currency value of one contract (COIN-M inverse; default Binance's: 100 USD for "
                        "BTCUSD, 10 USD otherwise)")  # fmt: skip


def _ticker(text: str) -> str:
    """argparse type of ``--symbol``: printable, no spaces (what a ticker in any feed can be)."""
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not a ticker: {text!r} (printable characters, no spaces)")
    return text


def _argument_type(
    parse: Callable[[str], Any], kind: str, ok: Callable[[Any], bool], rule: str
) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text (a usage error saying it is not ``kind`` if it fails),
    then a usage error ``rule`` unless ``ok(value)``. One shape for every numeric flag."""

    def check(text: str) -> Any:
        try:
            value = parse(text)
        except (ValueError, ArithmeticError):  # Decimal's InvalidOperation is an ArithmeticError
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
        return value

    return check


#: ``--speed`` is checked here so that the terminal demo, which never builds a LiveConfig,
#: refuses -1 or nan with a usage error, not a traceback.
_speed = _argument_type(
    float, "a number", lambda v: math.isfinite(v) and v >= 0, "must be a finite number >= 0 (0 = max)"
)
#: The terminal demo's ``--levels``.
_positive_int = _argument_type(int, "an integer", lambda v: v >= 1, "must be at least 1")
#: The grid flags: exact decimals, never floats.
_positive_decimal = _argument_type(Decimal, "a number", lambda v: v.is_finite() and v > 0, "must be a positive number")


def _open(args: argparse.Namespace) -> Feed:
    """The feed of ``args.file`` on the grid the flags ask for (see :func:`_announce`)."""
    from vtrade.market.feeds import open_feed

    return open_feed(args.file, args.format, symbol=args.symbol, tick_size=args.tick_size, lot_size=args.lot_size,
                     contract_size=args.contract_size)  # fmt: skip


def _announce(args: argparse.Namespace, feed: Feed) -> None:
    """Say on stderr, before the long work, which grid the file is read on and where it came from."""
    print(f"vtrade {args.command}: {feed.describe()}", file=sys.stderr, flush=True)


def _flag_spelling(command: argparse.ArgumentParser) -> Callable[[str], str | None]:
    """How ``command`` spells a Python parameter named in an error's fix (``format`` -> ``--format``);
    None for one it has no option for, which the error then names the Python way."""
    flags = {a.dest: max(a.option_strings, key=len) for a in command._actions if a.option_strings}
    return flags.get


def _book(args: argparse.Namespace) -> int:
    from vtrade.market.export import MAX_LEVELS
    from vtrade.runtime.bookfile import write_book

    if not 1 <= args.levels <= MAX_LEVELS:
        print(f"vtrade book: error: --levels must be 1 to {MAX_LEVELS}, got {args.levels}", file=sys.stderr)
        return 2
    feed = _open(args)
    _announce(args, feed)
    res = write_book(feed, args.out, levels=args.levels, progress=not args.quiet)
    print(f"{res.rows:,} book updates ({res.format}) -> {res.out} in {res.seconds:.2f}s")
    return 0


_show_warning = warnings.showwarning


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    """vtrade's own notices (e.g. a LOBSTER file read without its orderbook) as one stderr line."""
    if category.__module__.startswith("vtrade"):
        print(f"vtrade: note: {message}", file=sys.stderr)
    else:
        _show_warning(message, category, *args, **kw)


def _market_args(p: argparse.ArgumentParser, *, binance: bool = False) -> None:
    """The flags that say which market runs: ``vtrade serve`` and the execution workers of a
    scaled-out market take the same ones, so the workers run that market's exchanges.
    ``binance``: also the live Binance market and its flags (served in one process only)."""
    p.add_argument("--seed", type=int, default=7, help="seed of the simulated market and its traders")
    # The names vtrade.execution.queue.queue_model accepts (not imported here: it loads Numba,
    # and `vtrade --help` should stay instant; a test checks the two lists agree).
    p.add_argument("--queue", default="risk_averse", choices=("risk_averse", "prob"), help="queue model")
    p.add_argument("--market", default="demo", choices=("demo", "synthetic", *(("binance-live",) if binance else ())),
                   help="demo: the 500-stock universe, the Binance capture and a synthetic stock (default); "
                        "synthetic: four stocks on synthetic order flow only (starts in seconds)"
                        + ("; binance-live: --symbols on Binance's live market data (needs the internet)"
                           if binance else ""))  # fmt: skip
    if binance:
        p.add_argument("--symbols", default="BTCUSDT", help="binance-live: comma-separated symbols (default BTCUSDT)")
        p.add_argument("--binance-market", default="spot", choices=("spot", "usdm", "coinm"),
                       help="binance-live: spot (default), usdm (USD-M futures) or coinm (COIN-M futures)")  # fmt: skip
        p.add_argument("--binance-url", metavar="WS,REST",
                       help="binance-live: the websocket and REST base URLs (default: Binance's own), "
                            "e.g. a local exchange's ws://127.0.0.1:PORT,http://127.0.0.1:PORT")  # fmt: skip


def _live_config(args: argparse.Namespace, speed: float = 0.0) -> Any:
    """The :class:`LiveConfig` of :func:`_market_args`'s flags (UsageError if they do not make one)."""
    from vtrade.runtime.live import LiveConfig

    try:
        options = {"speed": speed, "seed": args.seed, "queue": args.queue}
        if args.market == "binance-live":
            return _binance_config(args, options)
        return LiveConfig.demo(**options) if args.market == "demo" else LiveConfig(**options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _serving_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=5006, help="HTTP port (default 5006)")
    p.add_argument("--address", default="localhost", help="address to listen on (default localhost)")
    p.add_argument("--speed", type=_speed, default=20.0, help="simulated seconds per wall second (0 = max)")
    _market_args(p, binance=True)
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--bus", metavar="URL",
                   help="run the market on this log (redis://host:port/db or kafka://host:port, with "
                        "?namespace=name) with its exchanges in `vtrade worker execution` processes "
                        "(see `vtrade up`); default: one process, an embedded log")  # fmt: skip
    p.add_argument("--join", action="store_true",
                   help="with --bus: serve a market another process paces (`vtrade worker market`), waiting for it "
                        "to open the log, instead of pacing it if this server is the first")  # fmt: skip
    p.add_argument("--no-classes", action="store_true",
                   help="serve /trader and /admin only: another server on the same data dir serves the classes")
    p.add_argument("--leaderboards", metavar="URL",
                   help="keep the classes' leaderboards in Redis Sorted Sets at URL (redis://host:port/db); "
                        "default: in this process, rebuilt from the data dir at start")  # fmt: skip
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--data-dir", type=Path, metavar="DIR",
                      help="where accounts, orders, fills and NAV history are kept across restarts (default: "
                           "$VTRADE_STATE_DIR, else $XDG_DATA_HOME/vtrade, else ~/.local/share/vtrade)")  # fmt: skip
    keep.add_argument("--ephemeral", action="store_true",
                      help="keep nothing: every page load is a new account, gone when the server stops")  # fmt: skip


def _demo(args: argparse.Namespace) -> int:
    if args.terminal:
        from vtrade.ui.terminal import run_demo

        run_demo(args.file, speed=args.speed, levels=args.levels)
        return 0
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from vtrade.runtime.classroom import Classroom
    from vtrade.runtime.live import reset_shared_market
    from vtrade.ui.serve import serve_trader

    if not 0 < args.port < 65536:
        print(f"vtrade {args.command}: error: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return 2
    config = _live_config(args, args.speed)
    if args.join and not args.bus:
        raise UsageError("--join: give the --bus of the market to join")
    if args.bus and args.market == "binance-live":
        raise UsageError("--bus: the live Binance market runs in one process; leave --bus out")
    bus = _market_bus(args.bus) if args.bus else None
    data_dir = _data_dir(args)
    market_dir = data_dir
    if args.market == "binance-live":
        market_dir = None  # what the exchange sent cannot be replayed: the market starts afresh each time
        print("vtrade: binance-live: accounts and orders on the live market end with the server", flush=True)
    try:
        boards = _leaderboards(args.leaderboards)
    except ValueError as exc:
        print(f"vtrade {args.command}: error: --leaderboards: {exc}", file=sys.stderr)
        return 2
    # The first line says where the data lives: what a teacher needs to back up, move or wipe.
    if data_dir is None:
        print("vtrade: ephemeral: nothing is kept (accounts, orders and fills end with the server)", flush=True)
    else:
        print(f"vtrade: data in {data_dir} (kept across restarts)", flush=True)
    print(f"vtrade: starting the {args.market} market…", flush=True)
    # SIGTERM (systemd, docker stop, a test) stops like Ctrl-C: the server's loop ends and the
    # market is stopped in order, so a durable market closes its files instead of being cut off.
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    market = None
    if bus is not None:
        market = _shared_market(config, bus, _public_url(args.bus), join=args.join)
    # Classes are served alongside /trader (/join, /student, /teacher, /projector), kept in the
    # same data dir; each class's market starts only when its teacher starts trading. Their log
    # is the data dir's, not the bus: on a shared market the server that paces it serves them.
    room = None
    if args.no_classes:
        print("vtrade: classes are served by another server", flush=True)
    else:
        room = Classroom(data_dir, boards=boards)
    try:
        serve_trader(port=args.port, address=args.address, config=config, market=market, show=args.show,
                     data_dir=market_dir, classroom=room)  # fmt: skip
    finally:
        if room is not None:
            room.close()
        if market is not None:
            market.close()
        reset_shared_market()
    return 0


def _up(args: argparse.Namespace) -> int:
    from vtrade.runtime.supervisor import Role, Supervisor
    from vtrade.runtime.workers import stop_on_sigterm

    if not args.bus:
        raise UsageError("--bus: give the log the processes share (redis://host:port/db or kafka://host:port); "
                         "for one process, use `vtrade serve`")  # fmt: skip
    if args.market == "binance-live":
        raise UsageError("--market binance-live runs in one process: use `vtrade serve --market binance-live`")
    if args.join or args.no_classes:
        raise UsageError("--join, --no-classes: `vtrade up` starts a market of its own and serves its classes; "
                         "to serve a running one: vtrade serve --bus URL --join")  # fmt: skip
    url = _fresh_namespace(args.bus)
    _market_bus(url, fresh=True).close()  # reachable and free, before anything starts
    _live_config(args)
    data_dir = _data_dir(args)
    root = Path(tempfile.mkdtemp(prefix="vtrade-up-")) if data_dir is None else data_dir / "scale-out"
    market = ["--market", args.market, "--seed", str(args.seed), "--queue", args.queue]
    me = [sys.executable, "-m", "vtrade.cli"]
    roles = [
        Role(f"execution-{i}", [*me, "worker", "execution", "--bus", url, *market,
                                "--data-dir", str(root / _namespace(url) / f"execution-{i}")])
        for i in range(1, args.execution_workers + 1)
    ]  # fmt: skip
    # The market's clock, venues and broker in a process of their own; every server joins it.
    # (Roles stop in reverse: the servers, then the market, then the exchanges it waits for.)
    roles.append(Role("market", [*me, "worker", "market", "--bus", url, *market, "--speed", str(args.speed)]))
    keep = ["--ephemeral"] if data_dir is None else ["--data-dir", str(data_dir)]
    if args.port + args.ui_processes - 1 > 65535:
        raise UsageError(f"--ui-processes: {args.ui_processes} servers from port {args.port} go past 65535")
    for i in range(args.ui_processes):
        # The first server serves the classes too (their log is the data dir's, not the bus).
        serve = [*me, "serve", "--bus", url, "--join", *market, "--port", str(args.port + i), "--address",
                 args.address, *keep, *(["--no-classes"] if i else ["--show"] if args.show else [])]  # fmt: skip
        if args.leaderboards:
            serve += ["--leaderboards", args.leaderboards]
        roles.append(Role("serve" if args.ui_processes == 1 else f"serve-{i + 1}", serve))
    print(f"vtrade up: the log is {url}", flush=True)
    supervisor = Supervisor(roles)
    stop = stop_on_sigterm()
    supervisor.start()
    return supervisor.run(stop)


def _namespace(url: str) -> str:
    from urllib.parse import parse_qsl, urlsplit

    names = [v for k, v in parse_qsl(urlsplit(url).query) if k == "namespace"]
    return names[-1] if names else "vt"


def _fresh_namespace(url: str) -> str:
    """``url`` with a namespace of its own for this run, unless it names one."""
    from urllib.parse import parse_qsl, urlsplit

    if any(k == "namespace" for k, _ in parse_qsl(urlsplit(url).query)):
        return url
    fresh = time.strftime("up-%Y%m%d-%H%M%S", time.gmtime())
    return f"{url}{'&' if urlsplit(url).query else '?'}namespace={fresh}"


def _market_bus(url: str, *, fresh: bool = False) -> Any:
    """The bus a scaled-out market runs on: reachable, and holding no market but a shared one
    (``fresh``: none at all). A market cannot resume from a bus yet, and a fresh one on an old
    log would mix the two."""
    from vtrade.runtime.bus import BusError, open_bus
    from vtrade.runtime.execution_worker import INPUT_TOPIC
    from vtrade.runtime.live_log import ENTRIES

    if url.startswith("memory:"):
        raise UsageError("--bus memory:// is this process only: leave --bus out for the embedded log")
    try:
        bus = open_bus(url)
        topics = bus.topics()
        held = {t: sum(bus.end_offsets(t)) for t in (ENTRIES, INPUT_TOPIC) if t in topics}
    except (BusError, ValueError, OSError) as exc:
        raise UsageError(f"--bus: {exc}") from None
    # A shared market (one whose server others may join) has its entries on orders; a log with
    # exchange input and no entries is another kind of market.
    taken = sum(held.values()) if fresh else 0 if held.get(ENTRIES) else held.get(INPUT_TOPIC, 0)
    if taken:
        bus.close()
        records = f"{taken} record{'s' * (taken != 1)}"
        raise UsageError(f"--bus: the log at {_public_url(url)} already holds a market ({records}); "
                         "a market cannot resume from a bus yet: give a new ?namespace=name")  # fmt: skip
    return bus


def _shared_market(config: Any, bus: Any, where: str, *, join: bool = False, who: str = "server") -> Any:
    """The market of ``vtrade serve --bus`` and ``vtrade worker market``: the first process on the
    log paces it (its exchanges in `vtrade worker execution` processes); every later one runs a
    replica of it (a server serves the same accounts; a market worker stands by) and takes the
    pacing over if the pacer goes (:func:`vtrade.runtime.live_log.claim_pace`). ``join``: never
    the first, wait for another to open the log."""
    from vtrade.runtime.live import LiveMarket, market_fingerprint
    from vtrade.runtime.live_log import ExecutionUnavailable, MarketMismatch, claim_pace, pacer_running

    try:
        pacer = claim_pace(bus, market_fingerprint(config), claim=not join, wait_s=120.0 if join else 30.0)
    except (MarketMismatch, ExecutionUnavailable) as exc:
        bus.close()
        raise UsageError(f"--bus: {exc}") from None
    if pacer:
        print(f"vtrade: this {who} paces the market on {where}; its exchanges run in `vtrade worker execution` "
              "processes there, and servers may join it with the same flags", flush=True)  # fmt: skip
        return LiveMarket(config, bus=bus, execution="remote", role="pacer").start()
    orphan = not pacer_running(bus)
    t0 = time.monotonic()
    market = LiveMarket(config, bus=bus, role="replica")
    folded = market.catch_up()
    took = f"{folded} entries folded in {time.monotonic() - t0:.1f}s"
    if orphan:  # its pacer stopped: this process goes on from where the log ends
        market.take_over()
        print(f"vtrade: the market on {where} had nothing pacing it; this {who} resumed it from its log ({took}) "
              "and paces it now, its exchanges in this process", flush=True)  # fmt: skip
    else:
        role = "accounts are shared" if who == "server" else "this one stands by to take over if it stops"
        print(f"vtrade: joined the market on {where} (another process paces it; {role}): {took}", flush=True)
    return market.start()


def _binance_config(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The live Binance market's configuration: ``--symbols`` at the exchange's pace (speed 1),
    no simulated participants (the book is the exchange's). ValueError for bad flags."""
    from vtrade.runtime.live import LiveConfig

    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if not symbols or not all(s.replace("_", "").isalnum() for s in symbols):
        raise ValueError(f"--symbols: expected symbols such as BTCUSDT,ETHUSDT, got {args.symbols!r}")
    urls = None
    if args.binance_url:
        parts = [u.strip() for u in args.binance_url.split(",")]
        if len(parts) != 2 or not parts[0].startswith(("ws://", "wss://")) or not parts[1].startswith("http"):
            raise ValueError(f"--binance-url: expected WS,REST (ws://...,http://...), got {args.binance_url!r}")
        urls = (parts[0], parts[1])
    return LiveConfig(**(options | {"speed": 1.0}), symbols=(), binance=symbols, binance_market=args.binance_market,
                      binance_urls=urls, bots=False)  # fmt: skip


def _leaderboards(url: str | None) -> Any:
    """Redis leaderboards at ``url`` (checked: the server answers), or None for the embedded ones."""
    if url is None:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"expected a redis:// URL, got {url!r}")
    import redis

    from vtrade.runtime.leaderboard_redis import RedisLeaderboards

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise ValueError(f"cannot reach Redis at {url}: {exc}") from None
    return RedisLeaderboards(client)


def _data_dir(args: argparse.Namespace) -> Path | None:
    """The checked (and created) data directory the flags ask for; None for ``--ephemeral``.
    :class:`UsageError` naming ``--data-dir`` when it cannot be used (then nothing was changed)."""
    from vtrade.runtime.datadir import DataDirError, default_data_dir, prepare_data_dir, server_secret

    if args.ephemeral:
        return None
    asked = args.data_dir if args.data_dir is not None else default_data_dir()
    try:
        folder = prepare_data_dir(asked)
        server_secret(folder)  # an unreadable or damaged secret is a start-up error, not a page error
    except DataDirError as exc:
        hint = "" if args.data_dir is not None else " (the default; choose one with --data-dir DIR or use --ephemeral)"
        raise UsageError(f"--data-dir: {exc}{hint}") from None
    return folder


# ---------------------------------------------------------------------------------------------- worker


def _symbols(text: str) -> list[str]:
    """``--symbols``/``--accounts``: a comma-separated list of names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name (comma-separated)")
    return names


def _worker_args(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run one market, execution or portfolio worker against a bus (SIGTERM stops it)",
        description="Run one worker of the event log. An execution or portfolio worker resumes from the latest\n"
        "snapshot under --data-dir, then folds records until SIGTERM or Ctrl-C, when it checkpoints and\n"
        "leaves its group. A market worker runs the market's clock, venues and broker without a web\n"
        "server (`vtrade serve --bus URL --join` serves it); a second one stands by and takes over if\n"
        "the first stops.\n"
        "An execution worker runs the exchanges of the market `vtrade serve` names with the same\n"
        "--market, --seed and --queue; with --symbols instead, every symbol is a US equity traded\n"
        "with the default engine settings (L2, no fees). Start as many execution workers as you\n"
        "like: the group shares the partitions out, and moves them when one joins or leaves.",
        epilog="examples:\n"
        "  vtrade worker market --bus redis://localhost:6379/0 --market synthetic --speed 20\n"
        "  vtrade worker execution --bus redis://localhost:6379/0 --market synthetic --data-dir /var/vtrade/w1\n"
        "  vtrade worker execution --bus kafka://localhost:9092 --symbols SPY,QQQ --data-dir /var/vtrade/w2\n"
        "  vtrade worker portfolio --bus redis://localhost:6379/0 --symbols SPY,QQQ --accounts ada,bob \\\n"
        "    --cash 100000 --data-dir /var/vtrade/p1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("kind", choices=("market", "execution", "exec", "portfolio"),
                        help="which worker (exec = execution)")  # fmt: skip
    worker.add_argument("--bus", required=True,
                        help="redis://host:port/db or kafka://host:port (?namespace=x), or memory://")  # fmt: skip
    worker.add_argument("--journal", type=Path, help="with --bus memory://: the DuckDB file holding the log")
    worker.add_argument("--data-dir", type=Path,
                        help="execution, portfolio (required): where the worker keeps its snapshots")  # fmt: skip
    worker.add_argument("--speed", type=_speed, default=20.0,
                        help="market: simulated seconds per wall second (0 = max; default 20)")  # fmt: skip
    worker.add_argument("--symbols", type=_symbols,
                        help="comma-separated tickers, e.g. SPY,QQQ (portfolio: required; execution: instead of "
                             "the market flags)")  # fmt: skip
    _market_args(worker)
    worker.add_argument("--accounts", type=_symbols, help="portfolio: comma-separated accounts to open")
    worker.add_argument("--cash", default="100000", help="portfolio: opening cash of each account (default 100000)")
    worker.add_argument("--member", default="0", help="portfolio: member name within the group (default 0)")
    worker.add_argument("--snapshot-every", type=_positive_int, default=1000,
                        help="records between snapshots (default 1000)")  # fmt: skip
    worker.add_argument("--session-timeout", type=float, default=10.0,
                        help="seconds of silence before the group presumes a worker dead (default 10)")  # fmt: skip
    worker.add_argument("--progress", action="store_true", help="print '<kind> progress N' after each batch")


def _worker(args: argparse.Namespace) -> int:
    from vtrade.runtime.bus import open_bus
    from vtrade.runtime.workers import run_exec_worker, run_portfolio_worker, stop_on_sigterm

    if args.kind == "market":
        return _market_worker(args)
    if args.kind == "portfolio" and not (args.accounts and args.symbols):
        print("vtrade worker: error: the portfolio worker needs --symbols and --accounts", file=sys.stderr)
        return 2
    if args.data_dir is None:
        print(f"vtrade worker: error: the {args.kind} worker needs --data-dir (where it keeps its snapshots)",
              file=sys.stderr)  # fmt: skip
        return 2
    if not args.session_timeout > 0:
        print("vtrade worker: error: --session-timeout must be positive", file=sys.stderr)
        return 2
    if args.data_dir.exists() and not args.data_dir.is_dir():
        print(f"vtrade worker: error: --data-dir {str(args.data_dir)!r} is a file, not a directory", file=sys.stderr)
        return 2
    try:
        bus = open_bus(args.bus, journal=args.journal)
    except (ValueError, OSError) as exc:
        print(f"vtrade worker: error: {exc}", file=sys.stderr)
        return 2
    try:
        exchanges = _exchanges(args) if args.kind != "portfolio" else None
    except BaseException:
        bus.close()
        raise
    stop = stop_on_sigterm()  # only once the input is known good: the handlers outlive a failed start
    progress = sys.stdout if args.progress else None
    every, timeout = args.snapshot_every, args.session_timeout
    stats: object
    try:
        if exchanges is not None:
            stats = run_exec_worker(bus, args.data_dir, exchanges, stop=stop, snapshot_every=every,
                                    session_timeout_s=timeout, progress=progress)  # fmt: skip
        else:
            stats = run_portfolio_worker(bus, args.data_dir, args.symbols, args.accounts, cash=args.cash, stop=stop,
                                         member=args.member, snapshot_every=every, session_timeout_s=timeout,
                                         progress=progress)  # fmt: skip
    except ValueError as exc:
        print(f"vtrade worker: error: {exc}", file=sys.stderr)
        return 2
    finally:
        bus.close()
    print(f"vtrade worker {args.kind}: stopped cleanly ({stats})", flush=True)
    return 0


def _market_worker(args: argparse.Namespace) -> int:
    """``vtrade worker market``: the market of the flags on the bus, paced here (or standing by
    to take over), with no web server; until SIGTERM or Ctrl-C."""
    from vtrade.runtime.workers import stop_on_sigterm

    if args.symbols or args.data_dir is not None:
        raise UsageError("the market worker takes the market flags (--market, --seed, --queue, --speed), "
                         "not --symbols or --data-dir: a market on a bus keeps its state on the bus")  # fmt: skip
    config = _live_config(args, args.speed)
    bus = _market_bus(args.bus)
    # Before the start, which may fold a long log: a stop asked meanwhile ends it cleanly after.
    stop = stop_on_sigterm()
    market = _shared_market(config, bus, _public_url(args.bus), who="market worker")
    try:
        while not stop.wait(10.0 if args.progress else 3600.0):
            clock = market.clock()
            print(f"market {market.role} at {clock['ts']:%Y-%m-%d %H:%M:%S} UTC", flush=True)
    finally:
        market.close()
    print(f"vtrade worker market: stopped cleanly ({market.role} at {market.clock()['ts']:%Y-%m-%d %H:%M:%S} UTC)",
          flush=True)  # fmt: skip
    return 0


def _exchanges(args: argparse.Namespace) -> Any:
    """What an execution worker runs: ``--symbols`` as default US-equity exchanges, else the
    exchanges of the market the flags name (what `vtrade serve` with the same flags trades)."""
    if args.symbols:
        return args.symbols
    from vtrade.runtime.live import engine_configs_of

    return engine_configs_of(_live_config(args))


# ---------------------------------------------------------------------------------------------- status


def _status_args(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="show the workers on a bus: lag per partition, throughput, last snapshot, stale workers",
        description="Read the workers' heartbeats from the bus's status topic and the groups' committed\n"
        "offsets (without joining any group), and print one table of workers and one of partitions.\n"
        "A worker is stale after three heartbeat intervals (2 s each) without a heartbeat.",
        epilog="examples:\n  vtrade status --bus redis://localhost:6379/0\n"
        "  vtrade status --bus kafka://localhost:9092 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--bus", required=True, help="bus URL: redis://host:port/db[?namespace=x] or kafka://host:port")
    status.add_argument("--json", action="store_true", help="print the table as one JSON object")


def _status(args: argparse.Namespace) -> int:
    from vtrade.runtime.bus import open_bus
    from vtrade.runtime.status import StatusReader

    def fail(message: str) -> int:
        print(f"vtrade status: error: {message}", file=sys.stderr)
        return 2

    if args.bus.lower().startswith("memory:"):
        # A memory bus lives inside one process: a new one here would be empty.
        return fail("a memory:// bus lives inside its process; give the redis:// or kafka:// URL the workers "
                    "use (an embedded market's status is on its server's /admin page)")  # fmt: skip
    errors = _bus_errors()
    # librdkafka writes each failed connection attempt to stderr; the one line below says it all.
    quiet = {"log_level": 2} if args.bus.lower().startswith("kafka:") else None
    try:
        bus = open_bus(args.bus, kafka_config=quiet)
    except errors as exc:
        return fail(_one_line(exc))
    try:
        table = StatusReader(bus).table()
    except errors as exc:
        return fail(f"cannot read the status from {_public_url(args.bus)}: {_one_line(exc)}")
    finally:
        bus.close()
    if args.json:
        print(table.to_json().decode())
    else:
        from vtrade.ops.status import render_text

        print(render_text(table, title=_public_url(args.bus)))
    return 0


def _bus_errors() -> tuple[type[BaseException], ...]:
    """What reaching a bus may raise: vtrade's errors, bad URLs, sockets, and the clients' own."""
    errors: list[type[BaseException]] = [VtradeError, ValueError, OSError]
    for module, name in (("redis", "RedisError"), ("confluent_kafka", "KafkaException")):
        with contextlib.suppress(ImportError):  # an optional client that is not installed raises nothing
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _public_url(url: str) -> str:
    """``url`` without a password (it is printed)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------------------------------------- replay

_OUTPUTS = ("orders.parquet", "fills.parquet", "book.parquet")


class UsageError(VtradeError):
    """Bad command-line input; the message names the option and what was wrong with it."""


def fee_model(name: str) -> FeeModel:
    """The fee model ``--fees name`` stands for (UsageError for an unknown name): the named
    schedules of :data:`vtrade.execution.fees.FEE_PRESETS`, one list for the CLI and classes.

    >>> fee_model("maker-taker")
    MakerTaker(maker_bps=2, taker_bps=5)
    """
    from vtrade.execution.fees import FEE_PRESETS, fee_preset

    if name not in FEE_PRESETS:
        raise UsageError(f"--fees: unknown fee model {name!r} (choose from {', '.join(FEE_PRESETS)})")
    return fee_preset(name)


def load_strategy(spec: str) -> Callable[..., Any]:
    """The callable ``spec`` names: ``package.module:function`` or ``path/to/file.py:function``.

    A module path is looked up from the current directory first (as ``python -m`` does).

    >>> load_strategy("examples/strategies.py:market_maker").__name__
    'market_maker'
    >>> load_strategy("examples/strategies.py:nope")
    Traceback (most recent call last):
    ...
    vtrade.cli.UsageError: --strategy: examples/strategies.py has no function 'nope' (it has: buy_and_hold, ...)
    """
    source, sep, name = spec.rpartition(":")
    if not sep or not source or not name.isidentifier():
        raise UsageError(f"--strategy: expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got {spec!r}")
    is_file = source.endswith(".py") or "/" in source or os.sep in source
    module = _module_from_file(Path(source)) if is_file else _module_from_path(source)
    fn = getattr(module, name, None)
    if fn is None:
        # What the module offers: its __all__, else the public functions defined in it.
        defined = sorted(getattr(module, "__all__", None) or (
            k for k, v in vars(module).items()
            if callable(v) and not k.startswith("_") and getattr(v, "__module__", None) == module.__name__
        ))  # fmt: skip
        raise UsageError(f"--strategy: {source} has no function {name!r} (it has: {', '.join(defined) or 'none'})")
    if not callable(fn):
        raise UsageError(f"--strategy: {source}:{name} is a {type(fn).__name__}, not a function")
    return fn


def _module_from_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise UsageError(f"--strategy: no such file: {path}")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"vtrade_strategy_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--strategy: cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickle look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UsageError(f"--strategy: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _module_from_path(dotted: str) -> ModuleType:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (dotted == exc.name or dotted.startswith(exc.name + ".")):
            raise UsageError(f"--strategy: unknown strategy module {dotted!r} (no module named {exc.name!r})") from exc
        raise UsageError(f"--strategy: importing {dotted} failed: {exc}") from exc
    except Exception as exc:
        raise UsageError(f"--strategy: importing {dotted} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(cwd)


def _realism(value: str) -> Realism:
    from vtrade.execution.engine import Realism

    for r in Realism:
        if r.value.lower() == value.lower():
            return r
    raise UsageError(f"--realism: unknown realism {value!r} (choose from {', '.join(r.value for r in Realism)})")


_MAX_DURATION_NS = 365 * 86_400 * 10**9


def _duration(option: str, value: str, *, positive: bool) -> int:
    from vtrade.runtime.replay import parse_duration

    try:
        ns = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if positive and ns <= 0:
        raise UsageError(f"{option}: must be a positive duration, got {value!r}")
    if ns > _MAX_DURATION_NS:  # simulated time is int64 ns: far-future stamps overflow it (year 2262)
        raise UsageError(f"{option}: must be at most 365 days, got {value!r}")
    return ns


def _check_realism_fits(realism: Realism, book_kind: str, path: Path) -> None:
    """A realism the feed cannot drive would replay without a single fill: refuse it up front."""
    name = path.name
    if realism.value == "bars" and book_kind not in ("bars", "trades"):
        raise UsageError(f"--realism bars needs bars or trade prints; {name} is a {book_kind} feed "
                         "(try --realism L2 or L1)")  # fmt: skip
    if realism.value != "bars" and book_kind in ("bars", "trades"):
        raise UsageError(f"--realism {realism.value} needs quotes or depth; {name} is a {book_kind} feed "
                         "(use --realism bars)")  # fmt: skip
    if realism.value == "L3" and book_kind != "L3":
        raise UsageError(f"--realism L3 needs order-by-order data (e.g. LOBSTER); {name} is a {book_kind} feed")


def _replay(args: argparse.Namespace) -> int:
    from vtrade.runtime.replay import RawDataWarning, replay

    warnings.filterwarnings("ignore", category=RawDataWarning)  # printed below, once

    started = time.perf_counter()
    realism = _realism(args.realism)
    every = _duration("--every", args.every, positive=True)
    latency = _duration("--latency", args.latency, positive=False)
    fees = fee_model(args.fees)
    if args.seed < 0:
        raise UsageError(f"--seed: must be 0 or more, got {args.seed}")
    if not args.file.exists():
        raise UsageError(f"no such file: {args.file}")
    if args.file.is_dir():
        raise UsageError(f"{args.file} is a directory, not a feed file")
    _check_out_dir(args.out)
    strategy = load_strategy(args.strategy)
    actions = _corporate_actions_arg(args.corporate_actions)
    feed = _open(args)
    _check_realism_fits(realism, feed.book_kind, args.file)
    _announce(args, feed)
    result = replay(
        feed, strategy=strategy, every=every, realism=realism, latency=latency, fees=fees, seed=args.seed,
        progress=not args.quiet, corporate_actions=actions,
    )  # fmt: skip
    frames = {"orders.parquet": result.orders, "fills.parquet": result.fills, "book.parquet": result.book}
    _write_atomically(args.out, frames)
    inst = result.instrument
    print(f"{inst.symbol} {realism.value} replay: {result.inputs:,} inputs, "
          f"{_summary_text(result.summary(), inst.currency, places=8 if inst.inverse else 2)}")  # fmt: skip
    if (note := result.corporate_actions_note()) is not None:
        print(note, file=sys.stderr if result.warnings else sys.stdout)
    if result.path == "compiled":
        print("ran in the compiled loop (strategy, orders and books compiled together)")
    elif result.path_note is not None:
        print(f"the compiled strategy ran on the Python engine: {result.path_note}")
    print(f"wrote {', '.join(_OUTPUTS)} -> {args.out} in {time.perf_counter() - started:.2f}s")
    return 0


def _corporate_actions_arg(value: str) -> str | Path | Literal[False]:
    """``--corporate-actions``: "auto", "none" (False) or an existing factor file."""
    if value.lower() in ("auto", "none"):
        return "auto" if value.lower() == "auto" else False
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"--corporate-actions: no such factor file: {value} (or use auto / none)")
    return path


def _summary_text(s: Mapping[str, Any], currency: str, places: int = 2) -> str:
    """``ReplayResult.summary()`` as one line: fills, VWAP shortfall, fees, P&L, maker share.

    ``places``: decimals of money; 8 for an inverse contract's coin (0.0018 BTC is not 0.00).
    """
    nan = float("nan")
    shortfall = s.get("vwap_shortfall_bps", s.get("shortfall_bps", nan))
    fees, pnl = s.get("fees", 0.0), s.get("pnl", 0.0)
    return (
        f"{s.get('fills', 0):,} fills, VWAP shortfall {shortfall:+.2f} bps, fees {fees:,.{places}f} {currency}, "
        f"P&L {pnl:+,.{places}f} {currency}, maker share {s.get('maker_share', nan):.0%}"
    )


def _check_out_dir(out: Path) -> None:
    """--out may be new, empty, or hold a previous replay's files (which it replaces); nothing else."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a directory")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in _OUTPUTS)
        if other:
            shown = ", ".join(other[:3]) + (", …" if len(other) > 3 else "")
            raise UsageError(f"--out: {out} holds files that are not a replay's ({shown}); choose another directory")


def _write_atomically(out: Path, frames: Mapping[str, pd.DataFrame]) -> None:
    """Write every frame into a temporary sibling of ``out``, then swap it in by renaming:
    ``out`` ends up with all the new files or keeps what it held, never a mix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    old = tmp.with_suffix(".old")
    try:
        for name, frame in frames.items():
            frame.to_parquet(tmp / name, index=False)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        if old.exists() and not out.exists():
            old.rename(out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
