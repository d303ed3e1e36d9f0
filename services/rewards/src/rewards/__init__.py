"""Meadow rewards service: The points ledger: earn rules, lots and expiry, tiers, catalog and redemption."""
