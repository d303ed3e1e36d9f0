"""What each incoming event earns (or takes back), applied through the ledger.

Every earning's transfer id derives from its business cause (the order, the comment, the group join, the
invitee, the lottery winner), so a replay, a duplicate with another event id, or a redelivery can never
credit twice. Events that arrive out of order (a refund before its order, an order before the invitation
it completes) are parked and settled when the other half arrives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic_core import to_json
from sqlalchemy import text

from meadow_contracts import Envelope
from meadow_contracts.events import (
    CommentCreated,
    EarnReason,
    InviteAccepted,
    LotteryDrawn,
    MemberJoined,
    OrderPaid,
    OrderRefunded,
    PointsEarned,
    PointsReversed,
)

from ..domain.earning import reversal_points
from ..domain.ids import purchase_transfer_id_bytes, transfer_id
from ..domain.ledger import reverse
from ..ledger.repository import BalanceRow, CustomerKey, PaidLine, TransferRecord, database_uuid
from ..ledger.service import SOURCE, Earning, credit, existing_transfers, open_wallet, record
from ..tiers.service import announce_tier_change, reevaluate

if TYPE_CHECKING:
    from ..uow import RewardsUnitOfWork


@dataclass(frozen=True)
class FixedRule:
    points: int
    daily_limit: int | None


async def fixed_rules(uow: RewardsUnitOfWork, merchant_ids: Iterable[str], kind: str) -> dict[str, FixedRule]:
    """The merchant's active rules of a fixed-points kind: their points add up, the tightest cap wins."""
    rows = await uow.session.execute(
        text(
            "SELECT merchant_id, sum(points) AS points, min(daily_limit) AS daily_limit FROM earn_rules "
            "WHERE merchant_id = ANY(CAST(:m AS text[])) AND kind = :k AND active GROUP BY merchant_id"
        ),
        {"m": list(set(merchant_ids)), "k": kind},
    )
    return {r.merchant_id: FixedRule(int(r.points or 0), r.daily_limit) for r in rows}


# ------------------------------------------------------------------------------------------- purchases


async def record_paid_orders(uow: RewardsUnitOfWork, paid: Iterable[tuple[Envelope, OrderPaid]]) -> None:
    """Earn per currency unit on every paid line (category rules, tier multiplier), once per order.

    The batch goes to the database as one array of line records in one call
    (`LedgerRepository.earn_purchases`): pricing, debt, transfers, lots, balances, tiers and the
    `points.earned` events are set-based SQL, so Python reads each event once and builds nothing per event
    but its line records and its transfer id.
    """
    # One record per order line, each carrying its order's fields (see migrations 0005 and 0006 for why).
    lines: list[PaidLine] = []
    seen: set[tuple[str, str]] = set()
    for position, (envelope, order) in enumerate(paid, 1):
        merchant_id, at = envelope.merchant_id, order.paid_at
        # An order delivered twice in one batch earns from its first delivery; a line id repeated within
        # an order counts once, as its last occurrence (the function relies on both).
        if (merchant_id, order.order_id) in seen:
            continue
        seen.add((merchant_id, order.order_id))
        offset = at.utcoffset()
        seconds = int(offset.total_seconds()) if offset else 0
        earning_id = database_uuid(purchase_transfer_id_bytes(merchant_id, order.order_id))
        for line in {line.line_id: line for line in order.lines}.values():
            lines.append(
                (position, merchant_id, order.order_id, order.customer_id, at, seconds, envelope.id,
                 earning_id, line.line_id, line.category, line.amount_minor)
            )  # fmt: skip
    if not lines:
        return
    now = datetime.now(UTC)
    follow_ups = await uow.ledger.earn_purchases(
        lines,
        emitted_at=to_json(now).decode().strip('"'),
        event=(PointsEarned.topic, PointsEarned.event_type, SOURCE),
    )
    parked: list[tuple[str, str]] = []
    invitees: dict[CustomerKey, datetime] = {}
    for row in follow_ups:
        if row["what"] == "tier":
            announce_tier_change(
                uow, row["merchant_id"], row["customer_id"], (row["old_tier"], row["old_rank"]),
                (row["new_tier"], row["new_rank"]), now,
            )  # fmt: skip
        elif row["what"] == "refund":
            parked.append((row["merchant_id"], row["order_id"]))
        else:
            invitees[(row["merchant_id"], row["customer_id"])] = row["at"]
    await _settle_parked_refunds(uow, parked)
    if invitees:
        await _settle_referrals(uow, invitees)


