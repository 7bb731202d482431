"""Order intents: what the copilot may propose and only a human may sign (DESIGN.md §9).

An :class:`OrderIntent` is one proposed order in a form that can be shown, hashed and signed
without ambiguity: its **canonical bytes** are RFC 8785 (JCS) JSON of a flat object whose values
are all strings or null. Quantities and prices are decimal strings in the instrument's units
(``"10"``, ``"0.01"``, ``"187.25"``) and times are decimal strings of integer nanoseconds, so no
float ever rounds and no integer ever exceeds JSON's exact range::

    {"account":"ann","expires_ns":"1765000000000000000","limit_price":"187.25","nonce":"9f…",
     "order_type":"limit","proposal_id":"p-3","quantity":"10","side":"buy","symbol":"AAPL",
     "tif":"day","v":"vtrade.intent/1"}

The signature (Ed25519) is over exactly those bytes and :attr:`OrderIntent.digest` is their
SHA-256, the hash the confirm card shows and the audit trail records. Reading an intent
(:func:`parse_intent`) re-canonicalises what it was sent, so key order and whitespace never
matter, while any changed, added or removed field does (it changes the bytes).

Everything a value may be is checked when an intent is made (:meth:`OrderIntent.make`) and again
when one is read: a symbol in its normal form (upper case, no spaces), a positive finite quantity
written in its shortest form, a limit price exactly when the order type needs one, a known time
in force, a 128-bit hex nonce, an expiry. Bad input raises :class:`IntentError` naming the field;
NaN, infinities, zero and negative sizes never reach a signature.

>>> i = OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity="10",
...                      order_type="limit", limit_price="187.25", tif="day", nonce="0" * 32, expires_ns=10**18)
>>> i.canonical()[:74]
b'{"account":"ann","expires_ns":"1000000000000000000","limit_price":"187.25"'
>>> parse_intent(i.canonical().replace(b",", b" , ")) == i
True
>>> OrderIntent.make(proposal_id="p-2", account="ann", symbol="aapl", side="buy", quantity="10",
...                  order_type="market", limit_price=None, tif="day", nonce="0" * 32, expires_ns=10**18)
Traceback (most recent call last):
...
vtrade.copilot.intent.IntentError: symbol: 'aapl' is not a symbol in normal form (upper case, e.g. 'AAPL')
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import rfc8785

from vtrade.core.errors import VtradeError

__all__ = [
    "INTENT_VERSION",
    "SIDES",
    "TIFS",
    "TYPES",
    "IntentError",
    "OrderIntent",
    "canonical_decimal",
    "parse_intent",
]

#: The intent format this code reads and writes; any other ``v`` is refused.
INTENT_VERSION = "vtrade.intent/1"
SIDES = ("buy", "sell")
#: The order types a copilot may propose: the ones a person reviews at a glance.
TYPES = ("market", "limit")
TIFS = ("day", "gtc", "ioc", "fok")

_FIELDS = ("v", "proposal_id", "account", "symbol", "side", "quantity", "order_type", "limit_price", "tif", "nonce",
           "expires_ns")  # fmt: skip
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-_/]{0,31}")
_NONCE = re.compile(r"[0-9a-f]{32}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}")
_DIGITS = re.compile(r"0|[1-9][0-9]{0,19}")
_MAX_BYTES = 4096  # an intent is ~300 bytes: anything far larger is not one


class IntentError(VtradeError):
    """An intent that cannot be made or read; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def canonical_decimal(value: object, field: str) -> str:
    """The shortest plain decimal string of a positive finite number (``"10"``, ``"0.5"``).

    >>> canonical_decimal("10.50", "quantity"), canonical_decimal(1e2, "quantity")
    ('10.5', '100')
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise IntentError(field, f"must be a number, got {type(value).__name__}")
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise IntentError(field, f"{value!r} is not a number") from None
    if not d.is_finite():
        raise IntentError(field, f"must be a finite number, got {value!r}")
    if d <= 0:
        raise IntentError(field, f"must be positive, got {value!r}")
    text = format(d.normalize(), "f")
    if len(text) > 32:
        raise IntentError(field, f"{value!r} has more digits than any instrument's grid")
    return text


def _text(value: object, field: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise IntentError(field, f"{value!r} is not {what}")
    return value


def _choice(value: object, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise IntentError(field, f"must be one of {', '.join(choices)}; got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One proposed order, exactly as it will be signed. Build it with :meth:`make` or
    :func:`parse_intent`; both check every field (the constructor alone does not)."""

    proposal_id: str
    account: str
    symbol: str
    side: str
    quantity: str
    order_type: str
    limit_price: str | None
    tif: str
    nonce: str
    expires_ns: str
    v: str = INTENT_VERSION

    @classmethod
    def make(
        cls,
        *,
        proposal_id: str,
        account: str,
        symbol: str,
        side: str,
        quantity: object,
        order_type: str,
        limit_price: object | None,
        tif: str,
        nonce: str,
        expires_ns: int,
    ) -> OrderIntent:
        """A checked intent; numbers in any exact form (``10``, ``"10.0"``) come out canonical."""
        if isinstance(expires_ns, bool) or not isinstance(expires_ns, int) or expires_ns <= 0:
            raise IntentError("expires_ns", f"must be a positive int of UTC nanoseconds, got {expires_ns!r}")
        return cls._checked(
            proposal_id=proposal_id, account=account, symbol=symbol, side=side,
            quantity=canonical_decimal(quantity, "quantity"), order_type=order_type,
            limit_price=None if limit_price is None else canonical_decimal(limit_price, "limit_price"),
            tif=tif, nonce=nonce, expires_ns=str(expires_ns), v=INTENT_VERSION,
        )  # fmt: skip

    @classmethod
    def _checked(cls, **f: Any) -> OrderIntent:
        if f["v"] != INTENT_VERSION:
            raise IntentError("v", f"unknown intent version {f['v']!r} (this vtrade reads {INTENT_VERSION!r})")
        _text(f["proposal_id"], "proposal_id", _ID, "a proposal id")
        _text(f["account"], "account", _ID, "an account name")
        if not isinstance(f["symbol"], str) or _SYMBOL.fullmatch(f["symbol"]) is None:
            raise IntentError("symbol", f"{f['symbol']!r} is not a symbol in normal form (upper case, e.g. 'AAPL')")
        _choice(f["side"], "side", SIDES)
        _choice(f["order_type"], "order_type", TYPES)
        _choice(f["tif"], "tif", TIFS)
        _text(f["nonce"], "nonce", _NONCE, "a nonce (32 lower-case hex digits)")
        for name in ("quantity", "limit_price"):
            value = f[name]
            if value is None and name == "limit_price":
                continue
            if not isinstance(value, str) or canonical_decimal(value, name) != value:
                raise IntentError(name, f"{value!r} is not a positive decimal in its shortest form")
        if (f["order_type"] == "limit") != (f["limit_price"] is not None):
            raise IntentError("limit_price", "a limit order needs a limit price and a market order has none")
        if not isinstance(f["expires_ns"], str) or _DIGITS.fullmatch(f["expires_ns"]) is None:
            raise IntentError("expires_ns", f"{f['expires_ns']!r} is not a decimal string of UTC nanoseconds")
        return cls(**f)

    def canonical(self) -> bytes:
        """The RFC 8785 bytes that are shown, hashed and signed."""
        return rfc8785.dumps(asdict(self))

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical bytes, hex: the intent's name in the audit trail."""
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def expires_at(self) -> int:
        return int(self.expires_ns)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise IntentError(k, "appears twice")
        out[k] = v
    return out


def parse_intent(data: bytes | str) -> OrderIntent:
    """The intent in ``data`` (JSON in any key order and spacing), every field checked; or
    :class:`IntentError` for anything else: not JSON, duplicated, missing or extra fields, a
    value of the wrong kind, an unknown version."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if not isinstance(data, bytes) or len(data) > _MAX_BYTES:
        raise IntentError("intent", f"must be at most {_MAX_BYTES} bytes of JSON")
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntentError("intent", f"is not JSON text ({exc})") from None
    if not isinstance(obj, dict):
        raise IntentError("intent", "must be a JSON object")
    missing = [k for k in _FIELDS if k not in obj]
    extra = sorted(k for k in obj if k not in _FIELDS)
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise IntentError("intent", "; ".join(parts))
    return OrderIntent._checked(**obj)


def _refuse_constant(name: str) -> object:
    raise IntentError("intent", f"{name} is not a JSON number")
