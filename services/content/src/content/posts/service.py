"""Writing posts: validation by kind, audiences, schedules placed under each group's caps and quiet hours."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Row

from meadow_contracts.envelope import new_event_id, utc_now
from meadow_runtime.auth import Principal
from meadow_runtime.errors import Conflict, NotFound

from ..audiences.repository import GroupSettings
from ..domain.scheduling import Placement, SchedulingError, best_time, next_cron_fire, place
from ..problems import forbidden, invalid
from ..uow import ContentUnitOfWork
from .schemas import CampaignIn, CampaignOut, PostIn, PostOut, PostPatch, ScheduleIn, ScheduleMoveOut

PAST_TOLERANCE = timedelta(minutes=1)
REQUIRED_BY_KIND = {
    "image": "image_urls",
    "video": "video_url",
    "product_card": "product",
    "poll": "poll",
    "early_access": "early_access",
    "flash_sale": "flash_sale",
}


def _content_fields(post: PostIn | PostPatch, pointer_prefix: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if post.image_urls is not None:
        details["image_urls"] = [str(u) for u in post.image_urls]
    if post.video_url is not None:
        details["video_url"] = str(post.video_url)
    if post.product is not None:
        details["product"] = post.product.model_dump(mode="json")
    if post.poll is not None:
        ids = [o.id for o in post.poll.options]
        if len(set(ids)) != len(ids):
            raise invalid(f"{pointer_prefix}/poll/options", "option ids must be unique")
        details["poll"] = post.poll.model_dump(mode="json")
        values["closes_at"] = post.poll.closes_at
    if post.early_access is not None:
        details["early_access"] = post.early_access.model_dump(mode="json")
        values["min_tier_rank"] = post.early_access.min_tier_rank
        values["public_at"] = post.early_access.public_at
    if post.flash_sale is not None:
        if post.flash_sale.ends_at <= post.flash_sale.starts_at:
            raise invalid(f"{pointer_prefix}/flash_sale/ends_at", "the sale must end after it starts")
        details["flash_sale"] = post.flash_sale.model_dump(mode="json")
    values["details"] = details
    return values


def _require_kind_fields(kind: str, details: dict[str, Any], pointer_prefix: str = "") -> None:
    needed = REQUIRED_BY_KIND.get(kind)
    if needed is not None and not details.get(needed):
        raise invalid(f"{pointer_prefix}/{needed}", f"a {kind} post needs {needed}")


async def _known_groups(
    uow: ContentUnitOfWork, merchant_id: str, group_ids: Sequence[UUID], pointer_prefix: str
) -> dict[UUID, GroupSettings]:
    settings = await uow.audiences.lock_groups(merchant_id, group_ids)
    for index, group_id in enumerate(group_ids):
        if group_id not in settings:
            raise invalid(
                f"{pointer_prefix}/group_ids/{index}", f"unknown group {group_id}", type_="unknown-group"
            )
    return settings


async def _requested_time(
    uow: ContentUnitOfWork,
    merchant_id: str,
    schedule: ScheduleIn,
    group_ids: Sequence[UUID],
    timezone: str,
    now: datetime,
    pointer_prefix: str,
) -> datetime:
    pointer = f"{pointer_prefix}/schedule"
    if schedule.kind == "now":
        return now
    if schedule.kind == "at":
        if schedule.at is None:
            raise invalid(f"{pointer}/at", "a schedule of kind 'at' needs at")
        if schedule.at < now - PAST_TOLERANCE:
            raise invalid(f"{pointer}/at", "is in the past")
        return max(schedule.at, now)
    if schedule.kind == "cron":
        if not schedule.cron:
            raise invalid(f"{pointer}/cron", "a schedule of kind 'cron' needs cron")
        try:
            return next_cron_fire(schedule.cron, timezone, now)
        except SchedulingError as error:
            raise invalid(f"{pointer}/{error.field}", str(error), type_="invalid-schedule") from error
    histogram = await uow.posts.hourly_activity(merchant_id, group_ids, timezone, now) if group_ids else {}
    return best_time(histogram, timezone, now)


async def _placement(
    uow: ContentUnitOfWork,
    merchant_id: str,
    requested: datetime,
    group_ids: Sequence[UUID],
    group_settings: dict[UUID, GroupSettings],
    timezone: str,
    excluding: UUID | None,
) -> Placement:
    if not group_ids:
        return Placement(requested)
    taken = await uow.posts.taken_slots(
        merchant_id, group_ids, requested - timedelta(days=2), excluding=excluding
    )
    try:
        return place(
            requested,
            timezone,
            {str(g): group_settings[g].rules for g in group_ids},
            {str(g): slots for g, slots in taken.items()},
        )
    except SchedulingError as error:
        raise invalid("/schedule", str(error), type_="invalid-schedule") from error


async def _schedule_values(
    uow: ContentUnitOfWork,
    merchant_id: str,
    schedule: ScheduleIn,
    group_ids: Sequence[UUID],
    group_settings: dict[UUID, GroupSettings],
    now: datetime,
    pointer_prefix: str,
    excluding: UUID | None,
) -> dict[str, Any]:
    timezone = await uow.audiences.timezone(merchant_id)
    requested = await _requested_time(uow, merchant_id, schedule, group_ids, timezone, now, pointer_prefix)
    placement = await _placement(uow, merchant_id, requested, group_ids, group_settings, timezone, excluding)
    notes = [
        {
            "reason": m.reason,
            "group_id": m.group_id,
            "from_at": m.from_at.isoformat(),
            "to_at": m.to_at.isoformat(),
            "detail": m.detail,
        }
        for m in placement.moves
    ]
    return {
        "status": "scheduled",
        "schedule_kind": schedule.kind,
        "cron": schedule.cron if schedule.kind == "cron" else None,
        "requested_at": requested,
        "publish_at": placement.at,
        "schedule_notes": notes,
    }


async def create_post(
    uow: ContentUnitOfWork,
    principal: Principal,
    body: PostIn,
    now: datetime,
    *,
    campaign_id: UUID | None = None,
    pointer_prefix: str = "",
) -> PostOut:
    content = _content_fields(body, pointer_prefix)
    _require_kind_fields(body.kind, content["details"], pointer_prefix)
    if body.check_in_lottery is not None:
        if body.kind != "check_in_call":
            raise invalid(f"{pointer_prefix}/check_in_lottery", "only check-in calls carry a lottery")
        content["details"]["check_in_lottery"] = body.check_in_lottery.model_dump(mode="json")
    if not body.group_ids and not body.segment_ids:
        raise invalid(f"{pointer_prefix}/group_ids", "target at least one group or segment")
    group_settings = await _known_groups(uow, principal.merchant_id, body.group_ids, pointer_prefix)
    post_id = new_event_id()
    values: dict[str, Any] = {
        "id": post_id,
        "merchant_id": principal.merchant_id,
        "kind": body.kind,
        "title": body.title,
        "body": body.body,
        "group_ids": list(dict.fromkeys(body.group_ids)),
        "segment_ids": list(dict.fromkeys(body.segment_ids)),
        "campaign_id": campaign_id,
        "status": "draft",
        "created_by": principal.subject,
        **content,
    }
    if body.schedule is not None:
        values |= await _schedule_values(
            uow,
            principal.merchant_id,
            body.schedule,
            values["group_ids"],
            group_settings,
            now,
            pointer_prefix,
            excluding=None,
        )
        if body.schedule.kind == "cron":
            values["series_id"] = post_id
    await uow.posts.add(values)
    return await get_post(uow, principal.merchant_id, post_id)


async def edit_post(
    uow: ContentUnitOfWork, principal: Principal, post_id: UUID, patch: PostPatch, now: datetime
) -> PostOut:
    row = await _editable(uow, principal.merchant_id, post_id)
    values: dict[str, Any] = {}
    for name in ("title", "body", "group_ids", "segment_ids"):
        if getattr(patch, name) is not None:
            values[name] = getattr(patch, name)
    content = _content_fields(patch)
    details = {**row.details, **content.pop("details")}
    _require_kind_fields(row.kind, details)
    values |= content | {"details": details}
    group_ids = values.get("group_ids", row.group_ids)
    if not group_ids and not values.get("segment_ids", row.segment_ids):
        raise invalid("/group_ids", "target at least one group or segment")
    group_settings = await _known_groups(uow, principal.merchant_id, group_ids, "")
    schedule = patch.schedule
    if schedule is None and row.status == "scheduled" and "group_ids" in values:
        schedule = ScheduleIn(kind=row.schedule_kind, at=row.requested_at, cron=row.cron)
        if schedule.kind in ("at", "now"):
            schedule = ScheduleIn(kind="at", at=max(row.requested_at, now))
    if schedule is not None:
        values |= await _schedule_values(
            uow, principal.merchant_id, schedule, group_ids, group_settings, now, "", excluding=post_id
        )
        if schedule.kind == "cron":
            values["series_id"] = row.series_id or post_id
    await uow.posts.update(principal.merchant_id, post_id, values)
    return await get_post(uow, principal.merchant_id, post_id)


async def cancel_post(uow: ContentUnitOfWork, principal: Principal, post_id: UUID) -> PostOut:
    row = await uow.posts.get(principal.merchant_id, post_id, for_update=True)
    if row is None:
        raise NotFound("post", post_id)
    if row.status == "published":
        raise Conflict("Post already published", "A published post cannot be cancelled.")
    if row.status != "cancelled":
        await uow.posts.update(principal.merchant_id, post_id, {"status": "cancelled"})
    return await get_post(uow, principal.merchant_id, post_id)


async def _editable(uow: ContentUnitOfWork, merchant_id: str, post_id: UUID) -> Row[Any]:
    row = await uow.posts.get(merchant_id, post_id, for_update=True)
    if row is None:
        raise NotFound("post", post_id)
    if row.status not in ("draft", "scheduled"):
        raise Conflict(f"Post is {row.status}", "Only draft and scheduled posts can be edited.")
    return row


async def get_post(uow: ContentUnitOfWork, merchant_id: str, post_id: UUID) -> PostOut:
    row = await uow.posts.get(merchant_id, post_id)
    if row is None:
        raise NotFound("post", post_id)
    return to_out(row)


async def visible_post(
    uow: ContentUnitOfWork, principal: Principal, post_id: UUID, now: datetime
) -> Row[Any]:
    """The post if the caller may see it: staff see every post, members published posts meant for them."""
    row = await uow.posts.get(principal.merchant_id, post_id)
    if row is None:
        raise NotFound("post", post_id)
    if principal.is_staff or principal.role == "service":
        return row
    assert principal.customer_id is not None
    if row.status != "published":
        raise NotFound("post", post_id)
    if not await in_audience(uow, principal.merchant_id, principal.customer_id, row):
        raise forbidden("This post is for other groups or segments.", type_="not-in-audience")
    if row.min_tier_rank is not None and row.public_at is not None and now < row.public_at:
        rank = await uow.audiences.tier_rank(principal.merchant_id, principal.customer_id)
        if rank < row.min_tier_rank:
            raise forbidden(
                f"Early access for tier rank {row.min_tier_rank} and above"
                f" until {row.public_at.isoformat()}.",
                type_="early-access",
            )
    return row


async def in_audience(uow: ContentUnitOfWork, merchant_id: str, customer_id: str, row: Row[Any]) -> bool:
    return bool(await audience_groups(uow, merchant_id, customer_id, row)) or bool(
        set(row.segment_ids) & await uow.audiences.member_segments(merchant_id, customer_id)
    )


async def audience_groups(
    uow: ContentUnitOfWork, merchant_id: str, customer_id: str, row: Row[Any]
) -> list[UUID]:
    """The post's groups the customer is a member of, in the post's order."""
    mine = await uow.audiences.member_groups(merchant_id, customer_id)
    return [g for g in row.group_ids if g in mine]


async def feed(uow: ContentUnitOfWork, principal: Principal, now: datetime, limit: int) -> list[PostOut]:
    assert principal.customer_id is not None
    merchant_id, customer_id = principal.merchant_id, principal.customer_id
    group_ids = await uow.audiences.member_groups(merchant_id, customer_id)
    segment_ids = await uow.audiences.member_segments(merchant_id, customer_id)
    rank = await uow.audiences.tier_rank(merchant_id, customer_id)
    rows = await uow.posts.feed(merchant_id, group_ids, segment_ids, limit)
    return [
        to_out(row)
        for row in rows
        if row.min_tier_rank is None
        or row.public_at is None
        or now >= row.public_at
        or rank >= row.min_tier_rank
    ]


async def create_campaign(
    uow: ContentUnitOfWork, principal: Principal, body: CampaignIn, now: datetime
) -> CampaignOut:
    campaign_id = new_event_id()
    await uow.posts.add_campaign({"id": campaign_id, "merchant_id": principal.merchant_id, "name": body.name})
    for index, post in enumerate(body.posts):
        await create_post(
            uow, principal, post, now, campaign_id=campaign_id, pointer_prefix=f"/posts/{index}"
        )
    return await get_campaign(uow, principal.merchant_id, campaign_id)


async def get_campaign(uow: ContentUnitOfWork, merchant_id: str, campaign_id: UUID) -> CampaignOut:
    row = await uow.posts.get_campaign(merchant_id, campaign_id)
    if row is None:
        raise NotFound("campaign", campaign_id)
    members = await uow.posts.list_posts(merchant_id, status=None, campaign_id=campaign_id, limit=100)
    ordered = sorted(
        (to_out(p) for p in members), key=lambda p: (p.publish_at is None, p.publish_at, p.created_at)
    )
    return CampaignOut(id=row.id, name=row.name, status=row.status, posts=ordered, created_at=row.created_at)


async def cancel_campaign(uow: ContentUnitOfWork, principal: Principal, campaign_id: UUID) -> CampaignOut:
    if await uow.posts.get_campaign(principal.merchant_id, campaign_id, for_update=True) is None:
        raise NotFound("campaign", campaign_id)
    await uow.posts.cancel_campaign(principal.merchant_id, campaign_id)
    return await get_campaign(uow, principal.merchant_id, campaign_id)


def flash_sale_state(details: dict[str, Any], now: datetime) -> Literal["upcoming", "open", "ended"] | None:
    sale = details.get("flash_sale")
    if not sale:
        return None
    if now < datetime.fromisoformat(sale["starts_at"]):
        return "upcoming"
    return "open" if now < datetime.fromisoformat(sale["ends_at"]) else "ended"


def to_out(row: Row[Any], now: datetime | None = None) -> PostOut:
    notes = [ScheduleMoveOut.model_validate(n) for n in row.schedule_notes]
    return PostOut(
        id=row.id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        details=row.details,
        group_ids=list(row.group_ids),
        segment_ids=list(row.segment_ids),
        campaign_id=row.campaign_id,
        series_id=row.series_id,
        status=row.status,
        schedule_kind=row.schedule_kind,
        cron=row.cron,
        requested_at=row.requested_at,
        publish_at=row.publish_at,
        rescheduled=bool(notes),
        schedule_notes=notes,
        min_tier_rank=row.min_tier_rank,
        public_at=row.public_at,
        flash_sale_state=flash_sale_state(row.details, now or utc_now()),
        closes_at=row.closes_at,
        published_at=row.published_at,
        created_at=row.created_at,
    )