async def _settle_parked_refunds(uow: RewardsUnitOfWork, order_keys: list[tuple[str, str]]) -> None:
    if not order_keys:
        return
    parked = await uow.session.execute(
        text(
            """
            SELECT r.merchant_id, r.refund_id, r.order_id FROM refunds r
            JOIN unnest(CAST(:m AS text[]), CAST(:o AS text[])) AS k(m, o)
              ON r.merchant_id = k.m AND r.order_id = k.o
            WHERE r.reversed IS NULL ORDER BY r.refunded_at
            """
        ),
        {"m": [k[0] for k in order_keys], "o": [k[1] for k in order_keys]},
    )
    for merchant_id, refund_id, order_id in parked.all():
        await _apply_refund(uow, merchant_id, refund_id, order_id)


# --------------------------------------------------------------------------------------------- refunds


async def record_refund(uow: RewardsUnitOfWork, envelope: Envelope, refund: OrderRefunded) -> None:
    """Take back the refunded lines' points; park the refund if its order has not arrived yet."""
    merchant_id = envelope.merchant_id
    claimed = await uow.session.execute(
        text(
            """
            INSERT INTO refunds (merchant_id, refund_id, order_id, customer_id, lines, cause_event_id,
                                 refunded_at)
            VALUES (:m, :r, :o, :c, CAST(:lines AS jsonb), :e, :at)
            ON CONFLICT (merchant_id, refund_id) DO NOTHING RETURNING refund_id
            """
        ),
        {
            "m": merchant_id, "r": refund.refund_id, "o": refund.order_id, "c": refund.customer_id,
            "lines": json.dumps(_refunded_lines(refund)), "e": envelope.id, "at": refund.refunded_at,
        },
    )  # fmt: skip
    if claimed.first() is not None:
        await _apply_refund(uow, merchant_id, refund.refund_id, refund.order_id)


def _refunded_lines(refund: OrderRefunded) -> dict[str, int]:
    lines: dict[str, int] = {}
    for line in refund.lines:
        lines[line.line_id] = lines.get(line.line_id, 0) + line.amount_minor
    return lines


