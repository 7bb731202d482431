"""Serve the classroom: ``/join``, ``/student``, ``/teacher`` and ``/projector`` (issue 12).

- ``/join`` is a plain page (no JavaScript, works on any phone): a join code and a display name
  go to :meth:`Classroom.join` with the client's address (``request.remote_ip``: the join rate
  limit is per address; behind a reverse proxy start the server with ``xheaders`` so it is the
  student's, not the proxy's). On success the student's token goes into an httponly,
  SameSite=Lax cookie and the browser goes to ``/student``; a refusal shows its sentence above
  the form, which keeps what was typed, and changes nothing.
- ``/student`` reads the token from that cookie, or from a personal link
  ``/student?token=...`` (which sets the cookie too).
- ``/teacher`` and ``/projector`` need the teacher's secret once: typed into the sign-in form
  (POSTed to ``/signin``, so it never sits in the address bar or the history) or given as
  ``?secret=`` (the URL printed at start-up); either way the browser gets a signed httponly
  teacher cookie (:meth:`Classroom.teacher_token`) and never keeps the secret itself.

Cookies are set where Bokeh lets a page's response carry them: its per-request identity hook
(:class:`ClassCookies`, as :class:`vtrade.ui.serve._AccountCookie` does for ``/trader``).

>>> join_url("localhost", 5006), teacher_url("localhost", 5006, "s3cret")
('http://localhost:5006/join', 'http://localhost:5006/teacher?secret=s3cret')
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import panel as pn
from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler
from tornado.websocket import WebSocketHandler

from vtrade.classroom import ClassroomError
from vtrade.runtime.classroom import Classroom, TeacherDesk
from vtrade.ui.serve import RequestHook, give_cookie

if TYPE_CHECKING:
    from vtrade.runtime.live import LiveMarket

__all__ = [
    "STUDENT_COOKIE", "TEACHER_COOKIE", "ClassCookies", "class_apps", "class_routes", "join_url", "page_app",
    "serve_classroom", "shared_classroom", "teacher_url",
]  # fmt: skip

STUDENT_COOKIE = "vtrade_student"
TEACHER_COOKIE = "vtrade_teacher"
STUDENT_DAYS = 400  # a term; browsers cap cookies at 400 days
TEACHER_DAYS = 7  # a teacher types the secret again each week on a shared computer at worst
CLASS_PAGES = ("student", "teacher", "projector")


def join_url(address: str, port: int) -> str:
    """Where students join."""
    return f"http://{address}:{port}/join"


def teacher_url(address: str, port: int, secret: str) -> str:
    """The teacher's page with the secret: opened once, it signs the browser in (cookie)."""
    return f"http://{address}:{port}/teacher?secret={quote(secret, safe='')}"


class ClassCookies(RequestHook):
    """Bokeh's per-request identity hook: signs a browser in from a personal link
    (``/student?token=``) or the teacher's secret (``/teacher?secret=``, ``/projector?secret=``)
    by setting the cookie the pages read. Nobody is refused here: a page without a valid cookie
    says so itself. Requests for ``/trader`` go to ``inner`` (the trader's account cookie)."""

    def __init__(self, room: Classroom, inner: AuthProvider | None = None) -> None:
        self._room, self._inner = room, inner
        super().__init__()

    def _user(self, handler: RequestHandler) -> str:
        if isinstance(handler, WebSocketHandler):
            return "browser"  # the page load before it set the cookies; the session checks them again
        parts = handler.request.path.strip("/").split("/")
        page = next((p for p in reversed(parts) if p in (*CLASS_PAGES, "trader")), None)
        if page == "student":
            token = handler.get_argument("token", None)
            if token:
                try:
                    self._room.student(token)
                except ClassroomError:
                    pass  # the page says the link is not valid
                else:
                    give_cookie(handler, STUDENT_COOKIE, token, STUDENT_DAYS)
        elif page in ("teacher", "projector"):
            secret = handler.get_argument("secret", None)
            if secret is not None:
                with contextlib.suppress(ClassroomError):  # a wrong one: the page says so
                    give_cookie(handler, TEACHER_COOKIE, self._room.teacher_token(secret), TEACHER_DAYS)
        elif page == "trader" and self._inner is not None:
            # The trader's hook takes the handler (see vtrade.ui.serve._AccountCookie), whatever Bokeh's
            # annotation says.
            return str(cast(Any, self._inner).get_user(handler))
        return "guest"


