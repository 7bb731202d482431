"""The air-gap's execution path on a real live market (issue 14, "Done means", first bullet).

Each property of DESIGN.md §9 is tested against a :class:`LiveMarket`: only a valid signature
by a key registered for the account, over exactly the intent, unexpired and with an unused nonce
(also after a restart), trades; the domain re-validates the intent and the account rules judge
it like any order; every refusal and execution is in the audit trail with the intent's digest;
a refusal changes nothing.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtrade.copilot.airgap import REFUSALS
from vtrade.copilot.events import (
    CopilotAnswered,
    CopilotAsked,
    IntentConfirmed,
    IntentExecuted,
    IntentRefused,
    ProposalMade,
)
from vtrade.copilot.intent import IntentError, OrderIntent
from vtrade.copilot.signing import public_hex, sign
from vtrade.core.events import Trade
from vtrade.execution.accounts import SessionLimits
from vtrade.portfolio.book import UnknownAccountError
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.live_copilot import COPILOT_COLUMNS, COPILOT_TOPIC, SignedOutcome
from vtrade.runtime.live_log import ENTRIES

CONFIG = LiveConfig(symbols=("AAPL", "XOM"), speed=0, bots=False, burn_in=20_000)
NOW = 1_760_000_000 * 10**9  # the fake wall clock's start (UTC ns, October 2025)
MINUTE = 60 * 10**9
FIELDS = ("v", "proposal_id", "account", "symbol", "side", "quantity", "order_type", "limit_price", "tif", "nonce",
          "expires_ns")  # fmt: skip


class FakeWallClock:
    """Stands in for ``time.time_ns`` (the market's ``wall_clock``): expiry is tested by moving
    it, not by sleeping."""

    def __init__(self, ns: int = NOW) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


class Person:
    """Someone with a signing key (their device), as the confirm button would use it."""

    def __init__(self, account: str) -> None:
        self.account = account
        self._key = Ed25519PrivateKey.generate()
        self.pub = public_hex(self._key)

    def sign(self, data: bytes | str) -> str:
        return sign(self._key, data.encode() if isinstance(data, str) else data)


def intent(account: str, **over: Any) -> OrderIntent:
    """A buy of 1 AAPL with a limit far below the market (it rests: no cash moves), fresh nonce."""
    fields: dict[str, Any] = {"proposal_id": f"p-{secrets.token_hex(4)}", "account": account, "symbol": "AAPL",
                              "side": "buy", "quantity": "1", "order_type": "limit", "limit_price": "100",
                              "tif": "day", "nonce": secrets.token_hex(16), "expires_ns": NOW + MINUTE}  # fmt: skip
    return OrderIntent.make(**(fields | over))


def as_dict(i: OrderIntent) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(i.canonical())
    return out


Setup = tuple[LiveMarket, "FakeWallClock", dict[str, "Person"]]


def market(tmp: Path | None = None, clock: FakeWallClock | None = None, config: LiveConfig = CONFIG,
           accounts: tuple[str, ...] = ("ann", "bob")) -> Setup:  # fmt: skip
    clock = clock or FakeWallClock()
    m = LiveMarket(config, data_dir=tmp, wall_clock=clock)
    people = {}
    for a in accounts:
        if not m.has_account(a):
            m.open_account(a, cash=100_000)
        people[a] = Person(a)
        m.register_key(a, people[a].pub)
    m.advance(3)
    return m, clock, people


def state(m: LiveMarket, account: str) -> tuple[Any, ...]:
    """Everything a refusal must leave as it was: the blotter, fills, cash and positions, and
    the orders that went to the exchange."""
    p = m.portfolio(account)
    iso = "iso"
    return (m.orders(account).to_json(date_format=iso), m.fills(account).to_json(date_format=iso),
            p["summary"]["cash"], p["positions"].to_json(date_format=iso), m.order_counts(account))  # fmt: skip


def verdicts(m: LiveMarket, account: str | None = None) -> pd.DataFrame:
    log = m.copilot_log(account)
    return log[log.type.isin(["IntentExecuted", "IntentRefused"])].reset_index(drop=True)


# ---------------------------------------------------------------------------- the happy path
def test_a_signed_intent_trades_through_the_account_rules_and_is_audited() -> None:
    m, _, who = market()
    i = intent("ann", order_type="market", limit_price=None)
    out = m.submit_signed("ann", i.canonical().decode(), who["ann"].sign(i.canonical()), who["ann"].pub)
    assert out == SignedOutcome(True, "executed", "", i.digest, "ann-1")
    m.advance(2)
    orders = m.orders("ann")
    assert orders.status.tolist() == ["filled"] and orders.note.tolist() == [f"copilot intent {i.digest[:16]}"]
    assert m.portfolio("ann")["summary"]["cash"] < 100_000
    (row,) = verdicts(m).to_dict("records")
    assert (row["type"], row["account"], row["digest"], row["client_order_id"], row["accepted"], row["code"]) == (
        "IntentExecuted",
        "ann",
        i.digest,
        "ann-1",
        True,
        "executed",
    )
    assert list(m.copilot_log().columns) == COPILOT_COLUMNS


# ---------------------------------------------------------------------------- refused: who signed what
def _refusals(people: dict[str, Person]) -> dict[str, tuple[str, str, str, str, str]]:
    """name -> (sent as, intent text, signature, public key, expected code)."""
    ann, bob = people["ann"], people["bob"]
    good = intent("ann")
    text = good.canonical().decode()
    stranger = Person("ann")  # a key nobody registered
    v2 = as_dict(intent("ann")) | {"v": "vtrade.intent/2"}
    v2_text = json.dumps(v2)
    dup = text[:-1] + ',"symbol":"XOM"}'
    return {
        "unsigned": ("ann", text, "", ann.pub, "bad_signature"),
        "signature of zeros": ("ann", text, "0" * 128, ann.pub, "bad_signature"),
        "signature not hex": ("ann", text, "z" * 128, ann.pub, "bad_signature"),
        "signature by another key": ("ann", text, stranger.sign(good.canonical()), ann.pub, "bad_signature"),
        "unregistered key": ("ann", text, stranger.sign(good.canonical()), stranger.pub, "unknown_key"),
        "not a key": ("ann", text, ann.sign(good.canonical()), "nope", "unknown_key"),
        "bob's registered key on ann's intent": ("ann", text, bob.sign(good.canonical()), bob.pub, "unknown_key"),
        "ann's intent sent as bob": ("bob", text, ann.sign(good.canonical()), ann.pub, "wrong_account"),
        "not JSON": ("ann", text[:-1], ann.sign(text[:-1]), ann.pub, "malformed"),
        "not an object": ("ann", "[]", ann.sign("[]"), ann.pub, "malformed"),
        "empty": ("ann", "", ann.sign(""), ann.pub, "malformed"),
        "a duplicated field": ("ann", dup, ann.sign(dup), ann.pub, "malformed"),
        "unknown version": ("ann", v2_text, ann.sign(v2_text), ann.pub, "unknown_version"),
    }


REFUSAL_CASES = list(_refusals({"ann": Person("ann"), "bob": Person("bob")}))


@pytest.mark.parametrize("case", REFUSAL_CASES)
def test_unsigned_malformed_wrong_key_and_unknown_version_are_refused_and_change_nothing(case: str) -> None:
    m, _, who = market()
    sent_as, text, sig, pub, code = _refusals(who)[case]
    before = {a: state(m, a) for a in who}
    entries = m._log.bus.end_offsets(ENTRIES)[0]
    out = m.submit_signed(sent_as, text, sig, pub)
    assert (out.ok, out.code, out.client_order_id) == (False, code, None)
    assert out.reason.startswith(REFUSALS[code])
    m.advance(2)
    assert {a: state(m, a) for a in who} == before  # no order, no cash, no position
    assert m._log.bus.end_offsets(ENTRIES)[0] == entries + 1  # the attempt itself is on the log (audit)
    (row,) = verdicts(m).to_dict("records")
    assert (row["type"], row["account"], row["code"], row["digest"]) == ("IntentRefused", sent_as, code, out.digest)
    if code in ("malformed", "unknown_version"):  # an intent that does not read has no digest
        assert out.digest is None
    else:
        assert out.digest is not None and len(out.digest) == 64


# ---------------------------------------------------------------------------- exactly these bytes
CHANGES: dict[str, tuple[dict[str, Any], str]] = {
    "v": ({"v": "vtrade.intent/1.1"}, "unknown_version"),
    "proposal_id": ({"proposal_id": "p-other"}, "bad_signature"),
    "account": ({"account": "bob"}, "bad_signature"),
    "symbol": ({"symbol": "XOM"}, "bad_signature"),
    "side": ({"side": "sell"}, "bad_signature"),
    "quantity": ({"quantity": "2"}, "bad_signature"),
    "order_type": ({"order_type": "market", "limit_price": None}, "bad_signature"),
    "limit_price": ({"limit_price": "99.99"}, "bad_signature"),
    "tif": ({"tif": "gtc"}, "bad_signature"),
    "nonce": ({"nonce": "f" * 32}, "bad_signature"),
    "expires_ns": ({"expires_ns": str(NOW + MINUTE + 1)}, "bad_signature"),
}
assert set(CHANGES) == set(FIELDS)


@pytest.mark.parametrize("field", FIELDS)
def test_changing_any_field_after_signing_is_refused(field: str) -> None:
    m, _, who = market()
    # bob registers ann's key too (one shared device): an intent moved to bob's account is still
    # refused, because the signature covers the account.
    m.register_key("bob", who["ann"].pub)
    signed = intent("ann")
    sig = who["ann"].sign(signed.canonical())
    change, code = CHANGES[field]
    tampered = as_dict(signed) | change
    before = state(m, "ann"), state(m, "bob")
    out = m.submit_signed(tampered["account"], json.dumps(tampered), sig, who["ann"].pub)
    assert (out.ok, out.code) == (False, code)
    assert (state(m, "ann"), state(m, "bob")) == before
    # The untouched intent still goes through: the refusal did not spend its nonce.
    assert m.submit_signed("ann", signed.canonical().decode(), sig, who["ann"].pub).ok


@pytest.mark.parametrize("field", FIELDS)
def test_removing_any_field_after_signing_is_refused(field: str) -> None:
    m, _, who = market()
    signed = intent("ann")
    sig = who["ann"].sign(signed.canonical())
    cut = {k: v for k, v in as_dict(signed).items() if k != field}
    out = m.submit_signed("ann", json.dumps(cut), sig, who["ann"].pub)
    assert (out.ok, out.code, out.digest) == (False, "malformed", None)
    assert f"missing {field}" in out.reason
    assert m.orders("ann").empty


@pytest.mark.parametrize("extra", [{"note": "urgent"}, {"signature": "00"}, {"Symbol": "XOM"}, {"": ""},
                                   {"client_order_id": "ann-9"}, {"limit_price ": "1"}])  # fmt: skip
def test_adding_any_field_after_signing_is_refused(extra: dict[str, str]) -> None:
    m, _, who = market()
    signed = intent("ann")
    sig = who["ann"].sign(signed.canonical())
    out = m.submit_signed("ann", json.dumps(as_dict(signed) | extra), sig, who["ann"].pub)
    assert (out.ok, out.code) == (False, "malformed") and "unexpected" in out.reason
    assert m.orders("ann").empty


_MARKET: Setup | None = None


def _shared() -> Setup:
    global _MARKET
    if _MARKET is None:
        _MARKET = market()
    return _MARKET


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(FIELDS), spaces=st.lists(st.sampled_from([" ", "\n", "\t", "\r\n", "  "]),
                                                        min_size=4, max_size=4))  # fmt: skip
def test_key_order_and_whitespace_do_not_matter(order: list[str], spaces: list[str]) -> None:
    m, _, who = _shared()
    signed = intent("ann")
    sig = who["ann"].sign(signed.canonical())
    d = as_dict(signed)
    a, b, c, e = spaces
    text = "{" + a + ("," + b).join(f"{json.dumps(k)}{c}:{e}{json.dumps(d[k])}" for k in order) + a + "}"
    out = m.submit_signed("ann", text, sig, who["ann"].pub)
    assert out.ok and out.digest == signed.digest, out


def test_the_signature_is_over_the_canonical_bytes_not_the_text_sent() -> None:
    m, _, who = market()
    i = intent("ann")
    spaced = json.dumps(as_dict(i), indent=2)
    out = m.submit_signed("ann", spaced, who["ann"].sign(spaced), who["ann"].pub)
    assert (out.ok, out.code, out.digest) == (False, "bad_signature", i.digest)


# ---------------------------------------------------------------------------- time and nonces
def test_an_intent_received_at_or_after_its_expiry_is_refused() -> None:
    m, clock, who = market()
    i = intent("ann", expires_ns=NOW + MINUTE)
    sig = who["ann"].sign(i.canonical())
    clock.ns = NOW + MINUTE  # the first instant it is no longer valid
    out = m.submit_signed("ann", i.canonical().decode(), sig, who["ann"].pub)
    assert (out.ok, out.code, out.digest) == (False, "expired", i.digest)
    clock.ns = NOW + MINUTE - 1  # a nanosecond earlier it is (its nonce was not spent by the refusal)
    assert m.submit_signed("ann", i.canonical().decode(), sig, who["ann"].pub).ok
    assert verdicts(m).code.tolist() == ["expired", "executed"]


def test_a_nonce_is_used_once_even_by_another_properly_signed_intent() -> None:
    m, _, who = market()
    i = intent("ann")
    sig = who["ann"].sign(i.canonical())
    assert m.submit_signed("ann", i.canonical().decode(), sig, who["ann"].pub).ok
    replay = m.submit_signed("ann", i.canonical().decode(), sig, who["ann"].pub)
    assert (replay.ok, replay.code) == (False, "nonce_reused")
    twin = intent("ann", nonce=i.nonce, quantity="3")  # a new proposal that reuses the nonce
    again = m.submit_signed("ann", twin.canonical().decode(), who["ann"].sign(twin.canonical()), who["ann"].pub)
    assert (again.ok, again.code) == (False, "nonce_reused")
    assert len(m.orders("ann")) == 1


def _kill(m: LiveMarket) -> None:
    """As if the process died: the data dir is let go of without a checkpoint."""
    assert m._durable is not None
    m._durable.close()
    m._durable = None


@pytest.mark.parametrize("stop", ["killed", "closed", "checkpoint then killed"])
def test_a_spent_nonce_stays_spent_and_the_audit_whole_after_a_restart(tmp_path: Path, stop: str) -> None:
    m, clock, who = market(tmp_path)
    ann = who["ann"]
    spent = [intent("ann") for _ in range(3)]
    sigs = [ann.sign(i.canonical()) for i in spent]
    m.record_copilot(CopilotAsked(NOW, "ann", "c-1", "buy 1 AAPL at 100", "scripted"))
    assert m.submit_signed("ann", spent[0].canonical().decode(), sigs[0], ann.pub).ok
    if stop == "checkpoint then killed":
        assert m.checkpoint()
    assert m.submit_signed("ann", spent[1].canonical().decode(), sigs[1], ann.pub).ok
    assert not m.submit_signed("ann", spent[1].canonical().decode(), sigs[1], ann.pub).ok  # reused
    m.record_copilot(IntentConfirmed(NOW, "ann", spent[2].digest, ann.pub))
    assert m.submit_signed("ann", spent[2].canonical().decode(), sigs[2], ann.pub).ok
    log = m.copilot_log()
    orders = m.orders("ann")
    if stop == "closed":
        m.close()
    else:
        _kill(m)
    back = LiveMarket(CONFIG, data_dir=tmp_path, wall_clock=clock)
    pd.testing.assert_frame_equal(back.copilot_log(), log)  # neither lost nor doubled by the re-run
    pd.testing.assert_frame_equal(back.orders("ann"), orders)
    for i, sig in zip(spent, sigs, strict=True):
        out = back.submit_signed("ann", i.canonical().decode(), sig, ann.pub)
        assert (out.ok, out.code, out.digest) == (False, "nonce_reused", i.digest)
    fresh = intent("ann")  # the registered key came back too
    assert back.submit_signed("ann", fresh.canonical().decode(), ann.sign(fresh.canonical()), ann.pub).ok
    assert verdicts(back).code.tolist() == ["executed", "executed", "nonce_reused", "executed",
                                            "nonce_reused", "nonce_reused", "nonce_reused", "executed"]  # fmt: skip
    back.close()


def test_a_verdict_lost_in_a_kill_is_made_again_by_the_rerun_once(tmp_path: Path) -> None:
    m, clock, who = market(tmp_path)
    i = intent("ann")
    assert m.submit_signed("ann", i.canonical().decode(), who["ann"].sign(i.canonical()), who["ann"].pub).ok
    log = m.copilot_log()
    _kill(m)
    # The process died after journaling the entry and before journaling its verdict.
    (db,) = tmp_path.glob("market-*/log.duckdb")
    con = duckdb.connect(str(db))
    con.execute(f"DELETE FROM journal WHERE topic = '{COPILOT_TOPIC}'")
    con.close()
    back = LiveMarket(CONFIG, data_dir=tmp_path, wall_clock=clock)
    pd.testing.assert_frame_equal(back.copilot_log(), log)
    back.close()
    again = LiveMarket(CONFIG, data_dir=tmp_path, wall_clock=clock)  # and it is journaled now
    pd.testing.assert_frame_equal(again.copilot_log(), log)
    again.close()


def test_an_expired_intent_is_refused_after_a_restart(tmp_path: Path) -> None:
    m, _, who = market(tmp_path)
    i = intent("ann", expires_ns=NOW + MINUTE)
    sig = who["ann"].sign(i.canonical())
    m.close()
    later = FakeWallClock(NOW + 2 * MINUTE)  # the server was down past the intent's expiry
    back = LiveMarket(CONFIG, data_dir=tmp_path, wall_clock=later)
    out = back.submit_signed("ann", i.canonical().decode(), sig, who["ann"].pub)
    assert (out.ok, out.code) == (False, "expired")
    back.close()


# ---------------------------------------------------------------------------- values
BAD_NUMBERS = ["NaN", "nan", float("nan"), "inf", "-Infinity", float("inf"), 0, "0", "0.000", "-1", -5, "-0.01",
               Decimal("-1"), Decimal("NaN"), True, None, "", "ten", "1e400x"]  # fmt: skip
BAD_SYMBOLS = ["aapl", "Aapl", " AAPL", "AAPL ", "AA PL", "", "ÄAPL", "AAPL\n", "$AAPL", "-X", "A" * 40]


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
@pytest.mark.parametrize("field", ["quantity", "limit_price"])
def test_bad_numbers_are_refused_before_signing(field: str, value: object) -> None:
    if field == "limit_price" and value is None:
        return  # a limit price of None is a market order's (tested with the order types)
    with pytest.raises(IntentError) as refused:
        intent("ann", **{field: value})
    assert refused.value.field == field


@pytest.mark.parametrize("value", BAD_SYMBOLS, ids=repr)
def test_symbols_not_in_normal_form_are_refused_before_signing(value: str) -> None:
    with pytest.raises(IntentError) as refused:
        intent("ann", symbol=value)
    assert refused.value.field == "symbol"


HANDMADE = {
    "quantity NaN": ('"quantity":"1"', '"quantity":"NaN"'),
    "quantity NaN literal": ('"quantity":"1"', '"quantity":NaN'),
    "quantity Infinity": ('"quantity":"1"', '"quantity":"Infinity"'),
    "quantity zero": ('"quantity":"1"', '"quantity":"0"'),
    "quantity negative": ('"quantity":"1"', '"quantity":"-1"'),
    "quantity a number": ('"quantity":"1"', '"quantity":1'),
    "quantity not shortest": ('"quantity":"1"', '"quantity":"1.0"'),
    "quantity exponent": ('"quantity":"1"', '"quantity":"1E0"'),
    "price NaN": ('"limit_price":"100"', '"limit_price":"nan"'),
    "price -inf": ('"limit_price":"100"', '"limit_price":"-inf"'),
    "price zero": ('"limit_price":"100"', '"limit_price":"0"'),
    "price negative": ('"limit_price":"100"', '"limit_price":"-100"'),
    "price leading zero": ('"limit_price":"100"', '"limit_price":"0100"'),
    "symbol lower case": ('"symbol":"AAPL"', '"symbol":"aapl"'),
    "symbol with a space": ('"symbol":"AAPL"', '"symbol":"AAPL "'),
    "side in capitals": ('"side":"buy"', '"side":"BUY"'),
    "an unknown order type": ('"order_type":"limit"', '"order_type":"stop"'),
    "expiry a number": (f'"expires_ns":"{NOW + MINUTE}"', f'"expires_ns":{NOW + MINUTE}'),
}


@pytest.mark.parametrize("case", list(HANDMADE))
def test_a_handcrafted_bad_intent_that_is_signed_is_refused_by_the_gate(case: str) -> None:
    m, _, who = market()
    good = intent("ann").canonical().decode()
    old, new = HANDMADE[case]
    assert old in good
    bad = good.replace(old, new)
    before = state(m, "ann")
    out = m.submit_signed("ann", bad, who["ann"].sign(bad), who["ann"].pub)  # signed exactly as sent
    assert (out.ok, out.code, out.digest) == (False, "malformed", None)
    m.advance(1)
    assert state(m, "ann") == before
    assert verdicts(m).code.tolist() == ["malformed"]


@pytest.mark.parametrize(("over", "code"), [
    ({"limit_price": "100.005"}, "off_tick"),  # valid intent, but off this stock's one-cent grid
    ({"quantity": "0.5"}, "off_lot"),
    ({"symbol": "ZZZZ"}, "unknown_symbol"),
])  # fmt: skip
def test_the_domain_revalidates_a_signed_intent_and_refuses_without_raising(over: dict[str, str], code: str) -> None:
    m, _, who = market()
    i = intent("ann", **over)
    before = state(m, "ann")
    out = m.submit_signed("ann", i.canonical().decode(), who["ann"].sign(i.canonical()), who["ann"].pub)
    assert (out.ok, out.code, out.digest, out.client_order_id) == (False, code, i.digest, None)
    assert state(m, "ann") == before
    (row,) = verdicts(m).to_dict("records")
    assert (row["type"], row["code"], row["digest"], row["text"]) == ("IntentRefused", code, i.digest, out.reason)
    # Admitted by the gate, so its nonce is spent: the same signature cannot be tried again.
    again = m.submit_signed("ann", i.canonical().decode(), who["ann"].sign(i.canonical()), who["ann"].pub)
    assert again.code == "nonce_reused"


# ---------------------------------------------------------------------------- the account rules
def test_class_limits_and_buying_power_apply_to_signed_intents_as_to_typed_orders() -> None:
    limits = SessionLimits(allowed_symbols=frozenset({"AAPL"}), max_position_pct_nav=Decimal("10"))
    m, _, who = market(config=LiveConfig(symbols=("AAPL", "XOM"), speed=0, bots=False, burn_in=20_000, limits=limits))
    ann = who["ann"]
    cases = [
        ({"symbol": "XOM"}, "symbol_not_allowed"),
        ({"quantity": "200", "limit_price": "174"}, "max_position"),  # ~$35k of a $100k account: over 10 %
        ({"quantity": "100000", "limit_price": "100", "side": "buy"}, None),  # refused too (whichever rule first)
    ]
    for over, code in cases:
        i = intent("ann", **over)
        typed = m.submit("bob", i.symbol, i.side, i.quantity, i.order_type, i.limit_price, i.tif)
        out = m.submit_signed("ann", i.canonical().decode(), ann.sign(i.canonical()), ann.pub)
        assert not typed.ok and not out.ok
        assert (out.code, out.reason) == (typed.code, typed.reason)  # the same rule, the same words
        if code is not None:
            assert out.code == code, out
        assert out.client_order_id is not None and out.digest == i.digest
        assert m.orders("ann").set_index("client_order_id").at[out.client_order_id, "status"] == "rejected"
        row = verdicts(m).iloc[-1]
        assert (row.type, row.accepted, row.digest, row.client_order_id, row.text) == (
            "IntentExecuted",
            False,
            i.digest,
            out.client_order_id,
            out.reason,
        )
    assert m.portfolio("ann")["summary"]["cash"] == 100_000 and m.fills("ann").empty


def test_an_unknown_account_raises_and_enters_nothing() -> None:
    m, _, who = market()
    i = intent("zed")
    entries = m._log.bus.end_offsets(ENTRIES)[0]
    with pytest.raises(UnknownAccountError):
        m.submit_signed("zed", i.canonical().decode(), who["ann"].sign(i.canonical()), who["ann"].pub)
    with pytest.raises(UnknownAccountError):
        m.register_key("zed", who["ann"].pub)
    assert m._log.bus.end_offsets(ENTRIES)[0] == entries and m.copilot_log().empty


@pytest.mark.parametrize("bad", [None, 7, b"ab" * 32, "", "AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, " " + "ab" * 32])
def test_a_bad_public_key_is_a_clear_error_and_nothing_is_entered(bad: object) -> None:
    m, _, _ = market()
    entries = m._log.bus.end_offsets(ENTRIES)[0]
    with pytest.raises(ValueError, match="is not an Ed25519 public key"):
        m.register_key("ann", bad)  # type: ignore[arg-type]
    assert m._log.bus.end_offsets(ENTRIES)[0] == entries


def test_registering_a_key_twice_enters_it_once() -> None:
    m, _, who = market()
    entries = m._log.bus.end_offsets(ENTRIES)[0]
    m.register_key("ann", who["ann"].pub)
    assert m._log.bus.end_offsets(ENTRIES)[0] == entries


@pytest.mark.parametrize("args", [(None, "", ""), ("{}", None, ""), ("{}", "", 5), (b"{}", "", "")])
def test_arguments_that_are_not_text_are_a_type_error(args: tuple[object, object, object]) -> None:
    m, _, _ = market()
    entries = m._log.bus.end_offsets(ENTRIES)[0]
    with pytest.raises(TypeError):
        m.submit_signed("ann", *args)  # type: ignore[arg-type]
    assert m._log.bus.end_offsets(ENTRIES)[0] == entries and m.copilot_log().empty


@pytest.mark.parametrize("text", ["{" + " " * 20_000 + "}", '{"account":"\ud800"}'])
def test_text_too_large_or_not_unicode_is_refused_and_audited_without_entering_it(text: str) -> None:
    m, _, who = market()
    entries = m._log.bus.end_offsets(ENTRIES)[0]
    out = m.submit_signed("ann", text, "00", who["ann"].pub)
    assert (out.ok, out.code, out.digest) == (False, "malformed", None)
    assert m._log.bus.end_offsets(ENTRIES)[0] == entries
    assert verdicts(m).code.tolist() == ["malformed"]


# ---------------------------------------------------------------------------- the audit trail
def test_the_audit_trail_holds_every_event_in_order_with_the_digest() -> None:
    m, clock, who = market()
    ann, bob = who["ann"], who["bob"]
    outcomes: list[tuple[str, SignedOutcome]] = []
    m.record_copilot(CopilotAsked(NOW, "ann", "c-1", "buy 1 AAPL at 100", "scripted", None))
    ok = intent("ann")
    provenance = (("symbol", "user"), ("side", "user"), ("quantity", "tool"))
    m.record_copilot(ProposalMade(NOW, "ann", "c-1", ok.proposal_id, ok.digest, ok.canonical().decode(), provenance,
                                  ("quantity",)))  # fmt: skip
    m.record_copilot(CopilotAnswered(NOW, "ann", "c-1", "Here is the order to confirm.", ("quote", "propose_order")))
    m.record_copilot(IntentConfirmed(NOW, "ann", ok.digest, ann.pub))
    for who_, sent_as, i, sig in [
        (ann, "ann", ok, ann.sign(ok.canonical())),
        (ann, "ann", ok, ann.sign(ok.canonical())),  # replayed
        (bob, "bob", ok, bob.sign(ok.canonical())),  # sent as another account
        (ann, "ann", intent("ann", symbol="ZZZZ"), None),  # not an order of this market
        (ann, "ann", intent("ann", quantity="1000000"), None),  # over buying power
    ]:  # fmt: skip
        out = m.submit_signed(sent_as, i.canonical().decode(), sig or who_.sign(i.canonical()), who_.pub)
        outcomes.append((sent_as, out))
    clock.ns += 2 * MINUTE
    late = intent("ann")
    outcomes.append(("ann", m.submit_signed("ann", late.canonical().decode(), ann.sign(late.canonical()), ann.pub)))
    log = m.copilot_log()
    assert log.type.tolist()[:4] == ["CopilotAsked", "ProposalMade", "CopilotAnswered", "IntentConfirmed"]
    assert log.offset.tolist() == list(range(len(log)))
    v = verdicts(m)
    assert len(v) == len(outcomes)  # one verdict per signed order, in order
    for (sent_as, out), row in zip(outcomes, v.to_dict("records"), strict=True):
        assert (row["account"], row["digest"]) == (sent_as, out.digest)
        if row["type"] == "IntentRefused":
            assert (row["code"], row["text"]) == (out.code, out.reason)
        else:
            assert (row["client_order_id"], row["accepted"]) == (out.client_order_id, out.ok)
    assert [o.code for _, o in outcomes] == ["executed", "nonce_reused", "wrong_account", "unknown_symbol",
                                             "insufficient_buying_power", "expired"]  # fmt: skip
    proposal = log[log.type == "ProposalMade"].iloc[0]
    assert (proposal["text"], proposal["flags"], proposal["digest"]) == (
        "buy 1 AAPL limit 100 (day)",
        ["quantity"],
        ok.digest,
    )
    assert m.copilot_log("bob").type.tolist() == ["IntentRefused"]
    assert m.copilot_log(since=len(log) - 1).offset.tolist() == [len(log) - 1]
    assert m._log.bus.partitions(COPILOT_TOPIC) == 1


def test_the_copilot_service_cannot_record_executions_refusals_or_anything_else() -> None:
    m, _, _ = market()
    for event in (IntentExecuted(NOW, "ann", "d" * 64, "ann-1", True),
                  IntentRefused(NOW, "ann", None, "expired", "forged"),
                  Trade(1, 1, "AAPL", 1, 100, 1), "CopilotAsked", None):  # fmt: skip
        with pytest.raises(TypeError, match="the copilot service records"):
            m.record_copilot(event)  # type: ignore[arg-type]
    for bad in (CopilotAsked(NOW, "ann", "c", 42, "m"),  # type: ignore[arg-type]
                CopilotAsked(-1, "ann", "c", "q", "m"),
                CopilotAsked(NOW, " ", "c", "q", "m"),
                CopilotAnswered(NOW, "ann", "c", "a", ["quote"]),  # type: ignore[arg-type]
                CopilotAsked(NOW, "ann", "c", "x" * 300_000, "m")):  # fmt: skip
        with pytest.raises(ValueError):
            m.record_copilot(bad)
    with pytest.raises(UnknownAccountError):
        m.record_copilot(CopilotAsked(NOW, "zed", "c", "q", "m"))
    assert m.copilot_log().empty


def test_an_empty_trail_is_an_empty_frame_with_the_columns() -> None:
    m, _, _ = market()
    log = m.copilot_log("ann")
    assert log.empty and list(log.columns) == COPILOT_COLUMNS and str(log.ts.dtype) == "datetime64[ns, UTC]"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(st.text(max_size=300), st.builds(json.dumps, st.dictionaries(st.sampled_from(FIELDS), st.text()))),
    signature=st.one_of(st.text(max_size=130), st.text("0123456789abcdef", min_size=128, max_size=128)),
)
def test_whatever_is_sent_nothing_trades_without_the_key_and_every_attempt_is_audited(
    text: str, signature: str
) -> None:
    m, _, who = _shared()
    before, seen = state(m, "ann"), len(verdicts(m))
    out = m.submit_signed("ann", text, signature, who["ann"].pub)
    assert not out.ok and out.code in REFUSALS and out.client_order_id is None
    assert state(m, "ann") == before
    last = verdicts(m).iloc[seen:]
    assert last[["type", "code"]].values.tolist() == [["IntentRefused", out.code]]
