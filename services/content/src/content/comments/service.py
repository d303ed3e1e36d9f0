"""Members comment on what they can see; staff may add links, reply, mark thoughtful and hide."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row

from meadow_contracts.envelope import new_event_id
from meadow_contracts.events import CommentCreated
from meadow_runtime.auth import Principal
from meadow_runtime.errors import Conflict, NotFound

from ..domain.links import find_link
from ..posts.service import audience_groups, visible_post
from ..problems import forbidden, invalid
from ..uow import ContentUnitOfWork
from .schemas import CommentFlagsIn, CommentIn, CommentOut


async def add_comment(
    uow: ContentUnitOfWork, principal: Principal, post_id: UUID, body: CommentIn, now: datetime
) -> CommentOut:
    if principal.role == "service":
        raise forbidden("Comments come from members or staff.")
    post = await visible_post(uow, principal, post_id, now)
    if post.status != "published":
        raise Conflict("Post not published", "Comments open once the post is published.")
    by_staff = principal.is_staff
    if not by_staff:
        link = find_link(body.body)
        if link is not None:
            raise invalid("/body", f"only staff may post links (found {link!r})", type_="link-not-allowed")
    if body.kind == "check_in" and post.kind != "check_in_call":
        raise invalid("/kind", "check-ins go on check-in calls")
    if body.kind == "buyer_show":
        if not body.image_urls:
            raise invalid("/image_urls", "a buyer show needs at least one photo")
        if body.order_id is None:
            raise invalid("/order_id", "a buyer show names the order it shows")
    if body.reply_to is not None:
        parent = await uow.comments.get(principal.merchant_id, body.reply_to)
        if parent is None or parent.post_id != post_id:
            raise invalid("/reply_to", "no such comment on this post")
    author = principal.subject if by_staff else principal.customer_id
    assert author is not None
    group_id = None
    if not by_staff:
        groups = await audience_groups(uow, principal.merchant_id, author, post)
        group_id = groups[0] if groups else None
    row = await uow.comments.add(
        {
            "id": new_event_id(),
            "merchant_id": principal.merchant_id,
            "post_id": post_id,
            "group_id": group_id,
            "customer_id": author,
            "by_staff": by_staff,
            "kind": body.kind,
            "body": body.body,
            "image_urls": [str(u) for u in body.image_urls],
            "order_id": body.order_id,
            "reply_to": body.reply_to,
            "created_at": now,
        }
    )
    uow.emit(
        CommentCreated(
            comment_id=row.id,
            post_id=post_id,
            group_id=group_id,
            customer_id=author,
            kind=body.kind,
            by_staff=by_staff,
            order_id=body.order_id,
            image_urls=tuple(row.image_urls),
            created_at=row.created_at,
        ),
        merchant_id=principal.merchant_id,
        subject=author,
    )
    return to_out(row)


async def flag_comment(
    uow: ContentUnitOfWork, principal: Principal, comment_id: UUID, flags: CommentFlagsIn
) -> CommentOut:
    values = flags.model_dump(exclude_none=True)
    if not values:
        raise invalid("/thoughtful", "give thoughtful or hidden")
    row = await uow.comments.mark(principal.merchant_id, comment_id, values)
    if row is None:
        raise NotFound("comment", comment_id)
    return to_out(row)


async def list_comments(
    uow: ContentUnitOfWork, principal: Principal, post_id: UUID, now: datetime, limit: int
) -> list[CommentOut]:
    await visible_post(uow, principal, post_id, now)
    rows = await uow.comments.for_post(
        principal.merchant_id, post_id, include_hidden=principal.is_staff, limit=limit
    )
    return [to_out(r) for r in rows]


def to_out(row: Row[Any]) -> CommentOut:
    return CommentOut(
        id=row.id,
        post_id=row.post_id,
        group_id=row.group_id,
        customer_id=row.customer_id,
        by_staff=row.by_staff,
        kind=row.kind,
        body=row.body,
        image_urls=list(row.image_urls),
        order_id=row.order_id,
        reply_to=row.reply_to,
        thoughtful=row.thoughtful,
        hidden=row.hidden,
        created_at=row.created_at,
    )
