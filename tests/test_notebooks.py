"""The notebooks in ``notebooks/`` run top to bottom on a fresh kernel and show what they say.

Each notebook is executed with nbclient on the ``python3`` kernel (the interpreter running the
tests), from the repository root, with one extra cell appended that prints a JSON summary of the
notebook's key results; the checks below read that summary and the cells' outputs. The stored
notebooks carry no outputs (they are cleared to keep the repository small), which is checked too.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PLOT_MIME = "application/vnd.holoviews_exec.v0+json"  # a rendered HoloViews/hvplot figure

Probe = tuple[str, Callable[[dict[str, Any]], None], int]


def _check_quickstart(r: dict[str, Any]) -> None:
    assert r["fills"] > 0
    assert r["maker_share"] == 1.0  # the market maker posts post-only quotes: every fill is a maker fill
    assert set(r["summary_keys"]) >= {"fills", "vwap_shortfall_bps", "fees", "pnl", "position"}
    assert r["book_rows"] > 1000 and r["book_levels"] == 5
    assert r["accounts"] == ["ada", "bob"]
    assert r["bob_fills"] > 0
    # every fill of both accounts reached the session's fills table (no fill id collision)
    assert r["sql_fills"] == r["fills"] + r["bob_fills"]
    assert r["sql_accounts"] == ["ada", "bob"]
    assert r["nav_rows"] > 0 and r["nav_accounts"] == ["ada", "bob"]


def _check_execution_fidelity(r: dict[str, Any]) -> None:
    curve = r["curve"]  # model -> median shortfall (bps) per size, smallest size first
    assert set(curve) == {"L2 (walk the book)", "L1, calibrated σ/ADV", "L1, engine defaults"}
    for values in curve.values():
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values)), values  # cost grows with size
    tiny = {round(v[0], 6) for v in curve.values()}
    assert len(tiny) == 1  # a 1-lot order pays half the spread on every rung
    assert curve["L1, engine defaults"][-1] > 5 * curve["L2 (walk the book)"][-1]
    assert r["all_filled"]
    assert r["join_truth"] == {"fill_msg": 393, "lots": 27, "queue_ahead": 202}  # as tests/test_engine_l3.py
    assert r["scenarios"] == 37 * 4
    assert set(r["queue_bias"]) == {"RiskAverseQueue", "ProbQueue(Power 2)", "ProbQueue(Log)"}
    assert r["queue_bias"]["RiskAverseQueue"] >= 0  # the risk-averse model never runs ahead of the truth


def _check_portfolio_analytics(r: dict[str, Any]) -> None:
    assert r["risk_rows"] == 30
    assert {"sharpe_ratio", "max_drawdown", "beta", "alpha", "information_ratio"} <= set(r["risk_columns"])
    assert r["nav_shape"] == [470, 30]
    assert r["start_nav"] == [100_000.0]
    assert r["holdings"] == [10]
    assert r["weights_sum"] == pytest.approx([1.0])
    assert r["attribution_total"] == pytest.approx(r["active_return"], abs=1e-9)
    assert r["sector_rows"] >= 6


def _check_live_market(r: dict[str, Any]) -> None:
    assert r["buy"] == ["filled", 100.0] and r["fills"] == 100.0
    assert r["positions"] == {"SPY": 100.0}
    assert r["rest"] == "cancelled"  # it rested in the book (and on the ladder) until close()
    assert r["mine"] == 50.0
    assert r["bad_fields"] == ["quantity", "limit_price", "symbol"]
    assert r["preview_rows"] == 1
    assert set(r["summary_columns"]) >= {"buying_power", "cash", "nav", "pnl"}
    assert r["refreshes_stopped"] and r["closed"] and not r["market_running"]


def _check_teaching(r: dict[str, Any]) -> None:
    assert r["students"] == 30 and r["grades"] == 30 and r["roster"] == 30
    assert r["days"] == 5  # Monday 2 to Monday 9 October 2017: the clock passed five sessions
    assert r["kinds"] == ["shock"] and r["announcements"] == 1
    assert r["tech_gap"] == pytest.approx(-10, abs=1.5)  # AAPL across the shock's minute
    assert r["debrief_lines"] == 7 and r["trades"] > 100
    assert r["exported"] == ["class.xlsx", "grades.csv", "roster.csv"] and r["csv_rows"] == 30
    assert r["phase"] == "frozen"
    assert r["claimed"] >= 30 and r["xp_ranked"] == 30 and r["around_me"] == 1  # everyone traded, claimed, ranked


def _check_copilot(r: dict[str, Any]) -> None:
    assert r["quote_tools"] == ["quote"]
    assert r["literal"] and not r["leaked"]  # "{x} $x" reached the model as typed, never x's value
    assert r["widget"] == ["sent", True] and r["proposal_flags"] == []
    assert r["fills"] == {"AAPL": 10.0}
    assert {"CopilotAsked", "CopilotAnswered", "ProposalMade", "IntentConfirmed", "IntentExecuted"} <= set(r["audit"])
    assert r["digests"] == [r["widget_digest"]]
    assert r["closed"] and not r["market_running"]


PROBES: dict[str, Probe] = {
    "01_quickstart.ipynb": (
        """
