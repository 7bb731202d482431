"""The copilot's audit trail: events on the ``copilot`` topic (keyed by account).

Every question, proposal, confirmation, execution and refusal is one event, so what the copilot
did is a query over the log (a teacher's prompt log, a student's history) and survives restarts
like every other topic. Intents are named by their SHA-256 ``digest``
(:attr:`vtrade.copilot.intent.OrderIntent.digest`).

Provenance (:class:`ProposalMade.provenance`): for each of ``symbol``, ``side`` and ``quantity``,
``"user"`` when the value is in the person's own words of this turn, ``"tool"`` when it only
appears in tool output (headlines, descriptions, notes, quotes), ``"model"`` when it appears in
neither. Anything but ``"user"`` is flagged on the confirm card.
"""

from __future__ import annotations

from vtrade.core.events import Event, register_event

__all__ = ["AUDIT_EVENTS", "CopilotAnswered", "CopilotAsked", "IntentConfirmed", "IntentExecuted",
           "IntentRefused", "ProposalMade"]  # fmt: skip


class CopilotAsked(Event, frozen=True, array_like=True, tag=True):
    """A person asked the copilot something (``ts``: wall-clock UTC ns)."""

    account: str
    conversation: str
    text: str
    model: str
    class_id: str | None = None


class CopilotAnswered(Event, frozen=True, array_like=True, tag=True):
    """The copilot's reply to a question, with the tools it called (names, in order)."""

    account: str
    conversation: str
    text: str
    tools: tuple[str, ...]
    refused: str | None = None  # why the copilot did not answer (switched off, no key, error)


class ProposalMade(Event, frozen=True, array_like=True, tag=True):
    """The copilot proposed an order: ``intent`` is its canonical JSON, ``flags`` what the person
    is warned about (values that did not come from their own words)."""

    account: str
    conversation: str
    proposal_id: str
    digest: str
    intent: str
    provenance: tuple[tuple[str, str], ...]
    flags: tuple[str, ...]


class IntentConfirmed(Event, frozen=True, array_like=True, tag=True):
    """A person signed an intent on their side (``public_key`` hex)."""

    account: str
    digest: str
    public_key: str


class IntentExecuted(Event, frozen=True, array_like=True, tag=True):
    """The gate admitted a signed intent and the account rules took it as ``client_order_id``
    (``accepted`` False: the account rules refused it, ``reason`` says why)."""

    account: str
    digest: str
    client_order_id: str
    accepted: bool
    reason: str = ""


class IntentRefused(Event, frozen=True, array_like=True, tag=True):
    """The gate refused a signed order (``code`` from :data:`vtrade.copilot.airgap.REFUSALS`);
    ``digest`` is None when the intent could not be read."""

    account: str
    digest: str | None
    code: str
    reason: str


AUDIT_EVENTS = (CopilotAsked, CopilotAnswered, ProposalMade, IntentConfirmed, IntentExecuted, IntentRefused)
register_event(*AUDIT_EVENTS)
