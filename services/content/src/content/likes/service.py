"""Likes: a member likes a post once; the first like is announced (segments count likes per group and day)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from meadow_contracts.events import PostLiked
from meadow_runtime.auth import Principal

from ..posts.service import audience_groups, visible_post
from ..problems import forbidden
from ..uow import ContentUnitOfWork


class LikeOut(BaseModel):
    post_id: UUID
    liked_at: datetime = Field(description="when the member first liked the post")
    likes: int = Field(description="the post's likes, this one included")
    created: bool = Field(description="false if the member had liked the post already")


async def like_post(uow: ContentUnitOfWork, principal: Principal, post_id: UUID, now: datetime) -> LikeOut:
    if principal.customer_id is None or principal.is_staff:
        raise forbidden("Likes come from members: use a customer token.")
    customer = principal.customer_id
    post = await visible_post(uow, principal, post_id, now)
    groups = await audience_groups(uow, principal.merchant_id, customer, post)
    group_id = groups[0] if groups else None
    liked_at = await uow.comments.add_like(principal.merchant_id, post_id, customer, group_id)
    created = liked_at is not None
    if liked_at is None:  # liked before: nothing changes, nothing is announced again
        liked_at = await uow.comments.like_of(principal.merchant_id, post_id, customer)
        assert liked_at is not None
    else:
        uow.emit(
            PostLiked(post_id=post_id, group_id=group_id, customer_id=customer, liked_at=liked_at),
            merchant_id=principal.merchant_id,
            subject=customer,
        )
    likes = await uow.comments.like_count(principal.merchant_id, post_id)
    return LikeOut(post_id=post_id, liked_at=liked_at, likes=likes, created=created)
