"""Portfolio: exact ledgers, delta NAV across many accounts, risk analytics."""
