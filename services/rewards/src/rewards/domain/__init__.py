"""Pure rules of the points ledger: no IO, no framework imports."""
