"""The air-gap's execution path on the live market's log, and the copilot's audit trail
(DESIGN.md §9): what :class:`~vtrade.runtime.live.LiveMarket` hands signed orders and audit
events to.

**Signed orders.** A person's signature over a copilot's intent reaches the market as a
:class:`~vtrade.copilot.airgap.SignedOrder` entry on the ``orders`` log (journaled like any
order). The broker's fold of it is :func:`fold_signed`: the :class:`~vtrade.copilot.airgap.Gate`
first (account, key, signature, expiry, nonce), then the domain's order validation
(:func:`~vtrade.execution.validation.submit_from_user` re-reads the intent's fields, so a price
off the tick grid is a refusal, never an exception), then the ordinary account rules: a signed
intent meets every class limit, buying power and halt a typed order meets.

**The audit trail.** Every question, answer, proposal, confirmation, execution and refusal is
one event (:mod:`vtrade.copilot.events`) on the market bus's ``copilot`` topic, keyed by
account, in one partition (one total order: a teacher reads the prompt log as it happened).
:class:`CopilotTrail` publishes them and, with a data dir, journals each one in the market's
journal (the same DuckDB table as the entries, under its own topic) before the caller goes on;
a restart puts the journaled records back on the fresh bus. The broker's own verdicts
(:class:`~vtrade.copilot.events.IntentExecuted`, :class:`~vtrade.copilot.events.IntentRefused`)
are made by the fold, which a restart re-runs for the entries after the checkpoint: those
already journaled are not published twice (the fold makes exactly one verdict per signed
order, in entry order, so the journal says how many of them it already holds).

>>> from vtrade.runtime.bus import MemoryBus
>>> from vtrade.copilot.events import CopilotAsked
>>> bus, trail = MemoryBus(), CopilotTrail()
>>> trail.attach(bus)
>>> trail.record(bus, None, CopilotAsked(1_700_000_000 * 10**9, "ada", "conv-1", "what is my beta?", "smollm"))
>>> trail.frame(bus)[["type", "account", "text"]].values.tolist()
[['CopilotAsked', 'ada', 'what is my beta?']]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import pandas as pd

from vtrade.copilot.airgap import Gate, Refused, SignedOrder
from vtrade.copilot.events import (
    CopilotAnswered,
    CopilotAsked,
    IntentConfirmed,
    IntentExecuted,
    IntentRefused,
    ProposalMade,
)
from vtrade.copilot.intent import IntentError, OrderIntent, parse_intent
from vtrade.core.events import Event, decode, encode, event_type
from vtrade.core.instruments import Instrument
from vtrade.execution.orders import SubmitOrder
from vtrade.execution.validation import OrderInputError, submit_from_user
from vtrade.runtime.bus import Bus
from vtrade.runtime.bus.base import Record
from vtrade.runtime.live_log import ENTRIES, Durable

__all__ = [
    "COPILOT_COLUMNS",
    "COPILOT_TOPIC",
    "SERVICE_EVENTS",
    "CopilotTrail",
    "SignedOutcome",
    "check_service_event",
    "fold_signed",
    "refusal",
    "screen",
]  # fmt: skip

#: The audit trail's topic on the market's bus (keyed by account, one partition).
COPILOT_TOPIC = "copilot"
#: What the copilot service records through ``LiveMarket.record_copilot``; executions and
#: refusals are the broker's own to record (nobody can write "executed" into the trail).
SERVICE_EVENTS = (CopilotAsked, CopilotAnswered, ProposalMade, IntentConfirmed)
#: The columns of :meth:`CopilotTrail.frame` (``LiveMarket.copilot_log``).
COPILOT_COLUMNS = ["offset", "ts", "type", "account", "conversation", "digest", "proposal_id", "code", "text",
                   "client_order_id", "accepted", "flags", "tools", "model"]  # fmt: skip
# What may go on the log at all: an intent is ~300 bytes (the gate reads at most 4096), a key 64
# hex digits and a signature 128. Anything far larger is refused before it reaches the journal.
_MAX_INTENT = 16_384
_MAX_HEX = 1024
_MAX_AUDIT_BYTES = 256 * 1024
_VERDICTS = ("IntentExecuted", "IntentRefused")


@dataclass(frozen=True, slots=True)
class SignedOutcome:
    """What became of a signed intent.

    ``ok``: the order went to the exchange (``code`` ``"executed"``). Otherwise ``code`` says who
    refused: a gate code (:data:`~vtrade.copilot.airgap.REFUSALS`: ``bad_signature``,
    ``expired``, ``nonce_reused``, ...), an order-validation code when the intent is not an order
    this market takes (``unknown_symbol``, ``off_tick``, ...), the account rules' code
    (``insufficient_buying_power``, ``symbol_not_allowed``, ...: the order is then in the
    blotter as rejected, under ``client_order_id``), or ``copilot_off`` (the class's teacher
    switched the copilot off). ``digest`` is the intent's SHA-256 (None when it did not read).
    """

    ok: bool
    code: str
    reason: str
    digest: str | None
    client_order_id: str | None = None


class _Answer(Protocol):
    """The broker's answer to an order (``vtrade.runtime.live.CommandOutcome``)."""

    @property
    def ok(self) -> bool: ...
    @property
    def client_order_id(self) -> str: ...
    @property
    def code(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...


def screen(intent: object, signature: object, public_key: object) -> str | None:
    """Why these cannot even go on the log (None: they can; the gate judges them there).

    Not text is a caller's bug (TypeError); text too long or not encodable as UTF-8 is an
    answer (the caller records it as a ``malformed`` refusal without entering anything).

    >>> screen("{}", "ab", "cd") is None, screen("x" * 20_000, "", "")
    (True, 'the intent is 20000 characters long; an intent is at most 16384')
    """
    for name, value in (("intent", intent), ("signature", signature), ("public key", public_key)):
        if not isinstance(value, str):
            raise TypeError(f"the {name} must be text (JSON, hex), got {type(value).__name__}")
    assert isinstance(intent, str) and isinstance(signature, str) and isinstance(public_key, str)
    if len(intent) > _MAX_INTENT:
        return f"the intent is {len(intent)} characters long; an intent is at most {_MAX_INTENT}"
    if len(signature) > _MAX_HEX or len(public_key) > _MAX_HEX:
        return f"a signature or public key is hex of at most {_MAX_HEX} characters"
    for name, value in (("intent", intent), ("signature", signature), ("public key", public_key)):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"the {name} is not valid Unicode text (it holds a lone surrogate)"
    return None


def _digest(intent_text: str) -> str | None:
    try:
        return parse_intent(intent_text).digest
    except IntentError:
        return None


def refusal(account: str, received_ns: int, intent_text: str, code: str, reason: str
            ) -> tuple[SignedOutcome, IntentRefused]:  # fmt: skip
    """A refusal decided before the broker's gate (too large to enter, the class's copilot
    switched off), with its audit event; the digest is the intent's when it reads."""
    digest = _digest(intent_text) if len(intent_text) <= _MAX_INTENT else None
    return SignedOutcome(False, code, reason, digest), IntentRefused(received_ns, account, digest, code, reason)


def fold_signed(
    gate: Gate,
    entry: SignedOrder,
    *,
    order_id: str,
    instruments: Mapping[str, Instrument],
    send: Callable[[SubmitOrder], _Answer],
) -> tuple[SignedOutcome, IntentExecuted | IntentRefused]:
    """The broker's fold of one signed order: the gate, then the order built from the intent
    (``order_id`` is the account's next client order id), then ``send`` (the account rules and
    the exchange). Returns the outcome and the verdict for the audit trail, stamped with the
    entry's ``received_ns`` (so a re-run makes the same one)."""
    verdict = gate.admit(entry)
    ts, account = entry.received_ns, entry.account
    if isinstance(verdict, Refused):
        return (SignedOutcome(False, verdict.code, verdict.reason, verdict.digest),
                IntentRefused(ts, account, verdict.digest, verdict.code, verdict.reason))  # fmt: skip
    i, digest = verdict.intent, verdict.digest
    try:
        # The domain re-validates whatever the model proposed: grids, the symbol, the type.
        order = submit_from_user(account, order_id, i.symbol, i.side, i.order_type, i.quantity, i.limit_price,
                                 tif=i.tif, ts=entry.ts, instruments=instruments)  # fmt: skip
    except OrderInputError as exc:
        code = exc.code.value
        return SignedOutcome(False, code, exc.reason, digest), IntentRefused(ts, account, digest, code, exc.reason)
    # The blotter names the intent the order came from (its digest is the audit trail's key).
    order = msgspec.structs.replace(order, note=f"copilot intent {digest[:16]}")
    answer = send(order)
    reason = "" if answer.ok else (answer.reason or "")
    code = "executed" if answer.ok else (answer.code or "refused")
    outcome = SignedOutcome(answer.ok, code, reason, digest, answer.client_order_id)
    return outcome, IntentExecuted(ts, account, digest, answer.client_order_id, answer.ok, reason)


def check_service_event(event: object) -> Event:
    """``event`` if the copilot service may record it; TypeError for any other type (the
    broker's verdicts included), ValueError for one whose fields do not hold what they say."""
    if not isinstance(event, SERVICE_EVENTS):
        names = ", ".join(t.__name__ for t in SERVICE_EVENTS)
        raise TypeError(f"the copilot service records {names}; got {type(event).__name__} "
                        "(executions and refusals are the broker's to record)")  # fmt: skip
    try:
        data = encode(event)
        back = decode(data)  # the decoder checks every field's type, as a restart will
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a valid {type(event).__name__}: {exc}") from None
    if back != event:
        raise ValueError(f"not a valid {type(event).__name__}: it does not survive the log unchanged")
    if isinstance(event.ts, bool) or event.ts < 0:
        raise ValueError(f"an audit event's ts is UTC nanoseconds, got {event.ts!r}")
    if not event.account.strip():
        raise ValueError("an audit event names its account")
    if len(data) > _MAX_AUDIT_BYTES:
        raise ValueError(f"an audit event is at most {_MAX_AUDIT_BYTES} bytes encoded, got {len(data)}")
    return event


class CopilotTrail:
    """The ``copilot`` topic of one market: publish (and journal), restore, read.

    Stateless but for ``skip``: after a restart, how many of the verdicts the fold is about
    to make again are already in the journal (and on the bus)."""

    def __init__(self) -> None:
        self.skip = 0

    @staticmethod
    def attach(bus: Bus) -> None:
        """Make the topic on ``bus`` (idempotent)."""
        bus.create_topic(COPILOT_TOPIC, 1)

    @staticmethod
    def record(bus: Bus, durable: Durable | None, event: Event) -> None:
        """Publish ``event`` keyed by its account and, with a data dir, journal it before returning."""
        key = event.account  # type: ignore[attr-defined]
        md = bus.publish(COPILOT_TOPIC, key, event)
        if durable is not None:
            durable.append(Record(md.topic, md.partition, md.offset, key, encode(event), md.timestamp_ns))

    def record_verdict(self, bus: Bus, durable: Durable | None, event: IntentExecuted | IntentRefused) -> None:
        """The broker's verdict on a signed order, unless a restart's re-run made it again and
        the journal already holds it."""
        if self.skip > 0:
            self.skip -= 1
            return
        self.record(bus, durable, event)

    def restore(self, bus: Bus, durable: Durable, entries_folded: int) -> None:
        """Put the journaled trail back on ``bus`` (a fresh one after a checkpoint) and count the
        verdicts the re-run of the entries from offset ``entries_folded`` on will make again."""
        self.attach(bus)
        journal = durable.journal
        df = journal.read(COPILOT_TOPIC) if len(journal) else None
        if df is not None and not df.empty:
            at = bus.end_offsets(COPILOT_TOPIC)[0]
            for offset, key, payload in zip(df["offset"], df["key"], df["payload"], strict=True):
                if int(offset) < at:
                    continue  # already on this bus (the constructor's bus, never trimmed)
                md = bus.publish(COPILOT_TOPIC, str(key), bytes(payload))
                if md.offset != int(offset):
                    raise RuntimeError(f"the copilot journal has a gap before offset {offset} (bus at {md.offset})")
        verdicts = _count(journal, f"topic = '{COPILOT_TOPIC}' AND type IN {_VERDICTS!r}", [])
        signed_before = _count(journal, f"topic = '{ENTRIES}' AND type = 'SignedOrder' AND \"offset\" < ?",
                               [entries_folded])  # fmt: skip
        self.skip = max(0, verdicts - signed_before)

    @staticmethod
    def frame(bus: Bus, account: str | None = None, *, since: int = 0) -> pd.DataFrame:
        """One row per audit event from offset ``since`` (of ``account``, or everyone's), in log
        order: see :data:`COPILOT_COLUMNS` and ``LiveMarket.copilot_log``."""
        rows: list[dict[str, Any]] = []
        offset = since
        while batch := bus.read(COPILOT_TOPIC, 0, offset, 10_000):
            for r in batch:
                if account is None or r.key == account:
                    e = r.event
                    if account is None or getattr(e, "account", None) == account:
                        rows.append(_row(r.offset, e))
            offset = batch[-1].offset + 1
        df = pd.DataFrame(rows, columns=COPILOT_COLUMNS)
        df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ns", utc=True)
        df["offset"] = df["offset"].astype("int64")
        return df


def _count(journal: Any, where: str, params: list[Any]) -> int:
    if not len(journal):
        return 0
    return int(journal.query(f"SELECT count(*) AS n FROM journal WHERE {where}", params)["n"].iloc[0])


def _summary(intent_text: str) -> str:
    """A proposal in words: ``buy 10 AAPL limit 187.25 (day)`` (the raw text if it does not read)."""
    try:
        i: OrderIntent = parse_intent(intent_text)
    except IntentError:
        return intent_text[:200]
    price = f" {i.order_type} {i.limit_price}" if i.limit_price is not None else f" {i.order_type}"
    return f"{i.side} {i.quantity} {i.symbol}{price} ({i.tif})"


def _row(offset: int, e: Event) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COPILOT_COLUMNS)
    row.update(offset=offset, ts=e.ts, type=event_type(e), account=getattr(e, "account", None))
    match e:
        case CopilotAsked():
            row.update(conversation=e.conversation, text=e.text, model=e.model)
        case CopilotAnswered():
            row.update(conversation=e.conversation, text=e.text, tools=list(e.tools), code=e.refused)
        case ProposalMade():
            row.update(conversation=e.conversation, digest=e.digest, proposal_id=e.proposal_id,
                       text=_summary(e.intent), flags=list(e.flags))  # fmt: skip
        case IntentConfirmed():
            row.update(digest=e.digest)
        case IntentExecuted():
            row.update(digest=e.digest, client_order_id=e.client_order_id, accepted=e.accepted,
                       code="executed" if e.accepted else "account_rules", text=e.reason or None)  # fmt: skip
        case IntentRefused():
            row.update(digest=e.digest, code=e.code, text=e.reason)
    return row
