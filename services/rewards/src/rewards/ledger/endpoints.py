"""Balances (now or as of a past time), history, upcoming expiries, and audited staff adjustments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import text
from uuid_utils import uuid7

from meadow_contracts.events import PointsSpent
from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.errors import Conflict, field_problem
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently

from ..api import RewardsUoW
from ..domain.ledger import InsufficientPoints, deduct
from ..tiers.service import reevaluate
from .repository import TransferRecord
from .schemas import (
    Adjustment,
    AdjustmentRequest,
    AuditedAdjustment,
    Balance,
    Expiry,
    HistoryEntry,
    HistoryPage,
)
from .service import Earning, credit, expire_due, open_wallet, record

router = APIRouter(prefix="/v1/customers/{customer_id}", tags=["ledger"])

BALANCE_AS_OF = text(
    """
    SELECT coalesce(sum(posted_customer), 0) AS points, coalesce(-sum(posted_debt), 0) AS debt
    FROM transfers
    WHERE merchant_id = :m AND customer_id = :c AND recorded_at <= :at
    """
)

HISTORY = text(
    """
    SELECT seq, id, kind, reason, points, cause_ref, actor, note, occurred_at, recorded_at,
           posted_customer AS balance_change, -posted_debt AS debt_change
    FROM transfers
    WHERE merchant_id = :m AND customer_id = :c AND seq < :before
    ORDER BY seq DESC
    LIMIT :limit
    """
)


@router.get("/balance", response_model=Balance)
async def get_balance(
    customer_id: str,
    principal: CurrentPrincipal,
    uow: RewardsUoW,
    as_of: Annotated[datetime | None, Query(description="the balance at this past instant")] = None,
) -> Balance:
    principal.require_customer_access(customer_id)
    if as_of is not None:
        if as_of.tzinfo is None:
            raise field_problem("/as_of", "needs a time zone")
        row = (
            await uow.session.execute(
                BALANCE_AS_OF, {"m": principal.merchant_id, "c": customer_id, "at": as_of}
            )
        ).one()
        return Balance(customer_id=customer_id, points=row.points, debt=row.debt, as_of=as_of)
    current = (
        await uow.session.execute(
            text(
                "SELECT points, debt, tier_rank, tier_name FROM balances "
                "WHERE merchant_id = :m AND customer_id = :c"
            ),
            {"m": principal.merchant_id, "c": customer_id},
        )
    ).first()
    if current is None:
        return Balance(customer_id=customer_id, points=0, debt=0, tier_rank=0)
    return Balance(
        customer_id=customer_id, points=current.points, debt=current.debt, tier_rank=current.tier_rank,
        tier_name=current.tier_name,
    )  # fmt: skip


@router.get("/history", response_model=HistoryPage)
async def get_history(
    customer_id: str,
    principal: CurrentPrincipal,
    uow: RewardsUoW,
    cursor: Annotated[str | None, Query(description="from the previous page's next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HistoryPage:
    principal.require_customer_access(customer_id)
    before = 2**63 - 1
    if cursor is not None:
        if not (len(cursor) <= 19 and cursor.isascii() and cursor.isdigit() and int(cursor) < before):
            raise field_problem("/cursor", "not a cursor from this API")
        before = int(cursor)
    rows = (
        await uow.session.execute(
            HISTORY, {"m": principal.merchant_id, "c": customer_id, "before": before, "limit": limit + 1}
        )
    ).all()
    items = [
        HistoryEntry(
            transfer_id=r.id, kind=r.kind, reason=r.reason, points=r.points, balance_change=r.balance_change,
            debt_change=r.debt_change, cause_ref=r.cause_ref, actor=r.actor, note=r.note,
            occurred_at=r.occurred_at, recorded_at=r.recorded_at,
        )
        for r in rows[:limit]
    ]  # fmt: skip
    return HistoryPage(items=items, next_cursor=str(rows[limit - 1].seq) if len(rows) > limit else None)


@router.get("/expiries", response_model=list[Expiry])
async def get_expiries(customer_id: str, principal: CurrentPrincipal, uow: RewardsUoW) -> list[Expiry]:
    """Points still held, by the instant they expire, soonest first."""
    principal.require_customer_access(customer_id)
    rows = await uow.session.execute(
        text(
            "SELECT expires_at, sum(remaining) AS points FROM lots "
            "WHERE merchant_id = :m AND customer_id = :c AND remaining > 0 "
            "GROUP BY expires_at ORDER BY expires_at"
        ),
        {"m": principal.merchant_id, "c": customer_id},
    )
    return [Expiry(expires_at=r.expires_at, points=r.points) for r in rows]


@router.post("/adjustments", response_model=Adjustment, status_code=status.HTTP_201_CREATED)
async def adjust(
    customer_id: str,
    body: AdjustmentRequest,
    request: Request,
    principal: StaffPrincipal,
    uow: RewardsUoW,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Credit or deduct points by hand. Who did it and why stay on the transfer (see history)."""
    principal.require_role("operator")
    merchant_id = principal.merchant_id

    async def action() -> Adjustment:
        now = datetime.now(UTC)
        adjustment_id = UUID(str(uuid7()))
        if body.points > 0:
            earning = Earning(
                adjustment_id, merchant_id, customer_id, body.points, "adjustment", now,
                actor=principal.subject, note=body.reason,
            )  # fmt: skip
            key = (merchant_id, customer_id)
            rows = await uow.ledger.lock_balances([key])
            await credit(uow, [earning], rows, save=False)
            await reevaluate(uow, [rows[key]])
            await uow.ledger.save_balances([rows[key]])
            after = rows[key]
            return Adjustment(
                transfer_id=adjustment_id, customer_id=customer_id, points=body.points, reason=body.reason,
                actor=principal.subject, balance_after=after.points, debt_after=after.debt, recorded_at=now,
            )  # fmt: skip
        locked = await open_wallet(uow, (merchant_id, customer_id))
        await expire_due(uow, locked, now)
        try:
            outcome = deduct(locked.wallet, adjustment_id, -body.points, now)
        except InsufficientPoints as error:
            raise Conflict(
                "Insufficient points", str(error), wanted=error.wanted, available=error.available
            ) from error
        entry = TransferRecord(
            outcome.transfer, merchant_id, customer_id, "adjustment", -body.points, now,
            actor=principal.subject, note=body.reason,
        )  # fmt: skip
        await record(uow, locked, outcome, entry)
        # No dedicated "points deducted" event exists yet: a deduction leaves like a spend without redemption.
        uow.outbox.add(
            PointsSpent(
                transfer_id=adjustment_id, customer_id=customer_id, points=-body.points,
                balance_after=outcome.wallet.balance,
            ),
            merchant_id=merchant_id,
            subject=customer_id,
        )  # fmt: skip
        return Adjustment(
            transfer_id=adjustment_id, customer_id=customer_id, points=body.points, reason=body.reason,
            actor=principal.subject, balance_after=outcome.wallet.balance, debt_after=outcome.wallet.debt,
            recorded_at=now,
        )  # fmt: skip

    return await run_idempotently(
        uow, request, caller=principal, key=idempotency_key, action=action, status_code=201
    )


audit_router = APIRouter(prefix="/v1/adjustments", tags=["ledger"])


@audit_router.get("", response_model=list[AuditedAdjustment])
async def list_adjustments(
    principal: StaffPrincipal,
    uow: RewardsUoW,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditedAdjustment]:
    """The audit trail of manual adjustments, newest first."""
    rows = await uow.session.execute(
        text(
            """
            SELECT t.id, t.customer_id, t.kind, t.points, t.note, t.actor, t.recorded_at
            FROM transfers t
            WHERE t.merchant_id = :m AND t.actor IS NOT NULL AND (t.reason = 'adjustment')
              AND (CAST(:c AS text) IS NULL OR t.customer_id = :c)
            ORDER BY t.seq DESC LIMIT :limit
            """
        ),
        {"m": principal.merchant_id, "c": customer_id, "limit": limit},
    )
    return [
        AuditedAdjustment(
            transfer_id=r.id, customer_id=r.customer_id, points=r.points if r.kind == "earn" else -r.points,
            reason=r.note, actor=r.actor, recorded_at=r.recorded_at,
        )
        for r in rows
    ]  # fmt: skip
