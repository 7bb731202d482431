"""The notebook's confirm widget for a copilot's proposal (ipywidgets).

The ``%%copilot`` magic (:mod:`vtrade.notebook_magic`) never executes anything: for each proposal
it shows a :class:`ConfirmWidget`. The widget renders from the proposal's canonical bytes
(:class:`~vtrade.ui.copilot_card.CardData`: the bytes themselves, their SHA-256, the provenance
warnings), and its *Confirm* button (a person's click in the notebook) signs exactly those bytes
with the account's key, **in a subprocess** (:func:`vtrade.runtime.signer.sign_in_subprocess`: the
kernel never loads the private key), then submits the signature through the market's air-gap
(:func:`~vtrade.ui.copilot_confirm.send_signed`) and shows the outcome. *Reject* sends nothing.
Each button works once; afterwards the card says what happened.

``sign(intent) -> signature hex`` and ``public_key() -> hex`` are given by whoever makes the
widget (the magic binds them to the account's key store).

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> from vtrade.copilot.intent import OrderIntent
>>> from vtrade.copilot.signing import public_hex, sign
>>> key = Ed25519PrivateKey.generate()  # the doctest signs in-process; the magic never does
>>> i = OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity=10,
...                      order_type="market", limit_price=None, tif="day", nonce="ab" * 16, expires_ns=2 * 10**18)
>>> class Market:  # stands in for a LiveMarket's air-gap: accepts everything
...     def register_key(self, account, public_key_hex): pass
...     def record_copilot(self, event): pass
...     def submit_signed(self, account, intent_json, signature_hex, public_key_hex):
...         from types import SimpleNamespace as NS
...         return NS(ok=True, code="admitted", reason="", client_order_id="ann-1")
>>> w = ConfirmWidget(CardData.from_bytes(i.canonical(), i.digest), market=Market(),
...                   sign=lambda intent: sign(key, intent.canonical()), public_key=lambda: public_hex(key))
>>> w.confirm.click()
>>> w.status, w.outcome, w.confirm.disabled
('sent', 'Sent to the exchange as ann-1', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from vtrade.copilot.intent import OrderIntent
from vtrade.ui.copilot_card import CardData, render_card_html, render_outcome_html
from vtrade.ui.copilot_confirm import SigningMarket, send_signed

__all__ = ["ConfirmWidget"]


class ConfirmWidget(widgets.VBox):
    """One proposal's card with *Confirm and sign* and *Reject* buttons (see the module notes).

    ``status`` is ``pending``, ``sent``, ``refused``, ``rejected`` or ``failed``; ``outcome`` says
    what happened in a sentence.
    """

    def __init__(
        self,
        card: CardData,
        *,
        market: SigningMarket,
        sign: Callable[[OrderIntent], str],
        public_key: Callable[[], str],
        **kwargs: Any,
    ) -> None:
        self.card = card
        self.status = "pending"
        self.outcome = ""
        self._market = market
        self._sign = sign
        self._public_key = public_key
        self.body = widgets.HTML(render_card_html(card))
        self.confirm = widgets.Button(description="Confirm and sign", button_style="primary", icon="check",
                                      tooltip="Sign exactly the bytes shown above with your key, and send the order",
                                      layout=widgets.Layout(width="auto"))  # fmt: skip
        self.reject = widgets.Button(description="Reject", tooltip="Send nothing", layout=widgets.Layout(width="auto"))
        self.confirm.on_click(self._on_confirm)
        self.reject.on_click(self._on_reject)
        super().__init__([self.body, widgets.HBox([self.confirm, self.reject])], **kwargs)

    def __repr__(self) -> str:
        # What a frontend without widgets (or a saved notebook) shows instead of the buttons.
        state = "waiting for your confirmation" if self.status == "pending" else self.outcome
        return f"Proposed order {self.card.summary} (sha256 {self.card.digest[:16]}…): {state}"

    def _finish(self, status: str, ok: bool, text: str) -> None:
        self.status, self.outcome = status, text
        self.confirm.disabled = self.reject.disabled = True
        self.body.value = render_card_html(self.card, render_outcome_html(ok, text))

    def _on_confirm(self, button: widgets.Button) -> None:
        if self.status != "pending":
            return
        self.confirm.disabled = self.reject.disabled = True  # one click, one signature
        intent = self.card.intent
        try:
            if intent.canonical().decode("utf-8") != self.card.canonical:  # what is signed is what is shown
                raise ValueError("the intent's bytes are not the ones shown")
            public_key = self._public_key()  # first: the key store makes the account's key on first use
            signature = self._sign(intent)
            ok, text = send_signed(self._market, intent.account, self.card.canonical, signature, public_key)
        except Exception as exc:  # the signer or the market: the card says what failed, nothing was sent
            self._finish("failed", False, f"Not sent: {' '.join(str(exc).split())[:300]}")
            return
        self._finish("sent" if ok else "refused", ok, text)

    def _on_reject(self, button: widgets.Button) -> None:
        if self.status == "pending":
            self._finish("rejected", False, "Rejected: nothing was sent")
