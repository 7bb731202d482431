"""The copilot (DESIGN.md §9): tools that read the market and the account, proposals that only a
person's signature turns into orders (:mod:`vtrade.copilot.airgap`), and the audit trail.

Pure domain code: no network, no files, no wall clock. The model client, the key store and the
signer live in :mod:`vtrade.runtime`; the chat and the confirm card in :mod:`vtrade.ui`.
"""
