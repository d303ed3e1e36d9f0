"""The one-call seat (migration 0003): it writes what the Outbox writes, and re-checks under the lock."""

import json
from typing import Any

from sqlalchemy import text

from meadow_contracts import Envelope, MemberBlocked, MemberJoined, Topic, decode, new_event_id, utc_now
from meadow_runtime.testing.harness import ServiceHarness
from membership.members.repository import OutboxRow


async def _outbox_rows(svc: ServiceHarness, customer_id: str) -> list[Any]:
    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text(
                "SELECT id, aggregatetype, aggregateid, type, payload, headers FROM outbox "
                "WHERE aggregateid = :key ORDER BY created_at"
            ),
            {"key": f"m1:{customer_id}"},
        )
        return list(rows)


async def test_member_joined_row_is_the_envelope_the_outbox_would_write(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(subgroup_capacity=2)
    for customer in ("row-a", "row-b", "row-c"):  # the third opens sub-group 2
        assert (await join(group["id"], customer)).status_code == 200
    joined = await join(group["id"], "row-d")
    assert joined.status_code == 200
    body = joined.json()
    assert body["subgroup_number"] == 2

    [row] = await _outbox_rows(svc, "row-d")
    envelope = Envelope.model_validate(row.payload)
    # Stored JSON equal to the envelope's own serialisation: no extra, missing or re-formatted field.
    assert row.payload == json.loads(envelope.model_dump_json())
    assert (row.id, row.aggregatetype, row.aggregateid, row.type) == (
        envelope.id,
        Topic.MEMBERSHIP.value,
        envelope.key,
        MemberJoined.event_type,
    )
    assert isinstance(row.headers, dict)
    event = decode(envelope)
    assert isinstance(event, MemberJoined)
    assert (str(event.subgroup_id), event.subgroup_number) == (body["subgroup_id"], 2)
    assert (event.customer_id, str(event.group_id), event.route) == ("row-d", group["id"], "direct")
    assert envelope.source == "membership"

    # The row of the join that opened sub-group 2.
    [slow] = await _outbox_rows(svc, "row-c")
    slow_event = decode(Envelope.model_validate(slow.payload))
    assert isinstance(slow_event, MemberJoined)
    assert slow_event.subgroup_number == 2


async def test_seat_call_rechecks_membership_and_blacklist_and_writes_nothing_then(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group()
    assert (await join(group["id"], "again")).status_code == 200
    blocked = await svc.client.post("/v1/blacklist", json={"customer_id": "late-block"}, headers=svc.auth())
    assert blocked.status_code in (200, 201), blocked.text

    async def seat(customer_id: str) -> Any:
        # As a join whose eligibility read came before the membership or block committed would call it.
        async with svc.uow() as uow:
            return await uow.members.take_first_free_seat(
                merchant_id="m1", group_id=group["id"], customer_id=customer_id, route="direct",
                invite_id=None, joined_at=utc_now(),
                joined_event=OutboxRow(new_event_id(), "membership", f"m1:{customer_id}",
                                       MemberJoined.event_type, "{}", "{}"),
            )  # fmt: skip

    before = len(await _outbox_rows(svc, "again"))
    existing = await seat("again")
    assert existing.outcome == "existing"
    assert existing.membership is not None
    assert existing.membership.customer_id == "again"
    assert len(await _outbox_rows(svc, "again")) == before

    refused = await seat("late-block")
    assert (refused.outcome, refused.membership) == ("blacklisted", None)
    async with svc.uow() as uow:
        members = await uow.session.scalar(
            text("SELECT count(*) FROM memberships WHERE customer_id = 'late-block'")
        )
        seats = await uow.session.scalar(
            text("SELECT sum(member_count) FROM subgroups WHERE group_id = :g"), {"g": group["id"]}
        )
    assert (members, seats) == (0, 1)
    assert [r.type for r in await _outbox_rows(svc, "late-block")] == [MemberBlocked.event_type]


async def test_joins_inside_a_unit_of_work_open_sub_groups_and_stay_atomic_with_their_audit(
    svc: ServiceHarness, create_group: Any
) -> None:
    """Staff joins and idempotent joins share their transaction (audit, key): the seat call runs inside it."""
    group = await create_group(subgroup_capacity=2, max_subgroups=2)
    path = f"/v1/groups/{group['id']}/members"
    operator = svc.auth("m1", "operator")
    numbers = []
    for n in range(3):
        added = await svc.client.post(path, json={"customer_id": f"staff-add-{n}"}, headers=operator)
        assert added.status_code == 200, added.text
        numbers.append(added.json()["subgroup_number"])
    keyed = {**svc.auth("m1", "customer", "keyed"), "Idempotency-Key": "keyed-join"}
    first = await svc.client.post(path, json={"customer_id": "keyed"}, headers=keyed)
    replay = await svc.client.post(path, json={"customer_id": "keyed"}, headers=keyed)
    full = await svc.client.post(path, json={"customer_id": "staff-add-9"}, headers=operator)

    assert numbers == [1, 1, 2]
    assert first.json()["subgroup_number"] == 2
    assert replay.json() == first.json()
    assert (full.status_code, full.json()["reason"]) == (409, "group_full")
    async with svc.uow() as uow:
        audited = await uow.session.scalar(
            text("SELECT count(*) FROM audit_log WHERE action = 'member.added' AND target = :g"),
            {"g": group["id"]},
        )
        counts = list(
            await uow.session.execute(
                text("SELECT number, member_count FROM subgroups WHERE group_id = :g ORDER BY number"),
                {"g": group["id"]},
            )
        )
    assert audited == 3
    assert [tuple(r) for r in counts] == [(1, 2), (2, 2)]
    assert len(await _outbox_rows(svc, "keyed")) == 1
