"""Signing in the browser: the dashboard's half of the air-gap (DESIGN.md §9).

The dashboard's server talks to the model, so it must never hold the key that signs orders.
The key lives in the person's browser instead:

- :class:`BrowserKey` makes (once per account and browser) an Ed25519 key pair with WebCrypto,
  ``crypto.subtle.generateKey({name: "Ed25519"}, false, ["sign", "verify"])``: the private key is
  **non-extractable** (no script, ours included, can read its bytes) and is kept in the browser's
  IndexedDB under the account's name. Only the raw public key (hex) is sent to the server, which
  registers it for the account (``LiveMarket.register_key``).
- :class:`ProposalCard` shows a proposal from its canonical bytes (the order in words, the
  provenance warnings, the exact bytes and their SHA-256, computed in the browser and compared
  with the server's). Its *Confirm* button, on a person's click (``event.isTrusted``: a script's
  synthetic click does nothing), signs exactly the bytes the card shows and sends back only the
  signature and the public key; the server then calls ``LiveMarket.submit_signed`` (through the
  ``confirm`` callback it was given) and shows the outcome on the card.

Where WebCrypto Ed25519 is unavailable (an old browser, or a page that is not a secure context:
plain http from another machine) the card says so plainly and cannot confirm; there is no
server-side key to fall back to. Messages from the browser are checked (their shape, and that the
digest the browser computed is the card's) before anything is called.

>>> from vtrade.copilot.intent import OrderIntent
>>> from vtrade.ui.copilot_card import CardData
>>> i = OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity=10,
...                      order_type="market", limit_price=None, tif="day", nonce="ab" * 16, expires_ns=2 * 10**18)
>>> sent = []
>>> card = ProposalCard.of(CardData.from_bytes(i.canonical(), i.digest),
...                        confirm=lambda c, sig, pk: sent.append(sig) or (True, "Sent as ann-1"))
>>> card._handle_msg({"action": "confirm", "digest": "0" * 64, "signature": "ab" * 64, "public_key": "cd" * 32})
>>> card.status, sent
('pending', [])
>>> card._handle_msg({"action": "confirm", "digest": i.digest, "signature": "ab" * 64, "public_key": "cd" * 32})
>>> card.status, card.outcome, len(sent)
('sent', 'Sent as ann-1', 1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, ClassVar

import param
from panel.custom import JSComponent

from vtrade.ui.copilot_card import CARD_CSS, PROVENANCE_WORDS, CardData

__all__ = ["STATUSES", "BrowserKey", "ConfirmCallback", "ProposalCard", "RejectCallback"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")

#: A card's states: waiting for the person, being sent, sent to the market, refused by it (or by
#: the gate), rejected by the person, or unable to sign in this browser.
STATUSES = ("pending", "sending", "sent", "refused", "rejected", "unsupported")

#: ``confirm(card, signature_hex, public_key_hex) -> (ok, what happened)``
ConfirmCallback = Callable[["ProposalCard", str, str], tuple[bool, str]]
RejectCallback = Callable[["ProposalCard"], None]

# The browser code both components share: the key per account (made once, kept in IndexedDB,
# never extractable) and hex helpers. A race between two components making the first key of
# an account ends with both using the one IndexedDB kept (``add`` refuses the second).
_KEY_JS = r"""
const DB = 'vtrade-signing-keys', STORE = 'ed25519'
const WHY_INSECURE = 'This page is not a secure context (it is served over plain http from another '
  + 'machine), so the browser offers no WebCrypto and cannot sign orders here. Open the dashboard '
  + 'over https, or on localhost. The server never signs for you.'
const WHY_UNSUPPORTED = 'This browser cannot make Ed25519 signatures with WebCrypto (Chromium 137+, '
  + 'Firefox 129+ and Safari 17+ can), so it cannot sign orders. The server never signs for you.'
const memory = new Map()  // only where IndexedDB is unavailable: the key then lives as long as the page

class SignerUnavailable extends Error {}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('')
}

function request(req) {
  return new Promise((ok, fail) => { req.onsuccess = () => ok(req.result); req.onerror = () => fail(req.error) })
}

function openDb() {
  const req = indexedDB.open(DB, 1)
  req.onupgradeneeded = () => req.result.createObjectStore(STORE)
  return request(req)
}

