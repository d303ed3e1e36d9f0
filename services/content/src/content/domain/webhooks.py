"""Webhook signatures and retry timing.

Header `Meadow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`; a receiver
recomputes it and rejects stale timestamps to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

SIGNATURE_HEADER = "Meadow-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, now: int, tolerance: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(attempts_made: int) -> timedelta:
    """Exponential backoff after the n-th failed attempt: 10 s, 20 s, 40 s, … capped at an hour."""
    delay: timedelta = BASE_DELAY * (2 ** max(attempts_made - 1, 0))
    return min(delay, MAX_DELAY)


def gives_up(attempts_made: int) -> bool:
    return attempts_made >= MAX_ATTEMPTS
