"""Which events the rewards service handles, and with which handler.

Handlers receive runs of same-typed deliveries inside the runner's transaction and never commit.
"""

from collections.abc import Sequence

from meadow_contracts import Topic
from meadow_contracts.events import (
    CommentCreated,
    InviteAccepted,
    LotteryDrawn,
    MemberJoined,
    OrderPaid,
    OrderRefunded,
)
from meadow_runtime.consumer import Delivery, HandlerRegistry

from .earning import service
from .uow import RewardsUnitOfWork

CONSUMED_TOPICS: tuple[str, ...] = tuple(
    t.value for t in (Topic.COMMERCE_ORDERS, Topic.CONTENT, Topic.MEMBERSHIP)
)

handlers = HandlerRegistry()


@handlers.on(OrderPaid)
async def order_paid(uow: RewardsUnitOfWork, deliveries: Sequence[Delivery[OrderPaid]]) -> None:
    await service.record_paid_orders(uow, [(d.envelope, d.event) for d in deliveries])


@handlers.one_at_a_time(OrderRefunded)
async def order_refunded(uow: RewardsUnitOfWork, delivery: Delivery[OrderRefunded]) -> None:
    await service.record_refund(uow, delivery.envelope, delivery.event)


@handlers.on(CommentCreated)
async def comment_created(uow: RewardsUnitOfWork, deliveries: Sequence[Delivery[CommentCreated]]) -> None:
    await service.record_comments(uow, [(d.envelope, d.event) for d in deliveries])


@handlers.on(MemberJoined)
async def member_joined(uow: RewardsUnitOfWork, deliveries: Sequence[Delivery[MemberJoined]]) -> None:
    await service.record_joins(uow, [(d.envelope, d.event) for d in deliveries])


@handlers.on(InviteAccepted)
async def invite_accepted(uow: RewardsUnitOfWork, deliveries: Sequence[Delivery[InviteAccepted]]) -> None:
    await service.record_invite_acceptances(uow, [(d.envelope, d.event) for d in deliveries])


@handlers.on(LotteryDrawn)
async def lottery_drawn(uow: RewardsUnitOfWork, deliveries: Sequence[Delivery[LotteryDrawn]]) -> None:
    await service.record_lottery_draws(uow, [(d.envelope, d.event) for d in deliveries])
