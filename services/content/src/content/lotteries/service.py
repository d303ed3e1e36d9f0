"""The daily check-in lottery: commit to a seed, draw from the day's check-ins, reveal, announce."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Row

from meadow_contracts.envelope import new_event_id
from meadow_contracts.events import LotteryDrawn
from meadow_runtime.auth import Principal
from meadow_runtime.errors import Conflict, NotFound

from ..domain import lottery
from ..domain.scheduling import at_local, zone
from ..problems import invalid
from ..uow import ContentUnitOfWork
from .schemas import EntrantOut, LotteryIn, LotteryOut, VerificationIn, VerificationOut


async def create_lottery(uow: ContentUnitOfWork, principal: Principal, body: LotteryIn) -> LotteryOut:
    post = await uow.posts.get(principal.merchant_id, body.post_id)
    if post is None:
        raise invalid("/post_id", f"unknown post {body.post_id}", type_="unknown-post")
    if post.kind != "check_in_call":
        raise invalid("/post_id", "a lottery draws from a check-in call's check-ins")
    if body.group_id is not None and body.group_id not in post.group_ids:
        raise invalid("/group_id", "the check-in call is not posted to this group")
    tz = zone(await uow.audiences.timezone(principal.merchant_id))
    if body.draw_at <= at_local(body.draw_date, time(0), tz):
        raise invalid("/draw_at", f"the draw must come after {body.draw_date.isoformat()} has begun")
    if await uow.lotteries.exists_for_day(body.post_id, body.draw_date):
        raise Conflict("Lottery exists", "This check-in call already has a lottery for that day.")
    seed = lottery.new_seed()
    lottery_id = new_event_id()
    await uow.lotteries.add(
        {
            "id": lottery_id,
            "merchant_id": principal.merchant_id,
            "post_id": body.post_id,
            "group_id": body.group_id,
            "draw_date": body.draw_date,
            "draw_at": body.draw_at,
            "winners_count": body.winners,
            "prize_points": body.prize_points,
            "thoughtful_weight": body.thoughtful_weight,
            "seed": seed,
            "seed_sha256": lottery.seed_commitment(seed),
        }
    )
    return await get_lottery(uow, principal.merchant_id, lottery_id)


async def get_lottery(uow: ContentUnitOfWork, merchant_id: str, lottery_id: UUID) -> LotteryOut:
    row = await uow.lotteries.get(merchant_id, lottery_id)
    if row is None:
        raise NotFound("lottery", lottery_id)
    return to_out(row)


async def open_daily_lotteries(uow: ContentUnitOfWork, now: datetime) -> int:
    """Give each published check-in call with a lottery its lottery for today (merchant-local), once.

    The seed is committed when the day's lottery is created, before that day's draw.
    """
    opened = 0
    for call in await uow.lotteries.check_in_calls_with_lotteries(now - timedelta(days=32)):
        config = call.details["check_in_lottery"]
        tz = zone(await uow.audiences.timezone(call.merchant_id))
        today = now.astimezone(tz).date()
        first_day = call.published_at.astimezone(tz).date()
        if not first_day <= today < first_day + timedelta(days=config["days"]):
            continue
        seed = lottery.new_seed()
        opened += await uow.lotteries.add_if_absent(
            {
                "id": new_event_id(),
                "merchant_id": call.merchant_id,
                "post_id": call.id,
                "draw_date": today,
                "draw_at": at_local(today, time.fromisoformat(config["draw_time"]), tz),
                "winners_count": config["winners"],
                "prize_points": config["prize_points"],
                "thoughtful_weight": config["thoughtful_weight"],
                "seed": seed,
                "seed_sha256": lottery.seed_commitment(seed),
            }
        )
    return opened


async def draw_due(uow: ContentUnitOfWork, now: datetime, limit: int = 20) -> int:
    """Draw every due lottery this worker can lock; the caller commits."""
    due = await uow.lotteries.claim_due(now, limit)
    for row in due:
        await _draw(uow, row, now)
    return len(due)


async def _draw(uow: ContentUnitOfWork, row: Row[Any], now: datetime) -> None:
    tz = zone(await uow.audiences.timezone(row.merchant_id))
    since = at_local(row.draw_date, time(0), tz)
    until = at_local(row.draw_date + timedelta(days=1), time(0), tz)
    weights: dict[str, int] = {}
    for check_in in await uow.comments.check_ins(row.merchant_id, row.post_id, row.group_id, since, until):
        weight = row.thoughtful_weight if check_in.thoughtful else 1
        weights[check_in.customer_id] = max(weights.get(check_in.customer_id, 0), weight)
    entrants = [lottery.Entrant(c, w) for c, w in sorted(weights.items())]
    winners = lottery.draw(row.seed, entrants, row.winners_count)
    announcement_id = await _announce(uow, row, winners, now)
    await uow.lotteries.record_draw(
        row.id,
        {
            "entrants": [{"customer_id": e.customer_id, "weight": e.weight} for e in entrants],
            "winners": list(winners),
            "drawn_at": now,
            "announcement_post_id": announcement_id,
        },
    )
    uow.emit(
        LotteryDrawn(
            lottery_id=row.id,
            post_id=row.post_id,
            group_id=row.group_id,
            draw_date=row.draw_date,
            winners=winners,
            prize_points=row.prize_points,
            seed_sha256=row.seed_sha256,
            seed=row.seed,
            drawn_at=now,
        ),
        merchant_id=row.merchant_id,
        subject=row.id,
    )


def _masked(customer_id: str) -> str:
    return customer_id[:1] + "***" + customer_id[-1:] if len(customer_id) > 2 else customer_id[:1] + "***"


async def _announce(uow: ContentUnitOfWork, row: Row[Any], winners: tuple[str, ...], now: datetime) -> UUID:
    """A winners post to all the merchant's groups, due at once (announcements skip caps and quiet hours)."""
    post_id = new_event_id()
    names = "、".join(_masked(w) for w in winners) or "no entrants"
    await uow.posts.add(
        {
            "id": post_id,
            "merchant_id": row.merchant_id,
            "kind": "lottery",
            "title": f"Check-in lottery {row.draw_date.isoformat()}: winners",
            "body": f"Winners: {names}. Seed {row.seed} (sha256 {row.seed_sha256}) re-checks the draw.",
            "details": {"lottery_id": str(row.id), "winners": list(winners)},
            "group_ids": await uow.audiences.all_group_ids(row.merchant_id),
            "status": "scheduled",
            "schedule_kind": "now",
            "requested_at": now,
            "publish_at": now,
            "created_by": "lottery",
        }
    )
    return post_id


