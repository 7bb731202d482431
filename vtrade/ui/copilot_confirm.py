"""What a confirm button does once a person's signature exists: register the signer's public key
for the account (once per process and key), audit the confirmation
(:class:`~vtrade.copilot.events.IntentConfirmed` with the intent's digest) and hand the signed
intent to the market's air-gap (``LiveMarket.submit_signed``), then say what happened in a
sentence.

The dashboard's card (the signature comes from the browser) and the notebook's widget (from the
signer subprocess) both end here, so they answer alike. The market decides everything (the gate's
checks, then the account rules); this only forwards and words the outcome.

>>> from dataclasses import dataclass
>>> @dataclass
... class Outcome:
...     ok: bool; code: str; reason: str; digest: str | None; client_order_id: str | None
>>> class Market:  # records what it was given; stands in for a LiveMarket
...     def __init__(self): self.calls = []
...     def register_key(self, account, public_key_hex): self.calls.append(("register", account))
...     def record_copilot(self, event): self.calls.append((type(event).__name__, event.digest[:8]))
...     def submit_signed(self, account, intent_json, signature_hex, public_key_hex):
...         self.calls.append(("submit", account)); return Outcome(True, "admitted", "", "d", "ann-1")
>>> m = Market()
>>> send_signed(m, "ann", "{}", "ab" * 64, "cd" * 32), send_signed(m, "ann", "{}", "ab" * 64, "cd" * 32)
((True, 'Sent to the exchange as ann-1'), (True, 'Sent to the exchange as ann-1'))
>>> [c[0] for c in m.calls]  # the key was registered once; each confirmation is audited
['register', 'IntentConfirmed', 'submit', 'IntentConfirmed', 'submit']
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from typing import Protocol

from vtrade.copilot.events import IntentConfirmed
from vtrade.core.events import Event

__all__ = ["SignedOutcomeLike", "SigningMarket", "outcome_sentence", "register_once", "send_signed"]


class SignedOutcomeLike(Protocol):
    """What the market answers to a signed intent (``vtrade.runtime.live.SignedOutcome``)."""

    @property
    def ok(self) -> bool: ...

    @property
    def code(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def client_order_id(self) -> str | None: ...


class SigningMarket(Protocol):
    """The market's air-gap entry points (:class:`vtrade.runtime.live.LiveMarket`)."""

    def register_key(self, account: str, public_key_hex: str) -> object: ...

    def record_copilot(self, event: Event) -> object: ...

    def submit_signed(self, account: str, intent_json: str, signature_hex: str,
                      public_key_hex: str) -> SignedOutcomeLike: ...  # fmt: skip


# Keys this process registered, per market: each RegisterKey is an event on the log, so a key is
# registered once, not at every confirm. (Weak: a market that is gone takes its entries along.)
_REGISTERED: weakref.WeakKeyDictionary[object, set[tuple[str, str]]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def register_once(market: SigningMarket, account: str, public_key: str) -> None:
    """Register ``public_key`` for ``account`` unless this process already did (ValueError from
    the market, nothing remembered, if it is not a key)."""
    with _LOCK:
        done = _REGISTERED.setdefault(market, set())
        if (account, public_key) in done:
            return
    market.register_key(account, public_key)
    with _LOCK:
        done.add((account, public_key))


def outcome_sentence(outcome: SignedOutcomeLike) -> str:
    """The market's answer as a person reads it.

    >>> from types import SimpleNamespace as NS
    >>> outcome_sentence(NS(ok=False, code="expired", reason="the intent expired", client_order_id=None))
    'Refused: the intent expired'
    """
    if outcome.ok:
        return f"Sent to the exchange as {outcome.client_order_id}"
    return f"Refused: {outcome.reason or outcome.code}"


def send_signed(market: SigningMarket, account: str, canonical: str, signature: str,
                public_key: str) -> tuple[bool, str]:  # fmt: skip
    """Submit a person's signature over ``canonical`` (the intent's JSON) for ``account``:
    ``(accepted, what happened)``."""
    register_once(market, account, public_key)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    # A person signed on their side (wall-clock time, as the copilot's other audit events).
    market.record_copilot(IntentConfirmed(time.time_ns(), account, digest, public_key))
    outcome = market.submit_signed(account, canonical, signature, public_key)
    return bool(outcome.ok), outcome_sentence(outcome)
