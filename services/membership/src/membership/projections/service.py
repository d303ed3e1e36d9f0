"""Applying segment and tier facts to the local projection, newest fact wins, and inviting newcomers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meadow_contracts import SegmentEntered, SegmentExited, TierChanged
from meadow_runtime.consumer import Delivery

from ..domain.projection import supersedes
from ..invites.service import issue_smart_invites
from ..uow import MembershipUnitOfWork


async def apply_segment_facts(
    uow: MembershipUnitOfWork, deliveries: Sequence[Delivery[SegmentEntered] | Delivery[SegmentExited]]
) -> None:
    for delivery in deliveries:
        event: Any = delivery.event
        entered = isinstance(event, SegmentEntered)
        merchant_id = delivery.envelope.merchant_id
        as_of = event.entered_at if entered else event.exited_at
        before = await uow.projections.segment_fact(merchant_id, event.customer_id, event.segment_key)
        if not supersedes(as_of, before.as_of if before else None):
            continue  # late, replayed or duplicated: the projection already holds a newer fact
        await uow.projections.record_segment(
            merchant_id,
            event.customer_id,
            event.segment_key,
            event.segment_id,
            is_member=entered,
            as_of=as_of,
        )
        newly_entered = entered and (before is None or not before.is_member)
        if newly_entered:
            await issue_smart_invites(
                uow,
                merchant_id=merchant_id,
                customer_id=event.customer_id,
                segment_key=event.segment_key,
                cause_event_id=delivery.envelope.id,
            )


async def apply_tier_changes(uow: MembershipUnitOfWork, deliveries: Sequence[Delivery[TierChanged]]) -> None:
    for delivery in deliveries:
        event = delivery.event
        await uow.projections.record_tier(
            delivery.envelope.merchant_id, event.customer_id, event.new_tier, event.new_rank, event.changed_at
        )