async def _apply_refund(uow: RewardsUnitOfWork, merchant_id: str, refund_id: str, order_id: str) -> None:
    order = (
        await uow.session.execute(
            text(
                "SELECT customer_id, paid_at, lines, earn_transfer_id FROM orders "
                "WHERE merchant_id = :m AND order_id = :o"
            ),
            {"m": merchant_id, "o": order_id},
        )
    ).first()
    if order is None:
        return  # parked until the order arrives
    locked = await open_wallet(uow, (merchant_id, order.customer_id))
    refunds = (
        await uow.session.execute(
            text(
                "SELECT refund_id, lines, reversed FROM refunds WHERE merchant_id = :m AND order_id = :o "
                "AND (reversed IS NOT NULL OR refund_id = :r) FOR UPDATE"
            ),
            {"m": merchant_id, "o": order_id, "r": refund_id},
        )
    ).all()
    this = next(r for r in refunds if r.refund_id == refund_id)
    if this.reversed is not None:
        return
    earlier = [r for r in refunds if r.reversed is not None]
    taken: dict[str, int] = {}
    for line_id, refunded_minor in this.lines.items():
        if line_id not in order.lines:
            continue
        paid_minor, earned = order.lines[line_id]
        refunded_before = sum(r.lines.get(line_id, 0) for r in earlier)
        reversed_before = sum(r.reversed.get(line_id, 0) for r in earlier)
        taken[line_id] = reversal_points(
            earned, paid_minor, refunded_before + refunded_minor, reversed_before
        )
    points = sum(taken.values())
    tid = transfer_id(merchant_id, "refund", refund_id, "reverse")
    if points > 0:
        outcome = reverse(locked.wallet, tid, points, prefer_lot=order.earn_transfer_id)
        await record(
            uow, locked, outcome,
            TransferRecord(outcome.transfer, merchant_id, order.customer_id, "refund", points,
                           datetime.now(UTC), cause_ref=f"{order_id}/{refund_id}", earned_at=order.paid_at),
        )  # fmt: skip
        uow.outbox.add(
            PointsReversed(
                transfer_id=tid, customer_id=order.customer_id, points=points, order_id=order_id,
                refund_id=refund_id, debt_added=outcome.debt_added, balance_after=outcome.wallet.balance,
                debt_after=outcome.wallet.debt,
            ),
            merchant_id=merchant_id,
            subject=order.customer_id,
        )  # fmt: skip
        changed = await reevaluate(uow, [locked.row])
        await uow.ledger.save_balances(changed)
    await uow.session.execute(
        text(
            "UPDATE refunds SET reversed = CAST(:rev AS jsonb), transfer_id = :t "
            "WHERE merchant_id = :m AND refund_id = :r"
        ),
        {"rev": json.dumps(taken), "t": tid if points > 0 else None, "m": merchant_id, "r": refund_id},
    )


# ------------------------------------------------------------------------- comments, joins, lotteries

UPSERT_DAILY = text(
    """
    INSERT INTO daily_earns (merchant_id, customer_id, reason, day, count)
    SELECT * FROM unnest(CAST(:m AS text[]), CAST(:c AS text[]), CAST(:r AS text[]), CAST(:d AS date[]),
                         CAST(:n AS int[]))
    ON CONFLICT (merchant_id, customer_id, reason, day) DO UPDATE SET count = EXCLUDED.count
    """
)


async def record_comments(
    uow: RewardsUnitOfWork, comments: Sequence[tuple[Envelope, CommentCreated]]
) -> None:
    """Buyer shows and check-ins earn their rule's points, up to the rule's daily limit per customer
    (the day in the merchant's time zone). Staff comments and plain comments earn nothing."""
    earning_kinds = {"buyer_show", "check_in"}
    eligible = [(e, c) for e, c in comments if c.kind in earning_kinds and not c.by_staff]
    if not eligible:
        return
    merchants = {e.merchant_id for e, _ in eligible}
    rules = {kind: await fixed_rules(uow, merchants, kind) for kind in earning_kinds}
    eligible = [(e, c) for e, c in eligible if e.merchant_id in rules[c.kind]]
    if not eligible:
        return
    locked = await uow.ledger.lock_balances((e.merchant_id, c.customer_id) for e, c in eligible)
    zones = await uow.ledger.merchant_settings(merchants)
    ids = {transfer_id(e.merchant_id, "comment", c.comment_id, c.kind): (e, c) for e, c in eligible}
    seen = await existing_transfers(uow, list(ids))
    days = {
        tid: c.created_at.astimezone(ZoneInfo(zones.get(e.merchant_id, (0, "Asia/Shanghai"))[1])).date()
        for tid, (e, c) in ids.items()
    }
    counted = await uow.session.execute(
        text(
            """
            SELECT d.merchant_id, d.customer_id, d.reason, d.day, d.count AS earned FROM daily_earns d
            JOIN unnest(CAST(:m AS text[]), CAST(:c AS text[])) AS k(m, c)
              ON d.merchant_id = k.m AND d.customer_id = k.c
            WHERE d.day = ANY(CAST(:days AS date[]))
            """
        ),
        {
            "m": [e.merchant_id for e, _ in eligible],
            "c": [c.customer_id for _, c in eligible],
            "days": list(set(days.values())),
        },
    )
    counts: dict[tuple[str, str, str, Any], int] = {
        (r.merchant_id, r.customer_id, r.reason, r.day): r.earned for r in counted
    }
    earnings: list[Earning] = []
    for tid, (envelope, comment) in ids.items():
        if tid in seen:
            continue
        rule = rules[comment.kind][envelope.merchant_id]
        day_key = (envelope.merchant_id, comment.customer_id, comment.kind, days[tid])
        if rule.daily_limit is not None and counts.get(day_key, 0) >= rule.daily_limit:
            continue
        counts[day_key] = counts.get(day_key, 0) + 1
        reason: EarnReason = "buyer_show" if comment.kind == "buyer_show" else "check_in"
        earnings.append(
            Earning(tid, envelope.merchant_id, comment.customer_id, rule.points, reason,
                    comment.created_at, cause_event_id=envelope.id, cause_ref=str(comment.comment_id))
        )  # fmt: skip
    if earnings:
        keys = list(counts)
        await uow.session.execute(
            UPSERT_DAILY,
            {
                "m": [k[0] for k in keys], "c": [k[1] for k in keys], "r": [k[2] for k in keys],
                "d": [k[3] for k in keys], "n": [counts[k] for k in keys],
            },
        )  # fmt: skip
        await _credit_and_reevaluate(uow, earnings, locked)


