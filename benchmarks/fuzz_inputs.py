"""Fuzz every feed parser and the order input for a bounded time; print ONE JSON object.

    python benchmarks/fuzz_inputs.py --seconds 120            # coverage-guided (atheris), the real fuzzer
    python benchmarks/fuzz_inputs.py --seconds 2 --fallback   # pure-Python random mutation (no atheris)

``--seconds`` is split evenly across the targets. With atheris each target runs in its own
process (libFuzzer owns the process and exits at its time limit) over Python code instrumented
for coverage, starting from the seed slices of ``vtrade._fuzz``; the fallback mutates the same
seeds with structure-aware corruptions (lines, values, gzip bytes) in this process. A crash is
anything that breaks the contract of ``vtrade._fuzz`` (a bare exception, an error that does not
name the file, a hang); crashes are deduplicated by exception type and location, and the run
goes on after one. Output: per target ``executions`` and ``crashes`` (key -> first message),
and totals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FEEDS = ("binance-spot", "binance-usdm", "lobster", "lean-trade-bars", "lean-quote-bars", "taq-quotes", "taq-trades",
         "daily")  # fmt: skip
TARGETS = (*FEEDS, "orders", "cli")


class Target:
    """One fuzz target: ``run(data)`` for a raw input (atheris), ``random_input(rnd)`` for the fallback."""

    def __init__(self, name: str, workdir: Path) -> None:
        from vtrade import _fuzz

        self.name = name
        self.workdir = workdir
        self.executions = 0
        self.crashes: dict[str, str] = {}
        self._fuzz = _fuzz
        if name in FEEDS:
            self.case = _fuzz.FeedCase.make(name, workdir / name)
        elif name == "cli":
            self.strategy = workdir / "idle.py"
            self.strategy.write_text("def idle(ctx):\n    pass\n")
            self.feed = _fuzz.FeedCase.make("binance-usdm", workdir / "cli-feed", lines=120)
            self.feed_path = self.feed.write(self.feed.texts)[0]

    # ------------------------------------------------------------------ inputs
    def seeds(self) -> list[bytes]:
        """Starting inputs for the coverage-guided fuzzer."""
        if self.name in FEEDS:
            return [b"\x00" + t for t in self.case.texts[:1]] + [b"\x01" + self.case.texts[-1]]
        return [bytes(range(64)), b"\x01" * 64, b"\xff" * 64]

    def random_input(self, rnd: random.Random) -> Callable[[], None]:
        """A structure-aware random input, as a call that checks it (the fallback fuzzer)."""
        f = self._fuzz
        if self.name in FEEDS:
            texts, raw = list(self.case.texts), None
            i = rnd.randrange(len(texts))
            if rnd.random() < 0.2 and self.case.names[i].endswith(".gz"):
                import gzip

                raw = {i: f.mutate_gzip(gzip.compress(texts[i], mtime=0), rnd)}
            else:
                texts[i] = f.mutate_text(texts[i], rnd)
            return lambda: self._read(texts, raw)
        if self.name == "orders":
            pick = rnd.choice
            kw = {"instrument": pick(["BTCUSDT", "spy", "NOPE", "", None, 5]), "side": pick(f.SIDES),
                  "order_type": pick(f.ORDER_TYPES), "quantity": pick(f.ORDER_VALUES), "tif": pick(f.TIFS)}
            for k in ("limit_price", "stop_price", "trail", "trail_percent", "expire_ts"):
                if rnd.random() < 0.5:
                    kw[k] = pick(f.ORDER_VALUES)
            kw["post_only"] = pick([False, True])
            return lambda: f.check_submit(kw)
        argv = self._cli_argv(rnd.choice, lambda: rnd.random() < 0.6)
        return lambda: self._cli(argv)

    def run(self, data: bytes) -> None:
        """Check one raw input (atheris): for a feed, byte 0 picks the file and the rest is its text."""
        if self.name in FEEDS:
            texts = list(self.case.texts)
            if data:
                texts[data[0] % len(texts)] = data[1:]
            self._guard(lambda: self._read(texts, None))
            return
        import atheris

        fdp = atheris.FuzzedDataProvider(data)
        f = self._fuzz

        def pick(options: Any) -> Any:
            options = list(options)
            # Mostly the curated values, sometimes free-form text or floats (nan, inf, ...).
            r = fdp.ConsumeIntInRange(0, len(options) + 1)
            if r == len(options):
                return fdp.ConsumeUnicodeNoSurrogates(12)
            if r == len(options) + 1:
                return fdp.ConsumeRegularFloat() if fdp.ConsumeBool() else fdp.ConsumeFloat()
            return options[r]

        if self.name == "orders":
            kw = {"instrument": pick(["BTCUSDT", "spy", "NOPE"]), "side": pick(f.SIDES),
                  "order_type": pick(f.ORDER_TYPES), "quantity": pick(f.ORDER_VALUES), "tif": pick(f.TIFS)}
            for k in ("limit_price", "stop_price", "trail", "trail_percent", "expire_ts"):
                if fdp.ConsumeBool():
                    kw[k] = pick(f.ORDER_VALUES)
            kw["post_only"] = fdp.ConsumeBool()
            self._guard(lambda: f.check_submit(kw))
        else:
            argv = self._cli_argv(lambda opts: str(pick(opts)), fdp.ConsumeBool)
            self._guard(lambda: self._cli(argv))

    # ------------------------------------------------------------------ checks
    def _read(self, texts: list[bytes], raw: dict[int, bytes] | None) -> None:
        self.case.read(self.case.write(texts, raw))

    def _cli_argv(self, pick: Callable[[Any], str], use: Callable[[], bool]) -> list[str]:
        out = self.workdir / "cli-out" / "result"
        files = [str(self.feed_path), str(self.workdir / "missing.csv"), str(self.workdir), str(self.strategy)]
        if use():
            argv = ["book", pick(files), "--out", str(out.with_suffix(".parquet")), "--quiet"]
            options = ("--format", "--symbol", "--levels")
        else:
            argv = ["replay", pick(files), "--strategy", f"{self.strategy}:idle", "--out", str(out), "--quiet"]
            options = ("--format", "--symbol", "--realism", "--every", "--latency", "--fees", "--seed")
        for opt in options:
            if use():
                argv += [opt, pick(self._fuzz.CLI_VALUES[opt])]
        return argv

    def _cli(self, argv: list[str]) -> None:
        import shutil

        out_dir = self.workdir / "cli-out"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        self._fuzz.check_cli(argv, out_dir / "result")

    def _guard(self, check: Callable[[], None]) -> None:
        self.executions += 1
        try:
            check()
        except Exception as exc:
            key = self._fuzz.crash_key(exc)
            self.crashes.setdefault(key, f"{type(exc).__name__}: {str(exc)[:200]}")

    def report(self) -> dict[str, Any]:
        return {"executions": self.executions, "distinct_crashes": len(self.crashes), "crashes": self.crashes}


# ---------------------------------------------------------------------------------------------- modes


def fallback(targets: list[str], seconds: float, seed: int) -> dict[str, Any]:
    """Random structure-aware mutation in this process, ``seconds`` split across ``targets``."""
    rnd = random.Random(seed)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in targets:
            t = Target(name, Path(tmp))
            end = time.monotonic() + seconds / len(targets)
            while time.monotonic() < end:
                t._guard(t.random_input(rnd))
            out[name] = t.report()
    return out


def child(name: str, seconds: float, result: Path) -> None:
    """One atheris target until libFuzzer's time limit; the report is rewritten as it goes,
    since libFuzzer ends the process with exit() at the limit."""
    import atheris

    with atheris.instrument_imports(include=["vtrade"]):
        import vtrade._fuzz
        import vtrade.cli
        import vtrade.execution.validation
        import vtrade.market.feeds
        import vtrade.market.feeds.binance
        import vtrade.market.feeds.daily
        import vtrade.market.feeds.lean
        import vtrade.market.feeds.lobster
        import vtrade.market.feeds.taq  # noqa: F401
    with tempfile.TemporaryDirectory() as tmp:
        t = Target(name, Path(tmp))
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i, s in enumerate(t.seeds()):
            (corpus / f"seed{i}").write_bytes(s)
        last = [0.0]

        def one_input(data: bytes) -> None:
            t.run(data)
            now = time.monotonic()
            if now - last[0] > 0.5:
                last[0] = now
                result.write_text(json.dumps(t.report()))

        max_len = max(len(s) for s in t.seeds()) + 4096
        artifacts = result.with_suffix(".artifacts")
        artifacts.mkdir(exist_ok=True)
        atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", f"-max_len={max_len}", "-timeout=20",
                       "-rss_limit_mb=4096", "-print_final_stats=0", f"-artifact_prefix={artifacts}/", str(corpus)],
                      one_input)  # fmt: skip
        try:
            atheris.Fuzz()
        finally:
            result.write_text(json.dumps(t.report()))


def with_atheris(targets: list[str], seconds: float, keep: Path) -> dict[str, Any]:
    """Each target in a child process; inputs libFuzzer kills for running too long (a hang) or
    for a crash it sees itself are kept under ``keep`` and reported as crashes."""
    out = {}
    per = max(1, int(seconds / len(targets)))
    with tempfile.TemporaryDirectory() as tmp:
        for name in targets:
            result = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, __file__, "--child", name, "--seconds", str(per), "--result", str(result)]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "VTRADE_FUZZ_NO_ALARM": "1"}
            try:
                subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=per + 120, check=False)  # fmt: skip
                stuck = False
            except subprocess.TimeoutExpired:
                stuck = True
            report = json.loads(result.read_text()) if result.exists() else {"executions": 0, "crashes": {}}
            for artifact in sorted(result.with_suffix(".artifacts").glob("*")):
                keep.mkdir(parents=True, exist_ok=True)
                saved = keep / f"{name}-{artifact.name}"
                saved.write_bytes(artifact.read_bytes())
                kind = "Hang" if artifact.name.startswith(("timeout", "slow")) else "Crash"
                report["crashes"][f"{kind} ({artifact.name.split('-')[0]})"] = f"input saved to {saved}"
            if stuck:
                report["crashes"]["Hang (process)"] = "the target outlived its time limit by 120 s"
            report["distinct_crashes"] = len(report["crashes"])
            out[name] = report
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="total time, split across targets (default 60)")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {', '.join(TARGETS)}")
    ap.add_argument("--fallback", action="store_true", help="pure-Python random mutation instead of atheris")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the fallback mode")
    ap.add_argument("--artifacts", type=Path, default=Path(tempfile.gettempdir()) / "vtrade-fuzz-artifacts",
                    help="where inputs that hang or crash a target are kept (atheris mode)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.seconds, args.result)
        return
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        ap.error(f"unknown targets {unknown}")
    mode = "fallback" if args.fallback else "atheris"
    if mode == "atheris":
        try:
            import atheris  # noqa: F401
        except ImportError:
            ap.error("atheris is not installed (pip install -e '.[fuzz]'), or use --fallback")
    started = time.monotonic()
    if mode == "fallback":
        per_target = fallback(targets, args.seconds, args.seed)
    else:
        per_target = with_atheris(targets, args.seconds, args.artifacts)
    total = {
        "executions": sum(r.get("executions", 0) for r in per_target.values()),
        "distinct_crashes": sum(r.get("distinct_crashes", 0) for r in per_target.values()),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps({"mode": mode, "targets": per_target, "total": total}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
