"""A returning browser gets its account back (issue 10 item 4): the signed token (pure), the data
directory and its secret, which account a cookie stands for, the cookie over real HTTP, and what a
closing page does to its orders with and without a data directory."""

from __future__ import annotations

import urllib.request
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtrade.core.tokens import sign_token, verify_token
from vtrade.runtime.datadir import (
    COUNTER_FILE,
    SECRET_FILE,
    AccountNumbers,
    DataDirError,
    default_data_dir,
    prepare_data_dir,
    server_secret,
)
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.localhost import free_port
from vtrade.ui.serve import COOKIE, BrowserAccounts, serve_trader

SECRET = b"0123456789abcdef0123456789abcdef"
SMALL = {"symbols": ("AAPL",), "speed": 0, "bots": False, "burn_in": 20_000}


# ------------------------------------------------------------------------------------ tokens
def test_a_token_carries_its_value_and_only_its_secret_verifies_it() -> None:
    token = sign_token("trader-12", SECRET)
    assert verify_token(token, SECRET) == "trader-12"
    assert verify_token(token, SECRET[::-1]) is None  # another server's secret
    assert verify_token(sign_token("trader-12", SECRET[::-1]), SECRET) is None


def test_a_tampered_token_is_refused() -> None:
    token = sign_token("trader-1", SECRET)
    value, mac = token.split(".")
    other = sign_token("trader-2", SECRET).split(".")[0]
    assert verify_token(f"{other}.{mac}", SECRET) is None  # someone else's name, this MAC
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert verify_token(f"{value}.{flipped}", SECRET) is None
    assert verify_token(f"{value}.", SECRET) is None
    assert verify_token(f".{mac}", SECRET) is None


@pytest.mark.parametrize(
    "bad", [None, 42, b"bytes", "", ".", "a.b.c", "no-dot", "!!!.???", "é.é", "x" * 5000 + ".y", "dHJhZGVy.\x00"]
)
def test_bad_input_is_refused_without_raising(bad: object) -> None:
    assert verify_token(bad, SECRET) is None


