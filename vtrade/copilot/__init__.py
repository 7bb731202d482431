"""The copilot (DESIGN.md §9): tools that read the market and the account, proposals that only a
person's signature turns into orders (:mod:`vtrade.copilot.airgap`), and the audit trail.

- :mod:`~vtrade.copilot.context` what the tools may read, :mod:`~vtrade.copilot.tools` the tools
  and their strict schemas, :mod:`~vtrade.copilot.glossary` the teaching definitions;
- :mod:`~vtrade.copilot.agent` the bounded loop (native tool calls or JSON routing);
- :mod:`~vtrade.copilot.intent`, :mod:`~vtrade.copilot.provenance`, :mod:`~vtrade.copilot.signing`
  and :mod:`~vtrade.copilot.airgap`: proposals, where their values came from, and the air-gap;
- :mod:`~vtrade.copilot.events` and :mod:`~vtrade.copilot.audit` the audit trail;
- :mod:`~vtrade.copilot.render` model text made safe to show.

Pure domain code: no network, no files, no wall clock. The model client, the key store and the
signer live in :mod:`vtrade.runtime`; the chat and the confirm card in :mod:`vtrade.ui`.
"""
