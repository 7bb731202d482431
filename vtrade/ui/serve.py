"""Serve the trader dashboard on the process-wide live market: what ``vtrade serve`` runs.

With a ``data_dir`` the market keeps its accounts there across restarts, and a browser keeps its
account: the first page load opens one and remembers it in a signed cookie (see
:class:`BrowserAccounts`); a later load with that cookie, before or after a restart, trades as the
same account. Without one (ephemeral) every page load opens a new account, as a throwaway server
should.

>>> url_for("localhost", 5006)
'http://localhost:5006/trader'
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from http.cookies import Morsel
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from vtrade.core.tokens import sign_token, verify_token
from vtrade.runtime.datadir import AccountNumbers, prepare_data_dir, server_secret
from vtrade.runtime.live import LiveConfig, LiveMarket, shared_market

if TYPE_CHECKING:
    from vtrade.runtime.classroom import Classroom

__all__ = ["COOKIE", "BrowserAccounts", "admin_app", "serve_apps", "serve_trader", "trader_app", "url_for"]

#: The cookie that names a browser's account (signed: see :mod:`vtrade.core.tokens`).
COOKIE = "vtrade_account"
#: Browsers cap a cookie's lifetime at 400 days; a class term is shorter.
COOKIE_DAYS = 400
_log = logging.getLogger(__name__)


def url_for(address: str, port: int) -> str:
    """The trader dashboard's URL."""
    return f"http://{address}:{port}/trader"


class BrowserAccounts:
    """Which account a browser trades as, carried by a signed cookie.

    :meth:`account_for` takes the cookie the browser sent (or None) and returns the account and,
    when the browser needs a (new) cookie, its value:

    - no cookie, or one whose signature is wrong (forged, tampered, another server's secret):
      a NEW account with a never-used number, and a cookie for it. Never someone else's account.
    - a valid cookie: its account. If the market no longer has it (its data was lost), it is
      opened again, empty, under the same name: the signature proves the name was given to this
      browser, and :class:`~vtrade.runtime.datadir.AccountNumbers` never gives a number twice.

    >>> import tempfile; from vtrade.runtime.datadir import AccountNumbers
    >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
    >>> accounts = BrowserAccounts(m, b"k" * 32, AccountNumbers(Path(tempfile.mkdtemp())).next)
    >>> name, cookie = accounts.account_for(None)
    >>> name, accounts.account_for(cookie)
    ('trader-1', ('trader-1', None))
    >>> accounts.account_for(cookie[:-2] + "xx")[0]  # tampered: a fresh account
    'trader-2'
    """

    def __init__(self, market: LiveMarket, secret: bytes, numbers: Callable[[], int]) -> None:
        self.market = market
        self._secret = secret
        self._numbers = numbers
        # Pages load on the server's event loop, but the app may run elsewhere (threaded serve):
        # check-then-open must not interleave.
        self._lock = threading.Lock()

    def account_for(self, cookie: str | None) -> tuple[str, str | None]:
        """The browser's account, and a cookie value to set (None: keep the one it has)."""
        name = verify_token(cookie, self._secret) if cookie else None
        with self._lock:
            if name is not None:
                # Opened again if its data was lost (taken meanwhile: by another server of this
                # shared log, for this same browser).
                self.market.open_account_if_free(name)
                return name, None
            while True:
                name = f"trader-{self._numbers()}"
                if self.market.open_account_if_free(name):
                    return name, sign_token(name, self._secret)


def give_cookie(handler: RequestHandler, name: str, value: str, days: int) -> None:
    """Set an httponly, SameSite=Lax cookie for the whole site, and let this same request (the
    session Bokeh makes from it) see it already: the one way every vtrade cookie is issued."""
    handler.set_cookie(name, value, path="/", expires_days=days, httponly=True, samesite="Lax")
    morsel: Morsel[str] = Morsel()
    morsel.set(name, value, value)
    handler.request.cookies[name] = morsel


class RequestHook(AuthProvider, ABC):
    """Bokeh's per-request identity hook, used to set cookies on page loads (never to refuse).

    Bokeh calls ``get_user(handler)`` with the Tornado handler of every page request, before the
    session (and its document) is made: the only place in the page's request where a response
    cookie can be set without replacing Panel's page handler. Subclasses define ``_user``.
    """

    # Bokeh calls this with the handler, as its docstring says (its annotation says the request).
    @property
    def get_user(self) -> Callable[[RequestHandler], str]:  # type: ignore[override]
        return self._user

    @property
    def login_url(self) -> str:
        return "/"  # required by Bokeh; never used, since every request gets a user

    @abstractmethod
    def _user(self, handler: RequestHandler) -> str:
        """The user name for this page request (setting any cookie it needs on ``handler``)."""


