"""The air-gap: the only way a copilot's proposal becomes an order (DESIGN.md §9).

A copilot never enters orders. It proposes an :class:`~vtrade.copilot.intent.OrderIntent`; a
person reviews it and signs its canonical bytes on their own side; what reaches the ``orders``
log is a :class:`SignedOrder` entry, and the broker hands it to :meth:`Gate.admit` before
anything else. The gate admits an intent only when all of these hold, in this order (the first
that fails is the refusal's code):

1. ``malformed`` — the intent reads (:func:`~vtrade.copilot.intent.parse_intent`), every field valid;
   ``unknown_version`` — its ``v`` is one this code knows;
2. ``wrong_account`` — the entry's account is the intent's account;
3. ``unknown_key`` — the public key was registered for that account (:class:`RegisterKey`);
4. ``bad_signature`` — the signature is that key's over exactly the intent's canonical bytes;
5. ``expired`` — the entry was received before the intent's expiry;
6. ``nonce_reused`` — the nonce was never admitted before.

An admitted intent's nonce is spent even if the account rules then refuse the order. The gate is
part of the broker's state: it is checkpointed with the market and rebuilt by re-running the
``orders`` log, so a nonce stays spent across restarts. Times are the ``received_ns`` the runtime
stamped on the entry (wall-clock UTC ns, journaled with it), so a re-run reaches the same
verdicts. Spent nonces are forgotten once their intent has expired (it is refused as expired
from then on), which keeps the gate's memory bounded by what is still live.

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> from vtrade.copilot.intent import OrderIntent
>>> from vtrade.copilot.signing import public_hex, sign
>>> key = Ed25519PrivateKey.generate()
>>> gate = Gate()
>>> gate.register(RegisterKey(0, "ann", public_hex(key)))
>>> i = OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity=10,
...                      order_type="market", limit_price=None, tif="day", nonce="ab" * 16, expires_ns=2000)
>>> entry = SignedOrder(0, "ann", i.canonical().decode(), sign(key, i.canonical()), public_hex(key), 1000)
>>> gate.admit(entry).ok, gate.admit(entry).code
(True, 'nonce_reused')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vtrade.copilot.intent import IntentError, OrderIntent, parse_intent
from vtrade.copilot.signing import valid_public_key, verify
from vtrade.core.events import Event, register_event

__all__ = ["REFUSALS", "Admitted", "Gate", "Refused", "RegisterKey", "SignedOrder", "Verdict"]

#: Why the gate refuses, as the codes the audit trail and the person see.
REFUSALS: dict[str, str] = {
    "malformed": "the signed order is not a valid intent",
    "unknown_version": "the intent's format version is not one this vtrade reads",
    "wrong_account": "the intent is for another account than the one that sent it",
    "unknown_key": "the signing key is not registered for this account",
    "bad_signature": "the signature is not valid for exactly this intent",
    "expired": "the intent expired before it was confirmed",
    "nonce_reused": "this intent was already used (its nonce is spent)",
}


class SignedOrder(Event, frozen=True, array_like=True, tag=True):
    """A person's signature over a copilot's intent, entered on the ``orders`` log.

    ``intent`` is the JSON text that was signed (any key order or spacing: the gate
    re-canonicalises it), ``signature`` and ``public_key`` are hex, ``received_ns`` is the
    wall-clock time the runtime received it (what expiry is checked against)."""

    account: str
    intent: str
    signature: str
    public_key: str
    received_ns: int


class RegisterKey(Event, frozen=True, array_like=True, tag=True):
    """``public_key`` (hex) may sign intents for ``account`` from now on (a person's device)."""

    account: str
    public_key: str


register_event(SignedOrder, RegisterKey)


@dataclass(frozen=True, slots=True)
class Admitted:
    """The intent may go on to the account rules as an ordinary order."""

    intent: OrderIntent
    digest: str
    ok: bool = True
    code: str = "admitted"


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing happens; ``digest`` is the intent's hash when it could be read (else None)."""

    code: str
    reason: str
    digest: str | None
    ok: bool = False


Verdict = Admitted | Refused


@dataclass
class Gate:
    """Registered keys per account and the nonces spent (with their expiries)."""

    keys: dict[str, set[str]] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)  # nonce -> its intent's expiry (ns)

    def register(self, entry: RegisterKey) -> None:
        """Add a public key for an account; ValueError (nothing changes) if it is not one."""
        if not valid_public_key(entry.public_key):
            raise ValueError(f"{entry.public_key!r} is not an Ed25519 public key (64 lower-case hex digits)")
        self.keys.setdefault(entry.account, set()).add(entry.public_key)

    def admit(self, entry: SignedOrder) -> Verdict:
        """The verdict on one signed order (see the module docstring for the checks)."""
        try:
            intent = parse_intent(entry.intent)
        except IntentError as exc:
            code = "unknown_version" if exc.field == "v" else "malformed"
            return Refused(code, f"{REFUSALS[code]}: {exc}", None)
        digest = intent.digest
        if intent.account != entry.account:
            return Refused("wrong_account", REFUSALS["wrong_account"], digest)
        if entry.public_key not in self.keys.get(entry.account, ()):
            return Refused("unknown_key", REFUSALS["unknown_key"], digest)
        if not verify(entry.public_key, entry.signature, intent.canonical()):
            return Refused("bad_signature", REFUSALS["bad_signature"], digest)
        now = entry.received_ns
        if now >= intent.expires_at:
            return Refused("expired", REFUSALS["expired"], digest)
        if intent.nonce in self.spent:
            return Refused("nonce_reused", REFUSALS["nonce_reused"], digest)
        self._forget_expired(now)
        self.spent[intent.nonce] = intent.expires_at
        return Admitted(intent, digest)

    def _forget_expired(self, now: int) -> None:
        # An expired intent is refused before its nonce is looked at, so its nonce need not be kept.
        if len(self.spent) > 1024:
            self.spent = {n: t for n, t in self.spent.items() if t > now}

