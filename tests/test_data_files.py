"""Every file shipped in ``data/`` replays from the command line with the README's own commands,
and the files that are not market data say what they are.

The commands are read from the README block between ``<!-- data-replays: begin/end -->``, so
the README cannot drift from what works; a new file in ``data/`` that no command replays and
that is not a known reference table fails :func:`test_every_file_in_data_is_covered`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from vtrade import cli

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
# Not market data: each must be refused with a message that names what it is.
REFERENCE_TABLES = {
    "equities_daily/lean_factor_files.csv": "Lean factor file",
    "equities_daily/sp500_2018members_daily_2013_2017.flagged_rows.csv": "flagged rows",
    "equities_daily/sp500_2018members_meta.csv": "metadata",
    "equities_daily/sp500_constituents_2018-04-02.csv": "constituents list",
}
DOCS = {"README.md", "NOTICE"}


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- data-replays: begin -->\n```bash\n(.*?)```\n<!-- data-replays: end -->", text, re.S)
    assert block is not None, "README.md lost its data-replays block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


COMMANDS = readme_commands()


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("argv", COMMANDS, ids=[Path(_option(a, "--out")).name for a in COMMANDS])
def test_readme_replay_command_runs(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert argv[:2] == ["vtrade", "replay"]
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the project
    out = tmp_path / "out"
    args = [*argv[1:], "--quiet"]
    args[args.index("--out") + 1] = str(out)
    assert cli.main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    fills = pd.read_parquet(out / "fills.parquet")
    assert len(fills) > 0, printed.out  # each command's strategy trades on its file
    assert " replay: " in printed.out and "wrote orders.parquet" in printed.out
    # The grid line names where the grid came from, before the long work.
    assert re.search(r"tick [\d.]+, lot [\d.]+", printed.err), printed.err


def test_every_file_in_data_is_covered() -> None:
    replayed = {str(Path(a[2]).relative_to("data")) for a in COMMANDS}
    shipped = {str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file() and p.name not in DOCS}
    left_out = sorted(shipped - replayed - set(REFERENCE_TABLES))
    assert not left_out, f"not replayed by a README command nor a known reference table: {left_out}"
    assert replayed <= shipped, f"README commands name files not in data/: {sorted(replayed - shipped)}"


@pytest.mark.parametrize("name", sorted(REFERENCE_TABLES))
@pytest.mark.parametrize("command", ["replay", "book"])
def test_reference_tables_say_what_they_are(name: str, command: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / ("out" if command == "replay" else "book.parquet")
    extra = ["--strategy", "vtrade.strategies:buy_and_hold"] if command == "replay" else []
    assert cli.main([command, str(DATA / name), *extra, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert REFERENCE_TABLES[name] in err and "not a market feed" in err, err
    assert "format=" not in err and "corporate_actions=" not in err  # CLI errors name CLI flags, not Python's
    if command == "replay" and "factor" in name:
        assert "pass --corporate-actions" in err
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing written
