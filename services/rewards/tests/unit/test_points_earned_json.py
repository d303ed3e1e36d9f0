"""The hand-written `points.earned` envelope must say exactly what the contract models would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

from meadow_contracts import Envelope, decode
from meadow_contracts.events import PointsEarned
from rewards.ledger.service import SOURCE, Credited, Earning, points_earned_json


def test_the_fast_points_earned_json_decodes_to_the_same_envelope_as_the_models() -> None:
    paid_at = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    for cause in (uuid4(), None):
        earning = Earning(uuid4(), "m1", "c1", 217, "purchase", paid_at, cause_event_id=cause)
        done = Credited(earning, 17, 200, paid_at + timedelta(days=365))
        event_id, now = uuid4(), datetime.now(UTC)
        expected = Envelope.wrap(
            PointsEarned(
                transfer_id=earning.transfer_id, customer_id="c1", points=217, reason="purchase",
                cause_event_id=cause, expires_at=done.expires_at, debt_repaid=17, balance_after=200,
            ),
            source=SOURCE, merchant_id="m1", subject="c1", id=event_id, time=now,
        )  # fmt: skip

        raw = points_earned_json(done, event_id, now)
        fast = Envelope.from_bytes(raw.encode())
        assert raw == expected.model_dump_json()
        assert fast == expected
        assert decode(fast) == decode(expected)
