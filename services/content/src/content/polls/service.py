"""Polls: one vote per member (a unique key decides under concurrency), live results, a closing time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from meadow_contracts.events import VoteCast
from meadow_runtime.auth import Principal
from meadow_runtime.errors import Conflict, Problem

from ..posts.service import visible_post
from ..problems import forbidden, invalid
from ..uow import ContentUnitOfWork


class OptionResult(BaseModel):
    id: str
    label: str
    votes: int


class PollResults(BaseModel):
    post_id: UUID
    closed: bool
    closes_at: datetime | None
    total_votes: int
    options: list[OptionResult]
    my_vote: str | None = None


class VoteOut(BaseModel):
    post_id: UUID
    option_id: str
    cast_at: datetime


async def cast_vote(
    uow: ContentUnitOfWork, principal: Principal, post_id: UUID, option_id: str, now: datetime
) -> VoteOut:
    if principal.customer_id is None or principal.is_staff:
        raise forbidden("Votes are cast by members: use a customer token.")
    post = await visible_post(uow, principal, post_id, now)
    if post.kind != "poll":
        raise invalid("/option_id", "this post is not a poll")
    if post.closes_at is not None and now >= post.closes_at:
        raise Conflict("Poll closed", f"The poll closed at {post.closes_at.isoformat()}.")
    if option_id not in {o["id"] for o in post.details["poll"]["options"]}:
        raise invalid("/option_id", f"no option {option_id!r} in this poll")
    cast_at = await uow.comments.add_vote(principal.merchant_id, post_id, principal.customer_id, option_id)
    if cast_at is None:
        raise Problem(409, "Already voted", "Each member votes once per poll.", type_="already-voted")
    uow.emit(
        VoteCast(poll_id=post_id, option_id=option_id, customer_id=principal.customer_id, cast_at=cast_at),
        merchant_id=principal.merchant_id,
        subject=principal.customer_id,
    )
    return VoteOut(post_id=post_id, option_id=option_id, cast_at=cast_at)


async def results(uow: ContentUnitOfWork, principal: Principal, post_id: UUID, now: datetime) -> PollResults:
    post = await visible_post(uow, principal, post_id, now)
    if post.kind != "poll":
        raise invalid("/post_id", "this post is not a poll")
    counts = await uow.comments.vote_counts(principal.merchant_id, post_id)
    options = [
        OptionResult(id=o["id"], label=o["label"], votes=counts.get(o["id"], 0))
        for o in post.details["poll"]["options"]
    ]
    mine = None
    if principal.customer_id is not None:
        mine = await uow.comments.vote_of(principal.merchant_id, post_id, principal.customer_id)
    return PollResults(
        post_id=post_id,
        closed=post.closes_at is not None and now >= post.closes_at,
        closes_at=post.closes_at,
        total_votes=sum(counts.values()),
        options=options,
        my_vote=mine,
    )
