"""The batch event-id generator must produce distinct, time-ordered-by-millisecond UUIDv7s."""

from __future__ import annotations

import time

from rewards.ledger.service import event_ids


def test_event_ids_are_distinct_version_7_and_carry_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = event_ids(10_000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}
    assert all(before <= i.int >> 80 <= after for i in ids)
