"""Deterministic transfer ids: one cause always names the same transfer, so a replay cannot credit twice."""

from __future__ import annotations

from hashlib import sha1
from uuid import UUID

LEDGER_NAMESPACE = UUID("6d1f5a52-2a7e-4f37-9d7c-6f1a2b0c9e41")
_NAMESPACE_BYTES = LEDGER_NAMESPACE.bytes


def transfer_id(merchant_id: str, *cause: object) -> UUID:
    """uuid5 of the merchant and the cause's parts (e.g. event id + rule, or order id + "purchase").

    Exactly `uuid.uuid5(LEDGER_NAMESPACE, name)`, with the version and variant bits set on the digest's
    bytes: the stdlib's `UUID(..., version=5)` costs twice as much, and the ingest path makes one per event.
    """
    return UUID(bytes=_uuid5_bytes(":".join([merchant_id, *(str(part) for part in cause)]).encode()))


def purchase_transfer_id_bytes(merchant_id: str, order_id: str) -> bytes:
    """The 16 bytes of `transfer_id(merchant_id, "order", order_id, "purchase")`, the earning of a paid
    order: the ingest path makes one per event and hands the bytes to the driver's own UUID type."""
    return _uuid5_bytes(b"".join((merchant_id.encode(), b":order:", order_id.encode(), b":purchase")))


def _uuid5_bytes(name: bytes) -> bytes:
    digest = bytearray(sha1(_NAMESPACE_BYTES + name).digest()[:16])
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
    return bytes(digest)
