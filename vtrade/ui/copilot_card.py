"""The confirm card of a copilot's proposal: what a person reads before signing an order.

A card is made from the proposal's **canonical bytes** (:meth:`CardData.of`), never from the
model's words about them: the bytes are read back as an intent (every field checked), their
SHA-256 is computed here and must equal the digest the proposal carries, and the card shows
exactly those bytes, that digest and the provenance flags (values that did not come from the
person's own words). What is signed later is those same bytes. The notebook's confirm widget
(:mod:`vtrade.ui.copilot_widget`) shows :func:`render_card_html`; the dashboard's card
(:mod:`vtrade.ui.copilot_signer`) builds the same structure in the browser, from the same bytes
it signs.

Everything shown is escaped: an account or a flag cannot carry markup onto the card.

>>> from vtrade.copilot.intent import OrderIntent
>>> i = OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity=10,
...                      order_type="limit", limit_price="187.25", tif="day", nonce="ab" * 16, expires_ns=2 * 10**18)
>>> card = CardData.from_bytes(i.canonical(), i.digest, flags=("symbol came from a headline",))
>>> card.summary
'BUY 10 AAPL · limit $187.25 · day'
>>> "symbol came from a headline" in render_card_html(card)
True
>>> CardData.from_bytes(i.canonical(), "0" * 64)
Traceback (most recent call last):
...
vtrade.ui.copilot_card.CardError: the proposal's digest does not match its bytes: it is not shown and cannot be signed
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from vtrade.copilot.intent import IntentError, OrderIntent, parse_intent
from vtrade.core.errors import VtradeError

__all__ = ["CARD_CSS", "PROVENANCE_WORDS", "CardData", "CardError", "ProposalLike", "render_card_html",
           "render_outcome_html"]  # fmt: skip

#: What each provenance value means to the person reading the card.
PROVENANCE_WORDS = {
    "user": "your own words",
    "tool": "tool output (a quote, headline, note or description), not your words",
    "model": "the model alone (neither your words nor any tool's output)",
}


class CardError(VtradeError, ValueError):
    """A proposal that cannot be shown for signing (its bytes do not read, or do not hash to
    its digest)."""


class ProposalLike(Protocol):
    """What a card needs of a copilot's proposal (:class:`vtrade.runtime.copilot_service.Proposal`)."""

    @property
    def canonical(self) -> bytes: ...

    @property
    def digest(self) -> str: ...

    @property
    def flags(self) -> tuple[str, ...]: ...

    @property
    def provenance(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class CardData:
    """One proposal as a card shows it: its canonical text, the intent read from it, the
    SHA-256 computed from it, and what the person is warned about."""

    canonical: str
    intent: OrderIntent
    digest: str
    flags: tuple[str, ...] = ()
    provenance: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, proposal: ProposalLike) -> CardData:
        """The card of a copilot's proposal (see :meth:`from_bytes`)."""
        return cls.from_bytes(proposal.canonical, proposal.digest, flags=tuple(proposal.flags),
                              provenance=proposal.provenance)  # fmt: skip

    @classmethod
    def from_bytes(
        cls,
        canonical: bytes,
        digest: str,
        *,
        flags: tuple[str, ...] = (),
        provenance: Mapping[str, str] | None = None,
    ) -> CardData:
        """Check ``canonical`` and build the card; :class:`CardError` if the bytes are not an
        intent in canonical form or their SHA-256 is not ``digest``."""
        if not isinstance(canonical, bytes):
            raise CardError(f"a proposal's canonical form must be bytes, got {type(canonical).__name__}")
        try:
            intent = parse_intent(canonical)
        except IntentError as exc:
            raise CardError(f"the proposal is not a valid order intent ({exc})") from None
        if intent.canonical() != canonical:
            raise CardError("the proposal's bytes are not in canonical form: they are not shown and cannot be signed")
        mine = hashlib.sha256(canonical).hexdigest()
        if mine != digest:
            raise CardError("the proposal's digest does not match its bytes: it is not shown and cannot be signed")
        # The order fields first, in the order a person reads an order; any others after them.
        rank = {"symbol": 0, "side": 1, "quantity": 2, "limit_price": 3}
        pairs = tuple(sorted(((str(k), str(v)) for k, v in (provenance or {}).items()),
                             key=lambda p: (rank.get(p[0], 9), p[0])))  # fmt: skip
        return cls(canonical.decode("utf-8"), intent, mine, tuple(str(f) for f in flags), pairs)

    @property
    def summary(self) -> str:
        """The order in words: ``BUY 10 AAPL · limit $187.25 · day``."""
        i = self.intent
        kind = f"limit ${i.limit_price}" if i.limit_price is not None else "market"
        return f"{i.side.upper()} {i.quantity} {i.symbol} · {kind} · {i.tif}"

    @property
    def expires(self) -> pd.Timestamp:
        """When the intent stops being accepted (UTC)."""
        return pd.Timestamp(self.intent.expires_at, unit="ns", tz="UTC")

    @property
    def flagged(self) -> bool:
        """Whether anything on the card did not come from the person's own words."""
        return bool(self.flags) or any(v != "user" for _, v in self.provenance)