async function stored(account) {
  const db = await openDb()
  try { return await request(db.transaction(STORE).objectStore(STORE).get(account)) } finally { db.close() }
}

async function keep(account, pair) {
  const db = await openDb()
  try {
    await request(db.transaction(STORE, 'readwrite').objectStore(STORE).add(pair, account))
    return pair
  } catch (err) {
    if (err && err.name === 'ConstraintError') { return await stored(account) }  // another tab made it first
    throw err
  } finally { db.close() }
}

async function keyFor(account) {
  if (!window.isSecureContext || !globalThis.crypto || !crypto.subtle) { throw new SignerUnavailable(WHY_INSECURE) }
  let idb = true
  try {
    const pair = await stored(account)
    if (pair) { return pair }
  } catch (err) { idb = false }
  if (!idb && memory.has(account)) { return memory.get(account) }
  let pair
  try {
    pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
  } catch (err) { throw new SignerUnavailable(WHY_UNSUPPORTED) }
  if (!idb) { memory.set(account, pair); return pair }
  return await keep(account, pair)
}

async function publicHex(pair) { return hex(await crypto.subtle.exportKey('raw', pair.publicKey)) }

function why(err) {
  if (err instanceof SignerUnavailable) { return err.message }
  return 'Signing failed in this browser: ' + String((err && err.message) || err)
}

function el(tag, cls, text) {
  const node = document.createElement(tag)
  if (cls) { node.className = cls }
  if (text !== undefined) { node.textContent = text }  // text, never markup
  return node
}
"""


class BrowserKey(JSComponent):
    """This browser's signing key for ``account``: made (or found) on page load, its public key
    sent once to the server (``register(public_key_hex) -> bool``, which registers it with the
    market). Shows one line: the key's fingerprint once registered, or why this browser cannot
    sign."""

    account = param.String(default="", doc="the account the key signs for")
    public_key = param.String(default="", doc="the registered public key (hex), once the browser sent it")
    unsupported = param.String(default="", doc="why this browser cannot sign ('' while it can)")

    _esm = _KEY_JS + r"""
export function render({ model, el: host }) {
  const line = el('div', 'vt-key', 'Preparing this browser\u2019s signing key\u2026')
  const show = () => {
    if (model.unsupported) {
      line.className = 'vt-key vt-key-unsupported'
      line.textContent = '\u26a0 ' + model.unsupported
    } else if (model.public_key) {
      line.className = 'vt-key vt-key-ready'
      line.textContent = 'Orders you confirm are signed in this browser (Ed25519 key '
        + model.public_key.slice(0, 8) + '\u2026, which never leaves it)'
    }
  }
  model.on('public_key', show)
  model.on('unsupported', show)
  show()
  keyFor(model.account)
    .then(async (pair) => model.send_msg({ action: 'key', public_key: await publicHex(pair) }))
    .catch((err) => model.send_msg({ action: 'unsupported', reason: why(err) }))
  return line
}
"""
    _stylesheets: ClassVar[list[str]] = [
        ".vt-key { font-size: 12px; color: #555; } .vt-key-unsupported { color: #b71c1c; font-weight: 600; }"
    ]

    def __init__(self, *, register: Callable[[str], bool], **params: Any) -> None:
        self._register = register
        super().__init__(**params)

    def _handle_msg(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        action = data.get("action")
        if action == "key":
            key = data.get("public_key")
            if isinstance(key, str) and _HEX64.fullmatch(key) and key != self.public_key and self._register(key):
                self.public_key = key
        elif action == "unsupported":
            self.unsupported = _reason(data.get("reason"))


class ProposalCard(JSComponent):
    """One proposal's confirm card in the dashboard (see the module notes). ``confirm`` is
    called once, with the signature and public key the browser sent, when the person confirms;
    ``reject`` when they reject. ``status`` is one of :data:`STATUSES`, ``outcome`` a sentence."""

    account = param.String(default="", doc="the intent's account (whose browser key signs)")
    canonical = param.String(default="", doc="the intent's canonical JSON: shown and signed as is")
    digest = param.String(default="", doc="SHA-256 of canonical (hex), checked again in the browser")
    summary = param.String(default="", doc="the order in words (the browser writes its own from the bytes)")
    flags = param.List(default=[], item_type=str, doc="what the person is warned about")
    provenance = param.List(default=[], doc="[field, source] pairs: user, tool or model")
    status: param.Selector[str] = param.Selector(default="pending", objects=list(STATUSES))
    outcome = param.String(default="", doc="what happened, in a sentence")

    _esm = _KEY_JS + "\nconst WORDS = " + json.dumps(PROVENANCE_WORDS) + r"""