def test_short_secrets_and_empty_values_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sign_token("x", b"short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        verify_token("x.y", b"short")
    with pytest.raises(ValueError, match="non-empty"):
        sign_token("", SECRET)


@given(st.text(min_size=1, max_size=64), st.integers(min_value=0), st.characters(codec="ascii"))
def test_any_value_round_trips_and_any_one_character_change_is_refused(value: str, at: int, new: str) -> None:
    token = sign_token(value, SECRET)
    assert verify_token(token, SECRET) == value
    i = at % len(token)
    changed = token[:i] + new + token[i + 1 :]
    if changed != token:  # one spelling per token: any other string is refused
        assert verify_token(changed, SECRET) is None


# ---------------------------------------------------------------------------- data directory
def test_the_default_data_dir_follows_vtrade_then_xdg_then_home() -> None:
    assert default_data_dir({"VTRADE_STATE_DIR": "/d", "XDG_DATA_HOME": "/x", "HOME": "/h"}) == Path("/d")
    assert default_data_dir({"XDG_DATA_HOME": "/x", "HOME": "/h"}) == Path("/x/vtrade")
    assert default_data_dir({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/share/vtrade")  # XDG: ignored
    assert default_data_dir({"VTRADE_STATE_DIR": "", "HOME": "/h"}) == Path("/h/.local/share/vtrade")


def test_prepare_creates_the_dir_and_refuses_a_file_or_an_unwritable_place(tmp_path: Path) -> None:
    assert prepare_data_dir(tmp_path / "a" / "b") == (tmp_path / "a" / "b").resolve()
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(DataDirError, match="is a file, not a directory"):
        prepare_data_dir(afile)
    with pytest.raises(DataDirError, match="cannot be created"):
        prepare_data_dir(afile / "sub")
    with pytest.raises(DataDirError, match="cannot be created"):  # read-only even for root
        prepare_data_dir("/sys/vtrade-data")
    assert afile.read_text() == "x" and not Path("/sys/vtrade-data").exists()


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    first = server_secret(tmp_path)
    assert len(first) == 32 and server_secret(tmp_path) == first
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / SECRET_FILE).write_bytes(b"half")  # a crash while writing it
    with pytest.raises(DataDirError, match="damaged"):
        server_secret(tmp_path)


def test_account_numbers_are_never_given_twice_across_restarts(tmp_path: Path) -> None:
    assert [AccountNumbers(tmp_path).next() for _ in range(3)] == [1, 2, 3]
    (tmp_path / COUNTER_FILE).write_text("garbage")
    with pytest.raises(DataDirError, match="damaged"):
        AccountNumbers(tmp_path)


# ------------------------------------------------------------------- which account a cookie is
def _accounts(tmp_path: Path, secret: bytes = SECRET) -> BrowserAccounts:
    return BrowserAccounts(LiveMarket(LiveConfig(**SMALL)), secret, AccountNumbers(tmp_path).next)


def test_a_new_browser_gets_a_new_account_and_a_returning_one_the_same(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    a, cookie_a = accounts.account_for(None)
    b, cookie_b = accounts.account_for(None)
    assert a != b and cookie_a and cookie_b
    assert accounts.account_for(cookie_a) == (a, None)  # no new cookie: it keeps its own
    assert accounts.account_for(cookie_b) == (b, None)
    assert accounts.market.has_account(a) and accounts.market.has_account(b)


def test_a_forged_cookie_gets_a_fresh_account_never_someone_elses(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    victim, _ = accounts.account_for(None)
    for forged in (sign_token(victim, SECRET[::-1]), victim, f"{victim}.AAAA", "garbage"):
        name, cookie = accounts.account_for(forged)
        assert name != victim and cookie is not None and verify_token(cookie, SECRET) == name


def test_after_a_restart_a_cookie_names_the_same_account_and_new_names_do_not_collide(tmp_path: Path) -> None:
    """A new market on the same data dir (here the market keeps nothing, as before the durable
    market): the returning browser's name comes back, and a new browser never gets that name even
    if it comes first."""
    name, cookie = _accounts(tmp_path).account_for(None)
    restarted = _accounts(tmp_path)
    newcomer, _ = restarted.account_for(None)
    assert newcomer != name
    assert restarted.account_for(cookie) == (name, None) and restarted.market.has_account(name)


# -------------------------------------------------------------------------- over real HTTP


def _get(url: str, cookie: str | None = None) -> str | None:
    """GET the page; the Set-Cookie header of the response (None without one)."""
    req = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
        return resp.headers.get("Set-Cookie")


def _traders(market: LiveMarket) -> list[str]:
    return sorted(a for a in market.leaderboard().index if a.startswith("trader-"))


def _answers(url: str) -> bool:
    try:  # the icon, not the page: a page load would open an account
        with urllib.request.urlopen(url.replace("/trader", "/favicon.ico"), timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";")[0].split("=", 1)[1]


@pytest.mark.parametrize("data", [True, False], ids=["data-dir", "ephemeral"])
def test_the_served_page_sets_a_signed_http_only_cookie_only_with_a_data_dir(
    tmp_path: Path, data: bool, eventually: Callable[..., None]
) -> None:
    market = LiveMarket(LiveConfig(**SMALL)).start()
    port = free_port()
    folder = tmp_path / "data"
    server = serve_trader(port=port, address="127.0.0.1", market=market, threaded=True,
                          data_dir=folder if data else None)  # fmt: skip
    url = f"http://127.0.0.1:{port}/trader"
    try:
        eventually(lambda: _answers(url), 60, "the server to answer")
        first = _get(url)
        if not data:  # today's behaviour: no cookie, one account per page load, nothing on disk
            assert first is None and _get(url) is None
            assert len(_traders(market)) == 2 and not folder.exists()
            return
        assert first is not None
        assert "HttpOnly" in first and "SameSite=Lax" in first and "Path=/" in first
        secret = server_secret(folder)
        name = verify_token(_cookie_value(first), secret)
        assert name is not None and market.has_account(name)
        known = _traders(market)
        assert _get(url, _cookie_value(first)) is None  # a returning browser: no new cookie ...
        assert _traders(market) == known  # ... and no new account
        forged = _get(url, _cookie_value(first)[:-3] + "AAA")
        assert forged is not None
        assert verify_token(_cookie_value(forged), secret) not in (None, name)  # a new account, not theirs
    finally:
        server.stop()
        market.stop()


# ------------------------------------------------------------------------- a page that closes
@pytest.mark.parametrize("cancel_on_leave", [True, False])
def test_a_closing_page_cancels_open_orders_only_for_a_throwaway_account(cancel_on_leave: bool) -> None:
    """With a data dir (cancel_on_leave=False) the account comes back, so its orders stay."""
    from bokeh.document import Document
    from bokeh.server.contexts import BokehSessionContext
    from panel.io.state import set_curdoc

    from vtrade.ui.trader import trader_dashboard

    market = LiveMarket(LiveConfig(**SMALL))
    market.open_account("ada")
    assert market.submit("ada", "AAPL", "buy", 5, "limit", "100.00", "gtc").ok
    market.advance(3)
    doc = Document()
    # A served session's document, as Bokeh makes it (only what the dashboard reads of it).
    session = BokehSessionContext("s1", None, doc)  # type: ignore[arg-type]
    session._request = SimpleNamespace(arguments={}, cookies={}, headers={})  # type: ignore[assignment]
    doc._session_context = weakref.ref(session)  # type: ignore[assignment]
    with set_curdoc(doc):
        trader_dashboard(market, account="ada", cancel_on_leave=cancel_on_leave)
    for destroyed in list(doc.session_destroyed_callbacks):  # the browser went away
        destroyed(session)
    market.advance(3)
    status = market.orders("ada").status.iloc[0]
    assert status == ("cancelled" if cancel_on_leave else "accepted")
