"""Seats under concurrency: no sub-group ever overfills, and one customer is one member."""

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import text

from meadow_contracts import GroupSetFilled, MemberJoined, MemberLeft, Topic, decode
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader


async def _seat_counts(svc: ServiceHarness, group_id: str) -> dict[int, tuple[int, int]]:
    """Per sub-group number: (member_count column, active membership rows) — the two must agree."""
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT s.number, s.member_count, count(m.id) AS active FROM subgroups s "
                "LEFT JOIN memberships m ON m.subgroup_id = s.id AND m.ended_at IS NULL "
                "WHERE s.group_id = :g GROUP BY s.number, s.member_count ORDER BY s.number"
            ),
            {"g": group_id},
        )
        return {r.number: (r.member_count, r.active) for r in rows}


async def test_1200_concurrent_joins_fill_500_500_200(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(subgroup_capacity=500, max_subgroups=3)
    customers = [f"c{i}" for i in range(1200)]
    responses = []
    for start in range(0, len(customers), 300):
        responses += await asyncio.gather(*(join(group["id"], c) for c in customers[start : start + 300]))

    assert Counter(r.status_code for r in responses) == {200: 1200}
    assert await _seat_counts(svc, group["id"]) == {1: (500, 500), 2: (500, 500), 3: (200, 200)}
    async with svc.uow() as uow:
        distinct = await uow.session.scalar(
            text(
                "SELECT count(DISTINCT customer_id) FROM memberships WHERE group_id = :g AND ended_at IS NULL"
            ),
            {"g": group["id"]},
        )
    assert distinct == 1200
    numbers = Counter(r.json()["subgroup_number"] for r in responses)
    assert numbers == {1: 500, 2: 500, 3: 200}


async def test_full_set_refuses_tells_the_owner_once_and_a_freed_seat_reopens(
    svc: ServiceHarness, create_group: Any, join: Any, settings: Any
) -> None:
    group = await create_group(subgroup_capacity=5, max_subgroups=3)
    customers = [f"small-{i}" for i in range(16)]
    responses = await asyncio.gather(*(join(group["id"], c) for c in customers))

    refused = [r for r in responses if r.status_code == 409]
    assert len(refused) == 1
    assert refused[0].headers["content-type"].startswith("application/problem+json")
    assert refused[0].json()["reason"] == "group_full"
    assert await _seat_counts(svc, group["id"]) == {1: (5, 5), 2: (5, 5), 3: (5, 5)}

    late = await join(group["id"], "small-late")
    assert late.status_code == 409
    assert late.json()["reason"] == "group_full"

    seated = next(
        c
        for c, r in zip(customers, responses, strict=True)
        if r.status_code == 200 and r.json()["subgroup_number"] == 2
    )
    left = await svc.client.post(
        f"/v1/groups/{group['id']}/leave",
        json={"customer_id": seated},
        headers=svc.auth("m1", "customer", seated),
    )
    assert left.status_code == 200, left.text
    rejoined = await join(group["id"], "small-late")
    assert rejoined.status_code == 200
    assert rejoined.json()["subgroup_number"] == 2

    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.MEMBERSHIP.value) as reader:
        envelopes = await reader.wait_for(15 + 1 + 1 + 1)
    events = [decode(e) for e in envelopes]
    mine = [e for e in events if getattr(e, "group_id", None) is not None and str(e.group_id) == group["id"]]  # type: ignore[attr-defined]
    filled = [e for e in mine if isinstance(e, GroupSetFilled)]
    assert len(filled) == 1, "the owner is told once per filling, not once per refused customer"
    assert filled[0].capacity == 15
    assert sum(isinstance(e, MemberJoined) for e in mine) == 16
    assert sum(isinstance(e, MemberLeft) for e in mine) == 1


async def test_same_customer_joining_concurrently_is_one_member(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(subgroup_capacity=5, max_subgroups=2)
    responses = await asyncio.gather(*(join(group["id"], "twin") for _ in range(12)))

    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(not r.json()["already_member"] for r in responses) == 1
    assert await _seat_counts(svc, group["id"]) == {1: (1, 1)}


async def test_idempotency_key_replays_the_first_join(svc: ServiceHarness, create_group: Any) -> None:
    group = await create_group()
    headers = {**svc.auth("m1", "customer", "idem"), "Idempotency-Key": "join-1"}
    first = await svc.client.post(
        f"/v1/groups/{group['id']}/members", json={"customer_id": "idem"}, headers=headers
    )
    again = await svc.client.post(
        f"/v1/groups/{group['id']}/members", json={"customer_id": "idem"}, headers=headers
    )
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()


async def test_joins_racing_leaves_across_many_small_subgroups_stay_consistent(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    """Many sub-group openings, seats freed meanwhile: no error, no overfill, counts match the rows."""
    group = await create_group(subgroup_capacity=3, max_subgroups=20)
    first = [f"churn-{i}" for i in range(30)]
    for start in range(0, 30, 10):
        await asyncio.gather(*(join(group["id"], c) for c in first[start : start + 10]))

    async def leave(customer: str) -> Any:
        return await svc.client.post(
            f"/v1/groups/{group['id']}/leave",
            json={"customer_id": customer},
            headers=svc.auth("m1", "customer", customer),
        )

    newcomers = [f"churn-new-{i}" for i in range(120)]
    results = await asyncio.gather(
        *(join(group["id"], c) for c in newcomers), *(leave(c) for c in first[:20])
    )

    statuses = Counter(r.status_code for r in results)
    assert set(statuses) <= {200, 409}, statuses
    assert all(r.json()["reason"] == "group_full" for r in results if r.status_code == 409)
    assert all(r.status_code == 200 for r in results[len(newcomers) :]), "every leave succeeds"
    joined = sum(1 for r in results[: len(newcomers)] if r.status_code == 200)
    counts = await _seat_counts(svc, group["id"])
    assert all(column == rows <= 3 for column, rows in counts.values()), counts
    assert sum(rows for _, rows in counts.values()) == 10 + joined, "each accepted join holds a seat"

    # How many joins won the race depends on timing; what may not is that every seat freed during it
    # is usable: late joiners fill the set to exactly 60, and the ones after that are refused.
    free = 60 - 10 - joined
    late = [f"churn-late-{i}" for i in range(free + 5)]
    late_results = await asyncio.gather(*(join(group["id"], c) for c in late))
    assert Counter(r.status_code for r in late_results) == Counter({200: free, 409: 5})
    counts = await _seat_counts(svc, group["id"])
    assert all(column == rows <= 3 for column, rows in counts.values()), counts
    assert sum(rows for _, rows in counts.values()) == 60