function summaryOf(intent) {
  const kind = intent.limit_price === null ? 'market' : 'limit $' + intent.limit_price
  const dot = ' \u00b7 '
  return intent.side.toUpperCase() + ' ' + intent.quantity + ' ' + intent.symbol + dot + kind + dot + intent.tif
}

export function render({ model, el: host }) {
  const canonical = model.canonical, told = model.digest, account = model.account
  let intent = null
  try { intent = JSON.parse(canonical) } catch (err) { intent = null }
  const flags = model.flags, prov = model.provenance.filter((p) => p[1] !== 'user')
  const card = el('div', 'vt-proposal' + (flags.length || prov.length ? ' vt-flagged' : ''))
  card.append(el('div', 'vt-p-head', 'Proposed order \u00b7 nothing happens unless you confirm'))
  card.append(el('div', 'vt-p-summary', intent ? summaryOf(intent) : 'unreadable intent'))
  const who = el('div', null, 'for account ')
  who.append(el('b', null, intent ? intent.account : ''))
  card.append(who)
  if (flags.length || prov.length) {
    const box = el('div', 'vt-p-flags', '\u26a0 Check this order: parts of it did not come from your own words')
    const list = el('ul')
    const items = flags.length ? flags : prov.map((p) => p[0] + ' came from ' + (WORDS[p[1]] || p[1]))
    for (const f of items) { list.append(el('li', null, f)) }
    box.append(list)
    card.append(box)
  }
  if (model.provenance.length) {
    const line = el('div', 'vt-p-prov', 'Where the values came from: ')
    model.provenance.forEach((p, n) => {
      if (n) { line.append(' \u00b7 ') }
      line.append(el('span', p[1] === 'user' ? null : 'vt-p-warn', p[0] + ': ' + (WORDS[p[1]] || p[1])))
    })
    card.append(line)
  }
  card.append(el('div', 'vt-p-label', 'Exactly what you sign (canonical JSON)'))
  card.append(el('pre', 'vt-p-bytes', canonical))
  card.append(el('div', 'vt-p-label', 'SHA-256 (computed in this browser)'))
  const digestLine = el('div', 'vt-p-digest', 'computing\u2026')
  card.append(digestLine)
  // Past its expiry the market refuses it anyway: the card says so rather than offer the button.
  let expired = false
  if (intent && /^[0-9]+$/.test(intent.expires_ns)) {
    const at = Number(BigInt(intent.expires_ns) / 1000000n)
    const when = new Date(at).toISOString().replace('T', ' ').slice(0, 19)
    card.append(el('div', 'vt-p-expiry', 'Expires ' + when + ' UTC'))
    const left = at - Date.now()
    if (left <= 0) { expired = true } else { setTimeout(() => { expired = true; show() }, Math.min(left, 2147483647)) }
  }
  const buttons = el('div', 'vt-p-buttons')
  const confirm = el('button', 'vt-p-confirm', 'Confirm and sign')
  const reject = el('button', 'vt-p-reject', 'Reject')
  buttons.append(confirm, reject)
  card.append(buttons)
  const outcome = el('div', 'vt-p-outcome')
  card.append(outcome)

  let digest = null, local = ''
  const show = () => {
    const open = model.status === 'pending' && digest !== null && digest === told && !local && !expired
    confirm.disabled = !open
    reject.disabled = model.status !== 'pending'
    const lapsed = expired && model.status === 'pending' ? 'This proposal has expired: ask the copilot again.' : ''
    const text = local || lapsed || model.outcome
    outcome.textContent = text ? ((model.status === 'sent' ? '\u2713 ' : '\u26a0 ') + text) : ''
    outcome.className = 'vt-p-outcome ' + (model.status === 'sent' ? 'vt-p-ok' : 'vt-p-bad')
    card.dataset.status = local ? 'unsupported' : (lapsed ? 'expired' : model.status)
  }
  const say = (text) => { local = text; show() }
  confirm.disabled = true
  if (!window.isSecureContext || !globalThis.crypto || !crypto.subtle) {
    digestLine.textContent = told + ' (not checked: no WebCrypto here)'
    say(WHY_INSECURE)
    model.send_msg({ action: 'unsupported', reason: WHY_INSECURE })
  } else {
    crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical)).then((buf) => {
      digest = hex(buf)
      digestLine.textContent = digest
      if (digest !== told) { say('These bytes do not hash to the proposal\u2019s digest: this card cannot be signed.') }
      show()
    })
  }
  confirm.addEventListener('click', async (event) => {
    // A person's click only: a script's synthetic click (the model's text cannot run one, but
    // nothing should be able to) never signs.
    if (!event.isTrusted || model.status !== 'pending' || digest === null || digest !== told || expired) { return }
    confirm.disabled = reject.disabled = true
    outcome.className = 'vt-p-outcome'
    outcome.textContent = 'Signing in this browser\u2026'
    try {
      const pair = await keyFor(account)
      const bytes = new TextEncoder().encode(canonical)  // exactly the bytes shown above
      const signature = await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, bytes)
      model.send_msg({ action: 'confirm', digest, signature: hex(signature), public_key: await publicHex(pair) })
    } catch (err) {
      say(why(err))
      model.send_msg({ action: 'unsupported', reason: why(err) })
    }
  })
  reject.addEventListener('click', (event) => {
    if (!event.isTrusted || model.status !== 'pending') { return }
    confirm.disabled = reject.disabled = true
    model.send_msg({ action: 'reject' })
  })
  model.on('status', show)
  model.on('outcome', show)
  // A new card comes into view whole (its buttons too) in the chat's scrolling log.
  model.on('after_render', () => card.scrollIntoView({ block: 'nearest', inline: 'nearest' }))
  show()
  return card
}
"""
    _stylesheets: ClassVar[list[str]] = [CARD_CSS]

    def __init__(self, *, confirm: ConfirmCallback, reject: RejectCallback | None = None, **params: Any) -> None:
        self._confirm = confirm
        self._reject = reject
        super().__init__(**params)

    @classmethod
    def of(cls, card: CardData, *, confirm: ConfirmCallback, reject: RejectCallback | None = None,
           **params: Any) -> ProposalCard:  # fmt: skip
        """The card of ``card`` (checked proposal data: :class:`~vtrade.ui.copilot_card.CardData`)."""
        return cls(confirm=confirm, reject=reject, account=card.intent.account, canonical=card.canonical,
                   digest=card.digest, summary=card.summary, flags=list(card.flags),
                   provenance=[list(p) for p in card.provenance], **params)  # fmt: skip

    def _handle_msg(self, data: Any) -> None:
        # What the browser sends is checked before anything is called: a message of another
        # shape, or for other bytes than this card's, changes nothing.
        if not isinstance(data, dict):
            return
        action = data.get("action")
        if action == "confirm" and self.status == "pending":
            sig, key = data.get("signature"), data.get("public_key")
            if data.get("digest") != self.digest or not isinstance(sig, str) or not isinstance(key, str):
                return
            if _HEX128.fullmatch(sig) is None or _HEX64.fullmatch(key) is None:
                return
            self.status = "sending"
            try:
                ok, text = self._confirm(self, sig, key)
            except Exception as exc:  # the card must not stay "sending": say what failed
                ok, text = False, f"Not sent: {exc}"
            self.param.update(status="sent" if ok else "refused", outcome=text)
        elif action == "reject" and self.status == "pending":
            self.param.update(status="rejected", outcome="Rejected: nothing was sent")
            if self._reject is not None:
                self._reject(self)
        elif action == "unsupported" and self.status == "pending":
            self.param.update(status="unsupported", outcome=_reason(data.get("reason")))


def _reason(value: object) -> str:
    """A browser's reason, as a bounded line of text."""
    text = value if isinstance(value, str) else "this browser cannot sign"
    return " ".join(text.split())[:400]