async def _credit_and_reevaluate(
    uow: RewardsUnitOfWork, earnings: list[Earning], locked: dict[CustomerKey, BalanceRow] | None = None
) -> None:
    locked = locked if locked is not None else await uow.ledger.lock_balances(e.key for e in earnings)
    credited = await credit(uow, earnings, locked, save=False)
    touched = [locked[k] for k in {c.earning.key for c in credited}]
    await reevaluate(uow, touched)
    await uow.ledger.save_balances(touched)


async def record_joins(uow: RewardsUnitOfWork, joins: Sequence[tuple[Envelope, MemberJoined]]) -> None:
    """Joining a group earns once per customer and group, however often they leave and rejoin."""
    rules = await fixed_rules(uow, {e.merchant_id for e, _ in joins}, "join_group")
    earnings = [
        Earning(transfer_id(e.merchant_id, "join", j.group_id, j.customer_id), e.merchant_id, j.customer_id,
                rules[e.merchant_id].points, "join_group", j.joined_at, cause_event_id=e.id,
                cause_ref=str(j.group_id))
        for e, j in joins
        if e.merchant_id in rules
    ]  # fmt: skip
    if earnings:
        await _credit_and_reevaluate(uow, earnings)


async def record_lottery_draws(
    uow: RewardsUnitOfWork, draws: Sequence[tuple[Envelope, LotteryDrawn]]
) -> None:
    """Each winner earns the draw's prize points (or the lottery rule's points when the draw names none)."""
    rules = await fixed_rules(uow, {e.merchant_id for e, _ in draws}, "lottery")
    earnings = [
        Earning(transfer_id(e.merchant_id, "lottery", d.lottery_id, winner), e.merchant_id, winner,
                d.prize_points or rules[e.merchant_id].points, "lottery", d.drawn_at, cause_event_id=e.id,
                cause_ref=str(d.lottery_id))
        for e, d in draws
        if e.merchant_id in rules
        for winner in dict.fromkeys(d.winners)
    ]  # fmt: skip
    if earnings:
        await _credit_and_reevaluate(uow, earnings)


# ----------------------------------------------------------------------------------------- referrals


