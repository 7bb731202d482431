"""The projector view of a class: ``panel serve dashboards/projector.py``, then open
``/projector?class=<class id>&secret=<the teacher's secret>`` (``vtrade serve`` serves it at
``/projector?class=<id>`` for a signed-in teacher). Large type, high contrast: the top 10, the
class's returns, the market tape and headlines, the clock.
"""

from __future__ import annotations

from vtrade.ui.classroom_serve import page_app, shared_classroom

page_app(shared_classroom(), "projector").servable()
