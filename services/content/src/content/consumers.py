"""Which events the content service handles: audiences (membership, segments) and tiers (rewards)."""

from collections.abc import Sequence

from meadow_contracts import Topic
from meadow_contracts.events import (
    MemberBlocked,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    SegmentEntered,
    SegmentExited,
    TierChanged,
)
from meadow_runtime.consumer import Delivery, HandlerRegistry

from .uow import ContentUnitOfWork

CONSUMED_TOPICS: tuple[str, ...] = tuple(t.value for t in (Topic.MEMBERSHIP, Topic.SEGMENTS, Topic.REWARDS))

handlers = HandlerRegistry()


@handlers.on(MemberJoined)
async def member_joined(uow: ContentUnitOfWork, deliveries: Sequence[Delivery[MemberJoined]]) -> None:
    await uow.audiences.add_members(
        [(d.envelope.merchant_id, d.event.group_id, d.event.customer_id) for d in deliveries]
    )


@handlers.on(MemberLeft)
async def member_left(uow: ContentUnitOfWork, deliveries: Sequence[Delivery[MemberLeft]]) -> None:
    await uow.audiences.remove_members(
        [(d.envelope.merchant_id, d.event.group_id, d.event.customer_id) for d in deliveries]
    )


@handlers.on(MemberRemoved)
async def member_removed(uow: ContentUnitOfWork, deliveries: Sequence[Delivery[MemberRemoved]]) -> None:
    await uow.audiences.remove_members(
        [(d.envelope.merchant_id, d.event.group_id, d.event.customer_id) for d in deliveries]
    )


@handlers.one_at_a_time(MemberBlocked)
async def member_blocked(uow: ContentUnitOfWork, delivery: Delivery[MemberBlocked]) -> None:
    await uow.audiences.remove_from_all_groups(delivery.envelope.merchant_id, delivery.event.customer_id)


@handlers.one_at_a_time(SegmentEntered)
async def segment_entered(uow: ContentUnitOfWork, delivery: Delivery[SegmentEntered]) -> None:
    event = delivery.event
    await uow.audiences.set_segment_membership(
        delivery.envelope.merchant_id, event.segment_id, event.customer_id, True
    )


@handlers.one_at_a_time(SegmentExited)
async def segment_exited(uow: ContentUnitOfWork, delivery: Delivery[SegmentExited]) -> None:
    event = delivery.event
    await uow.audiences.set_segment_membership(
        delivery.envelope.merchant_id, event.segment_id, event.customer_id, False
    )


@handlers.one_at_a_time(TierChanged)
async def tier_changed(uow: ContentUnitOfWork, delivery: Delivery[TierChanged]) -> None:
    event = delivery.event
    await uow.audiences.record_tier(
        delivery.envelope.merchant_id, event.customer_id, event.new_tier, event.new_rank, event.changed_at
    )
