"""A served classroom killed with SIGKILL mid-class (issue 12): classes, rosters, accounts,
orders, the teacher's market events and the clock position come back from the data dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from vtrade.classroom import Phase
from vtrade.execution.tables import OPEN_STATUSES
from vtrade.runtime.classroom import Classroom

ROOT = Path(__file__).resolve().parent.parent
SECRET = "t" * 24

# The class the child process runs until it is killed: three students trade while the clock
# runs (at 50x, in the market's own thread), the teacher halts XOM, then the child reports what
# it acknowledged and waits to be killed.
CHILD = textwrap.dedent(
    """
    import json, sys
    from vtrade.classroom import ClassRules
    from vtrade.runtime.classroom import Classroom

    room = Classroom(sys.argv[1], teacher_secret=sys.argv[2], market_overrides={"burn_in": 20_000})
    teacher = room.teacher(sys.argv[2])
    cid = teacher.create_class("Crash course", ClassRules(market="synthetic", starting_cash=20_000))
    teacher.open_registration(cid)
    tokens = {n: room.join(teacher.join_code(cid), n).token for n in ("Ada", "Bo", "<i>Cy</i>")}
    teacher.set_speed(cid, 50)
    teacher.start(cid)
    market = room.market(cid)
    for i, (name, token) in enumerate(tokens.items()):
        desk = room.student(token)
        desk.submit("AAPL", "buy", 5 + i)
        desk.submit("MSFT", "buy", 3, "limit", 1.00, "gtc")  # rests: an open order to bring back
    teacher.halt(cid, "XOM", "pending news")
    last = market.clock()["ts"].value
    orders = {n: room.student(t).orders().client_order_id.tolist() for n, t in tokens.items()}
    print(json.dumps({"cid": cid, "tokens": tokens, "orders": orders, "last_entry_ns": last}), flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_a_killed_classroom_comes_back(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), SECRET], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child's report: everything in it was acknowledged
        assert line, child.stderr.read() if child.stderr else "the child said nothing"
        before = json.loads(line)
    finally:
        child.send_signal(signal.SIGKILL)  # no checkpoint on the way out, no clean close
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    room = Classroom(tmp_path, teacher_secret=SECRET, market_overrides={"burn_in": 20_000})
    try:
        cid = before["cid"]
        state = room.state(cid)
        assert state.phase is Phase.TRADING and state.speed == 50 and state.halted == {"XOM"}
        assert [s.display_name for s in state.active] == ["Ada", "Bo", "<i>Cy</i>"]
        market = room.market(cid)
        assert market is not None
        for name, token in before["tokens"].items():
            desk = room.student(token)  # the browser's token still signs in
            assert desk.orders().client_order_id.tolist() == before["orders"][name]
            assert desk.orders().status.iloc[-1] in OPEN_STATUSES  # the resting limit order still rests
        # The clock comes back at least where the last acknowledged entry left it, and runs on.
        assert market.clock()["ts"] >= pd.Timestamp(before["last_entry_ns"], tz="UTC")
        assert bool(market.quotes(["XOM"]).halted.iloc[0])  # the teacher's halt is still in force
        refused = room.student(before["tokens"]["Ada"]).submit("XOM", "buy", 1)
        assert not refused.ok and "halted" in (refused.reason or "")
        roster = room.roster(cid)
        assert roster.name.tolist() == ["Ada", "Bo", "<i>Cy</i>"] and (roster.trades >= 2).all()
    finally:
        room.close()
