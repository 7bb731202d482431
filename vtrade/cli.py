"""The ``vtrade`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vtrade.core.errors import VtradeError

DATA = Path(__file__).resolve().parent.parent / "data"
DEFAULT_DEMO_FEED = DATA / "crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vtrade", description="High-fidelity paper trading and analytics.")
    sub = parser.add_subparsers(dest="command", required=True)

    book = sub.add_parser("book", help="rebuild a recorded feed's order book and write it to Parquet")
    book.add_argument("file", type=Path, help="feed file (for LOBSTER, the message file)")
    book.add_argument("--format", default="auto", help="auto (default), binance, lobster, taq-quotes, …")
    book.add_argument("--symbol", help="the ticker to rebuild, for files holding several")
    book.add_argument("--levels", type=int, default=10, help="levels per side to write (default 10)")
    book.add_argument("--out", type=Path, required=True, help="output Parquet file")
    book.add_argument("--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser("demo", help="replay the Binance capture with a live terminal view")
    demo.add_argument("file", type=Path, nargs="?", default=DEFAULT_DEMO_FEED, help="feed to replay")
    demo.add_argument("--speed", type=float, default=30.0, help="simulated seconds per wall second (0 = max)")
    demo.add_argument("--levels", type=int, default=10, help="depth levels shown")

    args = parser.parse_args(argv)
    try:
        if args.command == "book":
            return _book(args)
        if args.command == "demo":
            return _demo(args)
    except VtradeError as exc:
        print(f"vtrade {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _book(args: argparse.Namespace) -> int:
    from vtrade.runtime.bookfile import write_book

    if args.levels < 1:
        print(f"vtrade book: error: --levels must be at least 1, got {args.levels}", file=sys.stderr)
        return 2
    res = write_book(
        args.file, args.out, format=args.format, levels=args.levels, symbol=args.symbol, progress=not args.quiet
    )
    print(f"{res.rows:,} book updates ({res.format}) -> {res.out} in {res.seconds:.2f}s")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vtrade.ui.terminal import run_demo

    run_demo(args.file, speed=args.speed, levels=args.levels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
