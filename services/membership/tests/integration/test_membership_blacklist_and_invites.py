"""Blacklist (no way back in), invites and referral codes, and smart-invitation throttling."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text

from meadow_contracts import (
    Envelope,
    InviteAccepted,
    InviteIssued,
    MemberBlocked,
    SegmentEntered,
    SegmentExited,
    Topic,
    decode,
)
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, produce

T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)
SEGMENT = UUID("00000000-0000-0000-0000-00000000b001")
HOUR = timedelta(hours=1)


async def issue_invite(svc: ServiceHarness, group_id: str, **body: Any) -> dict[str, Any]:
    response = await svc.client.post(f"/v1/groups/{group_id}/invites", json=body, headers=svc.auth())
    assert response.status_code == 201, response.text
    invite: dict[str, Any] = response.json()
    return invite


async def accept(svc: ServiceHarness, code: str, customer: str) -> Any:
    return await svc.client.post(
        f"/v1/invites/{code}/accept",
        json={"customer_id": customer},
        headers=svc.auth("m1", "customer", customer),
    )


async def membership_events(svc: ServiceHarness) -> list[Any]:
    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.MEMBERSHIP.value) as reader:
        await reader.read_available()
        await reader.read_available()
        return [decode(e) for e in reader.envelopes()]


async def test_blocked_customer_is_removed_everywhere_and_cannot_rejoin_by_any_route(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    first = await create_group(product_ids=["sku-bl"])
    second = await create_group()
    link = await issue_invite(svc, first["id"], kind="link")
    referral = await issue_invite(svc, first["id"], kind="referral", inviter_customer_id="bl-friend")
    assert (await join(first["id"], "bl1")).status_code == 200
    assert (await join(second["id"], "bl1")).status_code == 200

    blocked = await svc.client.post(
        "/v1/blacklist", json={"customer_id": "bl1", "reason": "spam"}, headers=svc.auth()
    )
    assert blocked.status_code == 200, blocked.text
    assert set(blocked.json()["removed_from_group_ids"]) == {first["id"], second["id"]}
    group = (await svc.client.get(f"/v1/groups/{first['id']}", headers=svc.auth())).json()
    assert group["member_count"] == 0

    attempts = [
        await join(first["id"], "bl1"),
        await join(second["id"], "bl1"),
        await accept(svc, link["code"], "bl1"),
        await accept(svc, referral["code"], "bl1"),
        await svc.client.post(
            "/v1/product-joins", json={"customer_id": "bl1", "product_id": "sku-bl"},
            headers=svc.auth("m1", "customer", "bl1"),
        ),
    ]  # fmt: skip
    assert [(a.status_code, a.json()["reason"]) for a in attempts] == [(409, "blacklisted")] * 5
    eligibility = await svc.client.get("/v1/eligibility", params={"customer_id": "bl1"}, headers=svc.auth())
    assert eligibility.json()["blacklisted"] is True
    assert eligibility.json()["groups"] == []

    unblocked = await svc.client.delete("/v1/blacklist/bl1", params={"reason": "appeal"}, headers=svc.auth())
    assert unblocked.status_code == 200
    assert (await join(first["id"], "bl1")).status_code == 200
    log = (
        await svc.client.get("/v1/audit-log", params={"action": "customer.unblocked"}, headers=svc.auth())
    ).json()
    assert [(e["target"], e["details"]["reason"]) for e in log["items"]] == [("bl1", "appeal")]

    events = await membership_events(svc)
    blocks = [e for e in events if isinstance(e, MemberBlocked) and e.customer_id == "bl1"]
    assert len(blocks) == 1
    assert {str(g) for g in blocks[0].removed_from_group_ids} == {first["id"], second["id"]}


async def test_link_use_limit_expiry_and_referral_credit(svc: ServiceHarness, create_group: Any) -> None:
    group = await create_group()
    once = await issue_invite(svc, group["id"], kind="link", max_uses=1)
    expired = await issue_invite(
        svc, group["id"], kind="link", expires_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    )
    assert (await accept(svc, once["code"], "iv1")).status_code == 200
    used_up = await accept(svc, once["code"], "iv2")
    assert (used_up.status_code, used_up.json()["reason"]) == (409, "used_up")
    too_late = await accept(svc, expired["code"], "iv2")
    assert (too_late.status_code, too_late.json()["reason"]) == (409, "expired")

    # A customer's referral code is personal and stable: asking twice returns the same code.
    mine = await svc.client.post(
        f"/v1/groups/{group['id']}/invites",
        json={"kind": "referral"},
        headers=svc.auth("m1", "customer", "iv-ref"),
    )
    again = await svc.client.post(
        f"/v1/groups/{group['id']}/invites",
        json={"kind": "referral"},
        headers=svc.auth("m1", "customer", "iv-ref"),
    )
    assert mine.status_code == again.status_code == 201
    assert mine.json()["code"] == again.json()["code"]
    self_referral = await accept(svc, mine.json()["code"], "iv-ref")
    assert self_referral.json()["reason"] == "self_referral"
    accepted = await accept(svc, mine.json()["code"], "iv3")
    assert accepted.status_code == 200
    assert accepted.json()["counted"] is True
    assert accepted.json()["membership"]["route"] == "referral"

    events = await membership_events(svc)
    accepted_events = [e for e in events if isinstance(e, InviteAccepted) and str(e.group_id) == group["id"]]
    assert {(e.inviter_customer_id, e.invitee_customer_id) for e in accepted_events} == {
        (None, "iv1"),
        ("iv-ref", "iv3"),
    }


async def test_smart_invitations_are_throttled_per_customer_and_skip_members(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    settings = await svc.client.put("/v1/settings", json={"smart_invites_per_week": 2}, headers=svc.auth())
    assert settings.status_code == 200
    groups = [
        await create_group(name=f"smart-{n}", join_rules={"required_segments": ["smart:moms"]})
        for n in range(3)
    ]
    other = await create_group(name="smart-other", join_rules={"required_segments": ["smart:toddlers"]})

    def entered(customer: str, key: str, at: datetime) -> Envelope:
        event = SegmentEntered(segment_id=SEGMENT, segment_key=key, customer_id=customer, entered_at=at)
        return Envelope.wrap(event, source="segments", merchant_id="m1", subject=customer)

    first_entry = entered("sm1", "smart:moms", T0)
    await produce(svc.settings, Topic.SEGMENTS.value, first_entry, entered("sm1", "smart:toddlers", T0))
    # A replay of the same fact under a new envelope id must not invite again.
    await produce(svc.settings, Topic.SEGMENTS.value, entered("sm1", "smart:moms", T0))
    await svc.consume()
    # A blacklisted customer entering the segment is never invited.
    await svc.client.post("/v1/blacklist", json={"customer_id": "sm-blocked"}, headers=svc.auth())
    await produce(svc.settings, Topic.SEGMENTS.value, entered("sm-blocked", "smart:moms", T0))
    await svc.consume()

    async with svc.uow() as uow:
        rows = await uow.session.execute(
            text("SELECT invitee_customer_id, group_id FROM invites WHERE kind = 'smart' ORDER BY created_at")
        )
        invited = [(r.invitee_customer_id, str(r.group_id)) for r in rows]
    assert invited == [("sm1", groups[0]["id"]), ("sm1", groups[1]["id"])], (
        "two per week; the third and 'other' wait"
    )
    assert other["id"] not in {g for _, g in invited}

    events = [e for e in await membership_events(svc) if isinstance(e, InviteIssued) and e.kind == "smart"]
    assert [(e.invitee_customer_id, str(e.group_id)) for e in events] == invited

    # The invitation is personal: only its invitee can use it, and it records the smart route.
    code = events[0].code
    assert (await accept(svc, code, "someone-else")).json()["reason"] == "not_for_you"
    used = await accept(svc, code, "sm1")
    assert used.status_code == 200
    assert used.json()["membership"]["route"] == "smart_invite"

    # A member who leaves the segment and newly enters it again is not invited to the group they are in.
    # (Invitations are off while they first enter, so only the membership can stop the later one.)
    solo = await create_group(name="smart-solo", join_rules={"required_segments": ["smart:solo"]})
    await svc.client.put("/v1/settings", json={"smart_invites_per_week": 0}, headers=svc.auth())
    await produce(svc.settings, Topic.SEGMENTS.value, entered("sm-member", "smart:solo", T0))
    await svc.consume()
    await svc.client.put("/v1/settings", json={"smart_invites_per_week": 2}, headers=svc.auth())
    assert (await join(solo["id"], "sm-member")).status_code == 200
    exited = SegmentExited(
        segment_id=SEGMENT, segment_key="smart:solo", customer_id="sm-member", exited_at=T0 + HOUR
    )
    await produce(
        svc.settings, Topic.SEGMENTS.value,
        Envelope.wrap(exited, source="segments", merchant_id="m1", subject="sm-member"),
        entered("sm-member", "smart:solo", T0 + 2 * HOUR),
    )  # fmt: skip
    await svc.consume()
    async with svc.uow() as uow:
        count = await uow.session.scalar(
            text("SELECT count(*) FROM invites WHERE kind = 'smart' AND invitee_customer_id = 'sm-member'")
        )
    assert count == 0, "a member is never invited to their own group"