async def record_invite_acceptances(
    uow: RewardsUnitOfWork, accepted: Sequence[tuple[Envelope, InviteAccepted]]
) -> None:
    """Remember who invited whom (the first accepted invitation wins); the inviter earns when the invitee
    pays their first order, whichever of the two events arrives first."""
    referrals = [
        (e, a)
        for e, a in accepted
        if a.inviter_customer_id and a.inviter_customer_id != a.invitee_customer_id
    ]
    if not referrals:
        return
    locked = await uow.ledger.lock_balances((e.merchant_id, a.invitee_customer_id) for e, a in referrals)
    await uow.session.execute(
        text(
            """
            INSERT INTO referrals (merchant_id, invitee_customer_id, inviter_customer_id, invite_id,
                                   accepted_at, cause_event_id)
            SELECT * FROM unnest(CAST(:m AS text[]), CAST(:c AS text[]), CAST(:i AS text[]),
                                 CAST(:inv AS uuid[]), CAST(:at AS timestamptz[]), CAST(:e AS uuid[]))
            ON CONFLICT (merchant_id, invitee_customer_id) DO NOTHING
            """
        ),
        {
            "m": [e.merchant_id for e, _ in referrals], "c": [a.invitee_customer_id for _, a in referrals],
            "i": [a.inviter_customer_id for _, a in referrals], "inv": [a.invite_id for _, a in referrals],
            "at": [a.accepted_at for _, a in referrals], "e": [e.id for e, _ in referrals],
        },
    )  # fmt: skip
    already_paid = {key: row.first_paid_at for key, row in locked.items() if row.first_paid_at is not None}
    if already_paid:
        await _settle_referrals(uow, already_paid)


async def _settle_referrals(uow: RewardsUnitOfWork, first_paid: dict[CustomerKey, datetime]) -> None:
    """For invitees (locked) who have paid, by when they first paid: reward the inviter if the first order
    came at or after the acceptance, otherwise the invitee was no new customer and the referral earns
    nothing."""
    pending = (
        await uow.session.execute(
            text(
                """
                SELECT r.merchant_id, r.invitee_customer_id, r.inviter_customer_id, r.accepted_at,
                       r.cause_event_id
                FROM referrals r
                JOIN unnest(CAST(:m AS text[]), CAST(:c AS text[])) AS k(m, c)
                  ON r.merchant_id = k.m AND r.invitee_customer_id = k.c
                WHERE r.status = 'pending'
                """
            ),
            {"m": [k[0] for k in first_paid], "c": [k[1] for k in first_paid]},
        )
    ).all()
    if not pending:
        return
    rules = await fixed_rules(uow, {p.merchant_id for p in pending}, "referral")
    earnings: list[Earning] = []
    statuses: list[tuple[str, str, str]] = []
    for p in pending:
        paid_at = first_paid[(p.merchant_id, p.invitee_customer_id)]
        eligible = paid_at >= p.accepted_at
        statuses.append((p.merchant_id, p.invitee_customer_id, "rewarded" if eligible else "not_eligible"))
        if eligible and p.merchant_id in rules and rules[p.merchant_id].points > 0:
            earnings.append(
                Earning(transfer_id(p.merchant_id, "referral", p.invitee_customer_id), p.merchant_id,
                        p.inviter_customer_id, rules[p.merchant_id].points, "referral", paid_at,
                        cause_event_id=p.cause_event_id, cause_ref=p.invitee_customer_id)
            )  # fmt: skip
    await uow.session.execute(
        text(
            """
            UPDATE referrals r SET status = v.s
            FROM unnest(CAST(:m AS text[]), CAST(:c AS text[]), CAST(:s AS text[])) AS v(m, c, s)
            WHERE r.merchant_id = v.m AND r.invitee_customer_id = v.c
            """
        ),
        {"m": [s[0] for s in statuses], "c": [s[1] for s in statuses], "s": [s[2] for s in statuses]},
    )
    if earnings:
        await _credit_and_reevaluate(uow, earnings)