async def verify_lottery(
    uow: ContentUnitOfWork, merchant_id: str, lottery_id: UUID, seed: str | None
) -> VerificationOut:
    row = await uow.lotteries.get(merchant_id, lottery_id)
    if row is None:
        raise NotFound("lottery", lottery_id)
    if row.status != "drawn":
        raise Conflict("Not drawn yet", "The seed is revealed when the lottery is drawn.")
    return verify(
        VerificationIn(
            seed=seed if seed is not None else row.seed,
            seed_sha256=row.seed_sha256,
            entrants=[EntrantOut.model_validate(e) for e in row.entrants],
            winners_count=row.winners_count,
            winners=row.winners,
        )
    )


def verify(body: VerificationIn) -> VerificationOut:
    entrants = [lottery.Entrant(e.customer_id, e.weight) for e in body.entrants]
    ok, reason = lottery.verify(body.seed, body.seed_sha256, entrants, body.winners_count, body.winners)
    return VerificationOut(
        valid=ok,
        reason=reason,
        seed_sha256=lottery.seed_commitment(body.seed),
        expected_winners=list(lottery.draw(body.seed, entrants, body.winners_count)),
        claimed_winners=body.winners,
    )


def to_out(row: Row[Any]) -> LotteryOut:
    drawn = row.status == "drawn"
    return LotteryOut(
        id=row.id,
        post_id=row.post_id,
        group_id=row.group_id,
        draw_date=row.draw_date,
        draw_at=row.draw_at,
        winners_count=row.winners_count,
        prize_points=row.prize_points,
        thoughtful_weight=row.thoughtful_weight,
        status=row.status,
        seed_sha256=row.seed_sha256,
        seed=row.seed if drawn else None,
        entrants=[EntrantOut.model_validate(e) for e in row.entrants] if drawn else None,
        winners=row.winners if drawn else None,
        drawn_at=row.drawn_at,
        announcement_post_id=row.announcement_post_id,
    )
