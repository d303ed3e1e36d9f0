"""The check-in lottery: a seed committed before the draw, a draw anyone can redo from the revealed seed.

Draw: each entrant's ticket is `u = int(sha256(seed ":" customer_id)) / 2**256` (in (0, 1)); its key is
`-ln(u) / weight` (exponential-clock weighted sampling without replacement, Efraimidis–Spirakis); the K
smallest keys win, ties broken by customer id. With equal weights this is a uniform draw of K.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entrant:
    customer_id: str
    weight: int = 1


def new_seed() -> str:
    return secrets.token_hex(32)


def seed_commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _key(seed: str, entrant: Entrant) -> tuple[float, str]:
    digest = hashlib.sha256(f"{seed}:{entrant.customer_id}".encode()).digest()
    ticket = (int.from_bytes(digest, "big") + 1) / (2**256 + 1)
    return (-math.log(ticket) / entrant.weight, entrant.customer_id)


def draw(seed: str, entrants: Sequence[Entrant], winners: int) -> tuple[str, ...]:
    """The winners in drawing order; entrants with weight < 1 cannot win."""
    eligible = [e for e in entrants if e.weight >= 1]
    ranked = sorted(eligible, key=lambda e: _key(seed, e))
    return tuple(e.customer_id for e in ranked[:winners])


def verify(
    seed: str, commitment: str, entrants: Sequence[Entrant], winners: int, claimed: Sequence[str]
) -> tuple[bool, str]:
    """Whether the revealed seed matches its commitment and redraws exactly the claimed winners."""
    if not hmac.compare_digest(seed_commitment(seed), commitment):
        return False, "the seed does not match the committed sha256"
    if draw(seed, entrants, winners) != tuple(claimed):
        return False, "the seed draws different winners"
    return True, "the seed matches its commitment and redraws the same winners"