class _AccountCookie(RequestHook):
    """Bokeh's per-request identity hook, used to give each browser its account cookie.

    Bokeh calls ``get_user(handler)`` with the Tornado handler of every page request, before the
    session (and its document) is made: the only place in the page's request where a response
    cookie can be set without replacing Panel's page handler. (Panel's own OAuth guest mode sets
    its ``is_guest`` cookie the same way.) Nobody is refused: the "user" is the account.
    """

    def __init__(self, accounts: BrowserAccounts) -> None:
        self._accounts = accounts
        super().__init__()

    def _user(self, handler: RequestHandler) -> str:
        cookie = handler.get_cookie(COOKIE)
        if isinstance(handler, WebSocketHandler):
            # The page load before it chose the account; the session re-verifies the cookie it
            # carried. A websocket cannot set a cookie, and must not open accounts.
            return "browser"
        if handler.request.path.rstrip("/").rsplit("/", 1)[-1] != "trader":
            return "guest"  # another page (/admin): it trades as nobody, so it opens no account
        account, fresh = self._accounts.account_for(cookie)
        if fresh is not None:
            give_cookie(handler, COOKIE, fresh, COOKIE_DAYS)
        return account


#: What Bokeh and Panel log when a write finds the browser gone (the connection is then closed).
_CLOSED_TAB_WARNING = "Failed sending message as connection was closed"


class _ClosedTabFilter(logging.Filter):
    """Drops Bokeh's and Panel's one warning for a write to a tab that has just closed, nothing else.

    A tab's websocket can die while a refresh is being written (the server learns of the close
    from that failing write, or a moment after it): not a fault of the server nor of the page,
    and with 30 students closing tabs the log would be nothing else. Every other record of the
    logger passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _CLOSED_TAB_WARNING


def _quiet_closed_tabs(loop: asyncio.AbstractEventLoop) -> None:
    """Let the writes that a closing tab leaves behind end quietly on ``loop`` (once per loop).

    Panel writes a refresh to the websocket as several frames (``panel.io.document``'s
    ``dispatch_tornado``); when the socket dies between two of them, the next raises at once and
    the task of the frame already sent is dropped, failed with ``WebSocketClosedError``: Python
    then prints "Task exception was never retrieved" and a traceback when the task is collected.
    Here exactly that (an unretrieved ``WebSocketClosedError``) is logged at debug level; every
    other unhandled exception goes to the handler that was there before, as it did.
    """
    previous = loop.get_exception_handler()
    if getattr(previous, "vtrade_quiet_closed_tabs", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), WebSocketClosedError):
            _log.debug("a write to a closed tab was dropped: %s", context.get("message"))
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.vtrade_quiet_closed_tabs = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
    # Bokeh's websocket view and Panel's own dispatch (a refresh's frames) both say it.
    for name in ("bokeh.server.views.ws", "panel.io.document"):
        writer_log = logging.getLogger(name)
        if not any(isinstance(f, _ClosedTabFilter) for f in writer_log.filters):
            writer_log.addFilter(_ClosedTabFilter())


def trader_app(live: LiveMarket, accounts: BrowserAccounts | None, period_ms: int = 500) -> Callable[[], Any]:
    """The ``/trader`` app: with ``accounts`` a browser gets its account back (cookie), without
    them every page load is a new account whose open orders end with the page."""
    import panel as pn

    from vtrade.ui.trader import trader_dashboard

    def app() -> Any:
        # Runs on the server's event loop (blocking or threaded serve alike): the place to reach it.
        _quiet_closed_tabs(asyncio.get_running_loop())
        if accounts is None:
            return trader_dashboard(live, period_ms=period_ms)
        # Verified again here: the session's copy of the cookie comes from its token, which a
        # client that skips the page (a websocket-only client) fills in itself.
        account, _ = accounts.account_for(pn.state.cookies.get(COOKIE))
        return trader_dashboard(live, period_ms=period_ms, account=account, cancel_on_leave=False)

    return app


def admin_app(live: LiveMarket) -> Callable[[], Any]:
    """The ``/admin`` app: the workers and groups on ``live``'s bus (:mod:`vtrade.ui.admin`)."""

    def app() -> Any:
        from vtrade.ui.admin import admin_page

        _quiet_closed_tabs(asyncio.get_running_loop())
        return admin_page(live)

    return app


