"""The teacher's dashboard: ``panel serve dashboards/teacher.py`` (``vtrade serve`` serves it at
``/teacher`` too, with a sign-in form and a cookie).

The classes are those of the data directory (``$VTRADE_STATE_DIR``, else the XDG default): the
same as ``vtrade serve``'s. Served this way there is no sign-in cookie: open
``/teacher?secret=<the teacher's secret>`` (printed by ``vtrade serve``, kept in the data
directory's ``teacher-secret`` file).
"""

from __future__ import annotations

from vtrade.ui.classroom_serve import page_app, shared_classroom

page_app(shared_classroom(), "teacher").servable()