# ---------------------------------------------------------------------------- plain pages
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body {{ font: 18px/1.4 system-ui, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; margin: 0;
  background: #f5f7fa; color: #111; }}
main {{ max-width: 420px; margin: 8vh auto; background: #fff; padding: 24px 28px; border-radius: 8px;
  box-shadow: 0 1px 4px #0002; }}
h1 {{ font-size: 26px; margin: 0 0 16px; }}
label {{ display: block; margin: 14px 0 4px; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; font-size: 20px; padding: 8px; border: 1px solid #888;
  border-radius: 4px; }}
button {{ margin-top: 20px; width: 100%; font-size: 20px; padding: 10px; border: 0; border-radius: 4px;
  background: #1565c0; color: #fff; cursor: pointer; }}
.refused {{ color: #b71c1c; background: #ffebee; padding: 8px 10px; border-radius: 4px; }}
.hint {{ color: #555; font-size: 15px; }}
</style></head><body><main>{body}</main></body></html>"""


def join_page(code: str = "", name: str = "", refusal: str = "") -> str:
    """The join form (what was typed kept, escaped; a refusal's sentence above it).

    >>> "&lt;img" in join_page(name="<img src=x>") and "<img" not in join_page(name="<img src=x>")
    True
    """
    message = f"<p class='refused' role='alert'>⚠ {html.escape(refusal)}</p>" if refusal else ""
    body = (f"<h1>Join your class</h1>{message}<form method='post' action='join'>"
            f"<label for='code'>Join code</label><input id='code' name='code' autocomplete='off' required "
            f"value='{html.escape(code, quote=True)}' placeholder='e.g. 7KQ2M-XW9RT-C4HFD'>"
            f"<label for='name'>Your name</label><input id='name' name='name' maxlength='40' required "
            f"value='{html.escape(name, quote=True)}' placeholder='as your class will see it'>"
            "<p class='hint'>Your classmates see this name on the leaderboard.</p>"
            "<button type='submit'>Join</button></form>")  # fmt: skip
    return _PAGE.format(title="Join a class · vtrade", body=body)


def signin_page(refusal: str = "", next_page: str = "teacher") -> str:
    """The teacher's sign-in form (posted to ``/signin``)."""
    message = f"<p class='refused' role='alert'>⚠ {html.escape(refusal)}</p>" if refusal else ""
    body = (f"<h1>Teacher sign-in</h1>{message}<form method='post' action='signin'>"
            f"<input type='hidden' name='next' value='{html.escape(next_page, quote=True)}'>"
            "<label for='secret'>Teacher's secret</label><input id='secret' name='secret' type='password' required "
            "autocomplete='current-password'>"
            "<p class='hint'>vtrade printed it when the server started (and keeps it in the data directory's "
            "<code>teacher-secret</code> file).</p><button type='submit'>Sign in</button></form>")  # fmt: skip
    return _PAGE.format(title="Teacher sign-in · vtrade", body=body)


class JoinHandler(RequestHandler):
    """``GET /join`` shows the form (``?code=`` fills the code in); ``POST /join`` joins."""

    def initialize(self, room: Classroom) -> None:
        self.room = room

    def get(self) -> None:
        self.write(join_page(code=self.get_argument("code", "")))

    def post(self) -> None:
        code, name = self.get_body_argument("code", ""), self.get_body_argument("name", "")
        try:
            joined = self.room.join(code, name, address=self.request.remote_ip or "unknown")
        except ClassroomError as refused:
            self.set_status(429 if refused.code == "rate_limited" else 400)
            self.write(join_page(code, name, str(refused)))
            return
        give_cookie(self, STUDENT_COOKIE, joined.token, STUDENT_DAYS)
        self.redirect("student", status=303)  # relative: right under a proxy prefix too


class SigninHandler(RequestHandler):
    """``POST /signin``: the teacher's secret for a teacher cookie, then back to the page asked for."""

    def initialize(self, room: Classroom) -> None:
        self.room = room

    def get(self) -> None:
        self.write(signin_page(next_page=_safe_next(self.get_argument("next", "teacher"))))

    def post(self) -> None:
        next_page = _safe_next(self.get_body_argument("next", "teacher"))
        try:
            token = self.room.teacher_token(self.get_body_argument("secret", ""))
        except ClassroomError as refused:
            self.set_status(403)
            self.write(signin_page(str(refused), next_page))
            return
        give_cookie(self, TEACHER_COOKIE, token, TEACHER_DAYS)
        self.redirect(next_page, status=303)


def _safe_next(page: str) -> str:
    """Only our own teacher pages, relative: a sign-in never sends a browser elsewhere.

    >>> _safe_next("projector?class=c1"), _safe_next("//evil.example/x"), _safe_next("https://evil")
    ('projector?class=c1', 'teacher', 'teacher')
    """
    return page if page.split("?")[0] in ("teacher", "projector") else "teacher"


def class_routes(room: Classroom) -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """The plain (non-Panel) routes: ``/join`` and ``/signin``."""
    return [(r"/join/?", JoinHandler, {"room": room}), (r"/signin/?", SigninHandler, {"room": room})]


# ---------------------------------------------------------------------------- the Panel pages
def _origin() -> str:
    """``http(s)://host:port`` of the current page's request (for links the teacher hands out)."""
    headers = pn.state.headers or {}
    host = headers.get("Host", "localhost")
    proto = headers.get("X-Forwarded-Proto", "http")
    return f"{proto}://{host}"


def _arg(name: str) -> str | None:
    values = pn.state.session_args.get(name) if pn.state.session_args else None
    return values[0].decode("utf-8", "replace") if values else None


def _teacher(room: Classroom) -> tuple[TeacherDesk | None, str]:
    """The teacher's desk from the cookie (or a ``?secret=`` when served without
    :class:`ClassCookies`), else None and why."""
    cookie = (pn.state.cookies or {}).get(TEACHER_COOKIE)
    if cookie:
        try:
            return room.teacher_session(cookie), ""
        except ClassroomError:
            pass  # an old cookie (a new secret since): sign in again
    secret = _arg("secret")
    if secret is not None:
        try:
            return room.teacher(secret), ""
        except ClassroomError as refused:
            return None, str(refused)
    return None, ""


def _signin_view(why: str, next_page: str) -> Any:
    from vtrade.ui.classroom import _template

    refused = (f"<p class='vt-refused' style='color:#b71c1c;font-size:18px'>⚠ {html.escape(why)}</p>" if why
               else "<p style='font-size:18px'>Teacher pages need the teacher's secret.</p>")  # fmt: skip
    form = (f"{refused}<form method='post' action='signin' style='font-size:18px'>"
            f"<input type='hidden' name='next' value='{html.escape(next_page, quote=True)}'>"
            "<label>Teacher's secret <input name='secret' type='password' required style='font-size:18px'></label> "
            "<button type='submit' style='font-size:18px'>Sign in</button></form>")  # fmt: skip
    return _template("vtrade · teacher sign-in", [pn.pane.HTML(form, sizing_mode="stretch_width",
                                                               css_classes=["vt-signin"])])  # fmt: skip


def class_apps(room: Classroom, *, period_ms: int = 500) -> dict[str, Callable[[], Any]]:
    """The Panel apps of the classroom, by route: ``student``, ``teacher``, ``projector``."""
    from vtrade.ui.classroom import _template, projector_page, student_page, teacher_page
    from vtrade.ui.serve import _quiet_closed_tabs

    def student() -> Any:
        _quiet_closed_tabs(asyncio.get_running_loop())
        token = (pn.state.cookies or {}).get(STUDENT_COOKIE) or _arg("token")
        return student_page(room, token, period_ms=period_ms)

    def teacher() -> Any:
        _quiet_closed_tabs(asyncio.get_running_loop())
        desk, why = _teacher(room)
        if desk is None:
            return _signin_view(why, "teacher")
        return teacher_page(room, desk, origin=_origin())

    def projector() -> Any:
        _quiet_closed_tabs(asyncio.get_running_loop())
        class_id = _arg("class") or ""
        desk, why = _teacher(room)
        if desk is None:
            return _signin_view(why, f"projector?class={quote(class_id)}")
        try:
            return projector_page(room, class_id)
        except ClassroomError as refused:
            links = "".join(f"<li><a href='projector?class={html.escape(c)}'>{html.escape(room.state(c).name)}</a></li>"
                            for c in room.classes())  # fmt: skip
            text = f"<p style='font-size:22px'>⚠ {html.escape(str(refused))}. Choose a class:</p><ul>{links}</ul>"
            return _template("vtrade · projector", [pn.pane.HTML(text, sizing_mode="stretch_width")])

    return {"student": student, "teacher": teacher, "projector": projector}


def serve_classroom(
    room: Classroom,
    *,
    port: int = 5006,
    address: str = "localhost",
    show: bool = False,
    threaded: bool = False,
    period_ms: int = 500,
    websocket_origin: str | list[str] | None = None,
    market: LiveMarket | None = None,
) -> Any:
    """Serve ``room``'s pages (and ``/trader`` on ``market`` if given, a new account per page
    load) with ``pn.serve``; prints where students join and the teacher's URL. Blocks unless
    ``threaded=True``, which returns the server thread (call ``.stop()``)."""
    from vtrade.ui.serve import serve_apps, trader_app

    apps = class_apps(room, period_ms=period_ms)
    if market is not None:
        apps["trader"] = trader_app(market, None, period_ms)
    print(f"vtrade: students join at {join_url(address, port)}", flush=True)
    print(f"vtrade: teacher dashboard at {teacher_url(address, port, room.teacher_secret)}", flush=True)
    return serve_apps(apps, port=port, address=address, show=show, threaded=threaded,
                      websocket_origin=websocket_origin, auth_provider=ClassCookies(room),
                      extra_patterns=class_routes(room))  # fmt: skip


_SHARED: dict[str, Classroom] = {}


def shared_classroom() -> Classroom:
    """The process-wide :class:`Classroom` of ``panel serve dashboards/teacher.py`` (and the
    projector's): classes of the user's data directory (``$VTRADE_STATE_DIR``, else the XDG
    default), the same ones ``vtrade serve`` serves."""
    from vtrade.runtime.datadir import default_data_dir

    if "room" not in _SHARED:
        _SHARED["room"] = Classroom(default_data_dir())
    return _SHARED["room"]


def page_app(room: Classroom, page: str) -> Any:
    """One classroom page built for the current session (``student``, ``teacher`` or
    ``projector``): what the ``dashboards/`` entries serve."""
    return class_apps(room)[page]()