def serve_apps(
    apps: dict[str, Callable[[], Any]],
    *,
    port: int,
    address: str,
    show: bool = False,
    threaded: bool = False,
    websocket_origin: str | list[str] | None = None,
    auth_provider: AuthProvider | None = None,
    extra_patterns: list[Any] | None = None,
) -> Any:
    """``pn.serve`` the ``apps`` (route -> app) the way every vtrade page is served: Panel's and
    Bokeh's files and the font from this server (never a CDN), quiet about closed tabs."""
    import panel as pn

    from vtrade.ui.resources import STATIC_DIR, STATIC_ROUTE, served_resources
    from vtrade.ui.trader import TITLE

    served_resources()  # never Panel's CDN, even after a notebook's inline setup in this process
    options: dict[str, Any] = {}
    if auth_provider is not None:
        options["auth_provider"] = auth_provider
    if extra_patterns:
        options["extra_patterns"] = extra_patterns
    return pn.serve(
        apps,
        port=port, address=address, show=show, threaded=threaded, title=TITLE, verbose=False,
        websocket_origin=websocket_origin, **options,
        # The dashboard's font (vtrade.ui.resources): a classroom without internet gets it from here.
        static_dirs={STATIC_ROUTE: str(STATIC_DIR)},
    )  # fmt: skip


def serve_trader(
    *,
    port: int = 5006,
    address: str = "localhost",
    config: LiveConfig | None = None,
    market: LiveMarket | None = None,
    data_dir: str | Path | None = None,
    show: bool = False,
    threaded: bool = False,
    period_ms: int = 500,
    websocket_origin: str | list[str] | None = None,
    classroom: Classroom | None = None,
) -> Any:
    """Start the shared market (unless ``market`` is given) and serve ``/trader`` with ``pn.serve``.

    Blocks unless ``threaded=True``, which returns the server thread (call ``.stop()``). Each
    browser gets its own account; all share one market. With ``data_dir`` the market is kept
    there, a browser gets its account back (signed cookie, secret in ``data_dir``) and leaving the
    page leaves its orders working; without it a page load is a new account whose open orders are
    cancelled when the page closes. With a ``classroom`` its pages are served alongside
    (``/join``, ``/student``, ``/teacher``, ``/projector``: :mod:`vtrade.ui.classroom_serve`).
    Example (what ``vtrade serve --data-dir ~/class`` runs)::

        serve_trader(port=5006, config=LiveConfig(speed=20), data_dir="~/class")
    """
    folder = prepare_data_dir(data_dir) if data_dir is not None else None
    # The secret and counter before the market starts: a bad data dir fails before any work.
    keys = (server_secret(folder), AccountNumbers(folder)) if folder is not None else None
    live = market if market is not None else shared_market(config, data_dir=folder)
    accounts: BrowserAccounts | None = None
    provider: AuthProvider | None = None
    if keys is not None:
        secret, numbers = keys
        accounts = BrowserAccounts(live, secret, numbers.next)
        provider = _AccountCookie(accounts)
    apps = {"trader": trader_app(live, accounts, period_ms), "admin": admin_app(live)}
    extra: list[Any] = []
    if live.resumed:
        print(f"vtrade: {live.resumed}", flush=True)
    print(f"vtrade: trader dashboard at {url_for(address, port)}", flush=True)
    print(f"vtrade: workers and lag at http://{address}:{port}/admin", flush=True)
    if classroom is not None:
        from vtrade.ui.classroom_serve import ClassCookies, class_apps, class_routes, join_url, teacher_url

        apps |= class_apps(classroom, period_ms=period_ms)
        provider = ClassCookies(classroom, provider)
        extra = class_routes(classroom)
        print(f"vtrade: students join at {join_url(address, port)}", flush=True)
        print(f"vtrade: teacher dashboard at {teacher_url(address, port, classroom.teacher_secret)}", flush=True)
    return serve_apps(apps, port=port, address=address, show=show, threaded=threaded,
                      websocket_origin=websocket_origin, auth_provider=provider, extra_patterns=extra)  # fmt: skip
