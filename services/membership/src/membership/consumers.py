"""Which events the membership service handles, and with which handler."""

from collections.abc import Sequence
from typing import Any

from meadow_contracts import SegmentEntered, SegmentExited, TierChanged, Topic
from meadow_runtime.consumer import Delivery, HandlerRegistry

from .projections import service as projections

CONSUMED_TOPICS: tuple[str, ...] = tuple(t.value for t in (Topic.SEGMENTS, Topic.REWARDS))

handlers = HandlerRegistry()


@handlers.on(SegmentEntered)
async def segment_entered(uow: Any, deliveries: Sequence[Delivery[SegmentEntered]]) -> None:
    await projections.apply_segment_facts(uow, deliveries)


@handlers.on(SegmentExited)
async def segment_exited(uow: Any, deliveries: Sequence[Delivery[SegmentExited]]) -> None:
    await projections.apply_segment_facts(uow, deliveries)


@handlers.on(TierChanged)
async def tier_changed(uow: Any, deliveries: Sequence[Delivery[TierChanged]]) -> None:
    await projections.apply_tier_changes(uow, deliveries)
