"""vtrade: a high-fidelity paper-trading simulator and Jupyter analytics workbench.

>>> import vtrade as vt
>>> vt.__version__
'0.1.0'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vtrade.execution import tables as schema
    from vtrade.market import open_feed, read_book
    from vtrade.notebook_magic import load_ipython_extension, unload_ipython_extension
    from vtrade.portfolio import analytics
    from vtrade.runtime.classroom import Classroom
    from vtrade.runtime.live_session import LiveSession
    from vtrade.runtime.replay import replay, replay_many
    from vtrade.runtime.session import Session, live

__all__ = [
    "Classroom", "LiveSession", "Session", "__version__", "analytics", "live", "load_ipython_extension", "open_feed",
    "read_book", "replay", "replay_many", "schema", "unload_ipython_extension",
]  # fmt: skip
_LAZY = {
    "replay": "vtrade.runtime.replay",
    "replay_many": "vtrade.runtime.replay",
    "read_book": "vtrade.market",
    "open_feed": "vtrade.market",
    "Session": "vtrade.runtime.session",
    "live": "vtrade.runtime.session",
    "LiveSession": "vtrade.runtime.live_session",
    "Classroom": "vtrade.runtime.classroom",
    # ``%load_ext vtrade`` (the copilot magics): IPython looks the function up on this module.
    "load_ipython_extension": "vtrade.notebook_magic",
    "unload_ipython_extension": "vtrade.notebook_magic",
}
# ``vt.schema``: the public orders, fills and positions tables (``vt.schema.FILLS`` and friends).
_MODULES = {"analytics": "vtrade.portfolio.analytics", "schema": "vtrade.execution.tables"}


def __getattr__(name: str) -> Any:
    # Lazy: `import vtrade` stays cheap; pandas, numba and friends load on first use.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'vtrade' has no attribute {name!r}")
