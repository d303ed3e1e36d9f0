"""comment.created, member.joined, invite.accepted + first order.paid, lottery.drawn: each earns once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from meadow_contracts import Topic
from meadow_contracts.events import CommentCreated, InviteAccepted, LotteryDrawn, MemberJoined
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually, produce

from .helpers import ORDERS, balance, deliver, ledger_invariants, merchant, order_paid, purchase_rule, wrap

CONTENT = Topic.CONTENT.value
MEMBERSHIP = Topic.MEMBERSHIP.value
NOON = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai


async def rule(svc: ServiceHarness, m: str, **body: Any) -> None:
    response = await svc.client.post(
        "/v1/earn-rules", json={"name": "r", **body}, headers=svc.auth(m, "operator")
    )
    assert response.status_code == 201, response.text


def comment(m: str, customer: str, kind: str, at: datetime = NOON, **extra: Any) -> Any:
    event = CommentCreated(
        comment_id=uuid4(), post_id=uuid4(), customer_id=customer, kind=kind, created_at=at, **extra
    )
    return wrap(event, m, customer)


async def test_check_ins_earn_up_to_the_daily_limit_and_buyer_shows_earn_their_own_points(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await rule(svc, m, kind="check_in", points=5, daily_limit=2)
    await rule(svc, m, kind="buyer_show", points=50)
    check_ins = [comment(m, "c1", "check_in", NOON + timedelta(minutes=i)) for i in range(4)]
    next_day = comment(m, "c1", "check_in", NOON + timedelta(days=1))
    staff = comment(m, "c1", "buyer_show", by_staff=True)
    plain = comment(m, "c1", "comment")
    show = comment(m, "c1", "buyer_show", image_urls=("https://img/1.jpg",))
    await deliver(svc, CONTENT, *check_ins, next_day, staff, plain, show, show)
    assert await balance(svc, m, "c1") == (5 * 2 + 5 + 50, 0)


async def test_joining_earns_once_per_group_even_after_rejoining(svc: ServiceHarness) -> None:
    m = merchant()
    await rule(svc, m, kind="join_group", points=20)
    group, other = uuid4(), uuid4()

    def joined(group_id: Any) -> Any:
        event = MemberJoined(
            group_id=group_id, subgroup_id=uuid4(), subgroup_number=1, customer_id="c1", joined_at=NOON
        )
        return wrap(event, m, "c1")

    await deliver(svc, MEMBERSHIP, joined(group), joined(group), joined(other))
    assert await balance(svc, m, "c1") == (40, 0)


def accepted(m: str, inviter: str, invitee: str, at: datetime) -> Any:
    event = InviteAccepted(
        invite_id=uuid4(),
        group_id=uuid4(),
        inviter_customer_id=inviter,
        invitee_customer_id=invitee,
        accepted_at=at,
    )
    return wrap(event, m, invitee)


async def test_a_referral_pays_the_inviter_on_the_invitees_first_order_in_either_arrival_order(
    svc: ServiceHarness,
) -> None:
    m = merchant()
    await rule(svc, m, kind="referral", points=300)
    await purchase_rule(svc, m, "0.01")
    now = datetime.now(UTC)
    # invitation first, then the order
    await deliver(svc, MEMBERSHIP, accepted(m, "alice", "bob", now - timedelta(hours=1)))
    assert await balance(svc, m, "alice") == (0, 0)
    await deliver(svc, ORDERS, order_paid(m, "bob", "o1", [("l1", "toys", 10_000)], at=now))
    assert await balance(svc, m, "alice") == (300, 0)
    # the order first, then the invitation accepted before it (delivered late, on another topic)
    await deliver(svc, ORDERS, order_paid(m, "carol", "o2", [("l1", "toys", 10_000)], at=now))
    await deliver(svc, MEMBERSHIP, accepted(m, "alice", "carol", now - timedelta(minutes=5)))
    assert await balance(svc, m, "alice") == (600, 0)
    # a second invitation of the same invitee and later orders earn nothing more
    await deliver(svc, MEMBERSHIP, accepted(m, "dave", "bob", now))
    await deliver(svc, ORDERS, order_paid(m, "bob", "o3", [("l1", "toys", 10_000)], at=now))
    assert await balance(svc, m, "dave") == (0, 0)
    # an existing customer who accepts an invitation after ordering is no new customer
    await deliver(
        svc, ORDERS, order_paid(m, "erin", "o4", [("l1", "toys", 100)], at=now - timedelta(days=30))
    )
    await deliver(svc, MEMBERSHIP, accepted(m, "alice", "erin", now))
    assert await balance(svc, m, "alice") == (600, 0)


async def test_lottery_winners_earn_the_prize_once(svc: ServiceHarness) -> None:
    m = merchant()
    await rule(svc, m, kind="lottery")
    draw = LotteryDrawn(
        lottery_id=uuid4(), post_id=uuid4(), draw_date=date(2026, 6, 1), winners=("c1", "c2"),
        prize_points=88, seed_sha256="0" * 64, seed="s", drawn_at=NOON,
    )  # fmt: skip
    replayed_under_new_id = wrap(draw, m, "lottery")
    await deliver(svc, CONTENT, wrap(draw, m, "lottery"), replayed_under_new_id)
    assert await balance(svc, m, "c1") == (88, 0)
    assert await balance(svc, m, "c2") == (88, 0)
    assert await ledger_invariants(svc, m) == {"unbalanced": [], "mismatched": []}


async def test_a_malformed_event_goes_to_the_dlq_and_the_partition_moves_on(svc: ServiceHarness) -> None:
    m = merchant()
    await purchase_rule(svc, m)
    bad = order_paid(m, "c1", "o-bad", [("l1", "toys", 100)]).model_copy(
        update={"data": {"order_id": "o-bad"}}
    )
    await produce(svc.settings, ORDERS, bad, b"not json")
    await deliver(svc, ORDERS, order_paid(m, "c1", "o-good", [("l1", "toys", 1_000)]))
    assert await balance(svc, m, "c1") == (10, 0)
    async with TopicReader(svc.settings, Topic.COMMERCE_ORDERS.dlq) as reader:
        records = await eventually(reader.read_available, until=lambda found: len(found) >= 2)
    assert sorted(r.value for r in records) == sorted([bad.to_bytes(), b"not json"])
    errors = [dict(r.headers)["dlq.error"].decode() for r in records]
    assert any("customer_id" in error for error in errors)