CARD_CSS = """
.vt-proposal { border: 2px solid #1565c0; border-radius: 8px; padding: 10px 12px; background: #fff;
  font-size: 14px; max-width: 640px; box-sizing: border-box; }
.vt-proposal.vt-flagged { border-color: #e65100; }
.vt-proposal .vt-p-head { font-weight: 600; color: #1565c0; margin-bottom: 4px; }
.vt-proposal .vt-p-summary { font-size: 18px; font-weight: 700; margin: 4px 0; }
.vt-proposal .vt-p-flags { background: #fff3e0; border: 1px solid #e65100; color: #bf360c; border-radius: 6px;
  padding: 6px 8px; margin: 6px 0; font-weight: 600; }
.vt-proposal .vt-p-flags ul { margin: 4px 0 0 18px; padding: 0; font-weight: 400; }
.vt-proposal .vt-p-prov { font-size: 12px; color: #444; margin: 4px 0; }
.vt-proposal .vt-p-prov .vt-p-warn { color: #bf360c; font-weight: 600; }
.vt-proposal pre.vt-p-bytes { white-space: pre-wrap; word-break: break-all; background: #f5f7fa;
  border: 1px solid #dde3ea; border-radius: 4px; padding: 6px; font-size: 12px; margin: 4px 0; }
.vt-proposal .vt-p-digest { font: 12px ui-monospace, monospace; word-break: break-all; }
.vt-proposal .vt-p-label { font-size: 11px; color: #666; text-transform: uppercase; letter-spacing: .04em; }
.vt-proposal .vt-p-expiry { font-size: 12px; color: #444; }
.vt-proposal .vt-p-outcome { margin-top: 6px; font-weight: 600; }
.vt-proposal .vt-p-ok { color: #1b5e20; }
.vt-proposal .vt-p-bad { color: #b71c1c; }
.vt-proposal .vt-p-buttons { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 8px; }
.vt-proposal button { font: inherit; padding: 6px 14px; border-radius: 4px; border: 1px solid #1565c0;
  cursor: pointer; }
.vt-proposal button.vt-p-confirm { background: #1565c0; color: #fff; font-weight: 600; }
.vt-proposal button.vt-p-reject { background: #fff; color: #1565c0; }
.vt-proposal button:disabled { opacity: .5; cursor: default; }
"""


def _provenance_html(card: CardData) -> str:
    if not card.provenance:
        return ""
    parts = []
    for field, source in card.provenance:
        words = html.escape(PROVENANCE_WORDS.get(source, source))
        cls = "" if source == "user" else " class='vt-p-warn'"
        parts.append(f"<span{cls}>{html.escape(field)}: {words}</span>")
    return "<div class='vt-p-prov'>Where the values came from: " + " · ".join(parts) + "</div>"


def _flags_html(card: CardData) -> str:
    if not card.flagged:
        return ""
    flags = card.flags or tuple(f"{f} came from {PROVENANCE_WORDS.get(v, v)}" for f, v in card.provenance
                                if v != "user")  # fmt: skip
    items = "".join(f"<li>{html.escape(f)}</li>" for f in flags)
    return ("<div class='vt-p-flags'>⚠ Check this order: parts of it did not come from your own words"
            f"<ul>{items}</ul></div>")  # fmt: skip


def render_card_html(card: CardData, outcome: str = "") -> str:
    """The card as HTML (the notebook widget's body): the order in words, the warnings, the
    exact bytes to be signed, their SHA-256 and the expiry; ``outcome`` (already HTML) below."""
    flagged = " vt-flagged" if card.flagged else ""
    return (
        f"<style>{CARD_CSS}</style><div class='vt-proposal{flagged}'>"
        "<div class='vt-p-head'>Proposed order · nothing happens unless you confirm</div>"
        f"<div class='vt-p-summary'>{html.escape(card.summary)}</div>"
        f"<div>for account <b>{html.escape(card.intent.account)}</b></div>"
        f"{_flags_html(card)}{_provenance_html(card)}"
        "<div class='vt-p-label'>Exactly what you sign (canonical JSON)</div>"
        f"<pre class='vt-p-bytes'>{html.escape(card.canonical)}</pre>"
        "<div class='vt-p-label'>SHA-256</div>"
        f"<div class='vt-p-digest'>{card.digest}</div>"
        f"<div class='vt-p-expiry'>Expires {card.expires.strftime('%Y-%m-%d %H:%M:%S')} UTC</div>"
        f"<div class='vt-p-outcome'>{outcome}</div></div>"
    )


def render_outcome_html(ok: bool, text: str) -> str:
    """One line under a card: what happened (✓ green, ⚠ red), escaped.

    >>> render_outcome_html(False, "Refused: <expired>")
    "<span class='vt-p-bad'>⚠ Refused: &lt;expired&gt;</span>"
    """
    cls, mark = ("vt-p-ok", "✓") if ok else ("vt-p-bad", "⚠")
    return f"<span class='{cls}'>{mark} {html.escape(text)}</span>"
