"""Deterministic transfer ids: one cause always names the same transfer, so a replay cannot credit twice."""

from __future__ import annotations

from uuid import UUID, uuid5

LEDGER_NAMESPACE = UUID("6d1f5a52-2a7e-4f37-9d7c-6f1a2b0c9e41")


def transfer_id(merchant_id: str, *cause: object) -> UUID:
    """uuid5 of the merchant and the cause's parts (e.g. event id + rule, or order id + "purchase")."""
    return uuid5(LEDGER_NAMESPACE, ":".join([merchant_id, *(str(part) for part in cause)]))