import json
print(json.dumps({
    "fills": len(result.fills),
    "maker_share": float(summary["maker_share"]),
    "summary_keys": sorted(summary.index),
    "book_rows": len(levels),
    "book_levels": sum(c.startswith("bid_px_") for c in levels.columns),
    "accounts": sorted(session.portfolios().index),
    "bob_fills": len(bob.fills),
    "sql_fills": int(session.sql("select count(*) as n from fills").n.iloc[0]),
    "sql_accounts": sorted(session.sql("select distinct account from fills").account),
    "nav_rows": len(nav),
    "nav_accounts": sorted(nav.account.unique()),
}))
""",
        _check_quickstart,
        3,
    ),
    "02_execution_fidelity.ipynb": (
        """
import json
print(json.dumps({
    "curve": {m: curve[m].tolist() for m in curve.columns},
    "all_filled": bool((runs.filled_lots == runs.lots).all()),
    "join_truth": {k: int(v) for k, v in first_fill(JOIN, None).items() if k in ("fill_msg", "lots", "queue_ahead")},
    "scenarios": len(scenarios),
    "queue_bias": points.groupby("model").error.mean().to_dict(),
}))
""",
        _check_execution_fidelity,
        4,
    ),
    "03_portfolio_analytics.ipynb": (
        """
import json
print(json.dumps({
    "risk_rows": len(risk),
    "risk_columns": list(risk.columns),
    "nav_shape": list(navs.shape),
    "start_nav": sorted(set(navs.iloc[0].round(6))),
    "holdings": sorted(set((shares > 0).sum(axis=1))),
    "weights_sum": sorted(set(weights_end.sum(axis=1).round(9))),
    "attribution_total": float(attribution.loc["Total", "total_effect"]),
    "active_return": float(navs[best].iloc[-1] / CASH0 - 1 - (wb * rb).sum()),
    "sector_rows": len(attribution) - 1,
}))
""",
        _check_portfolio_analytics,
        4,
    ),
    "04_live_market.ipynb": (
        """
import json
orders = s.orders().set_index("client_order_id")
print(json.dumps({
    "buy": [orders.loc[buy.client_order_id, "status"], float(orders.loc[buy.client_order_id, "filled"])],
    "fills": float(s.fills().quantity.sum()),
    "positions": s.positions().set_index("symbol").quantity.astype(float).to_dict(),
    "rest": orders.loc[rest.client_order_id, "status"],
    "mine": float(mine["mine"].sum()),
    "bad_fields": bad_fields,
    "preview_rows": len(ticket.frame("preview", refresh=False)),
    "summary_columns": sorted(pf.frame("summary", refresh=False).columns),
    "refreshes_stopped": not any(v.running for v in (ladder, ticket, pf)),
    "closed": s.closed,
    "market_running": s.market.running,
}))
""",
        _check_live_market,
        3,  # the ladder, the ticket and the portfolio view rendered inline
    ),
    "05_teaching.ipynb": (
        """
import csv, json
aapl = market.prices("AAPL").set_index("ts").mid
before, after = aapl[aapl.index < shock_at].iloc[-1], aapl[aapl.index >= shock_at].iloc[0]
print(json.dumps({
    "students": len(students), "grades": len(grades), "roster": len(roster),
    "days": int((market.clock()["ts"].normalize() - pd.Timestamp("2017-10-02", tz="UTC")).days) - 2,
    "kinds": market.interventions().kind.tolist(),
    "announcements": len(room.state(cid).announcements),
    "tech_gap": float((after / before - 1) * 100),
    "debrief_lines": len(d.lines), "trades": int(grades.trades.sum()),
    "exported": sorted(p.name for p in paths.values()),
    "csv_rows": sum(1 for _ in csv.reader(open(paths["grades_csv"], encoding="utf-8-sig"))) - 1,
    "phase": str(room.state(cid).phase),
    "claimed": claimed, "xp_ranked": len(xp_board), "around_me": int(around_me.me.sum()),
}))
""",
        _check_teaching,
        3,
    ),
    "06_copilot.ipynb": (
        """
import json
log = s.market.copilot_log(s.account)
asked = [m["content"] for r in model.requests for m in r["messages"] if m["role"] == "user"]
print(json.dumps({
    "quote_tools": [t for t in log.loc[log.type == "CopilotAnswered", "tools"].iloc[0]],
    "literal": any("Does {x} or $x mean anything to you?" in q for q in asked),
    "leaked": any(x in json.dumps(r) for r in model.requests),
    "widget": [widget.status, widget.outcome.startswith("Sent to the exchange")],
    "widget_digest": widget.card.digest,
    "proposal_flags": list(answer.reply.proposals[0].flags),
    "fills": s.fills().groupby("symbol").quantity.sum().astype(float).to_dict(),
    "audit": sorted(set(log.type)),
    "digests": sorted(set(log.loc[log.type.isin(["IntentConfirmed", "IntentExecuted"]), "digest"])),
    "closed": s.closed, "market_running": s.market.running,
}))
""",
        _check_copilot,
        0,  # no plots: the answers, a confirm widget and tables
    ),
}


def test_the_notebooks_are_there() -> None:
    assert set(PROBES) <= {p.name for p in NOTEBOOKS.glob("*.ipynb")}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", sorted(PROBES))
def test_notebook_runs_top_to_bottom(name: str) -> None:
    probe, check, min_plots = PROBES[name]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails (timeout: a hang guard)

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    code = [c for c in nb.cells[:n_cells] if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert all(c.outputs for c in code), "every code cell shows something"
    plots = sum(PLOT_MIME in o.get("data", {}) for c in code for o in c.outputs)
    assert plots >= min_plots, f"{name} rendered {plots} plots"

    stdout = "".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream" and o.name == "stdout")
    check(json.loads(stdout.strip().splitlines()[-1]))
