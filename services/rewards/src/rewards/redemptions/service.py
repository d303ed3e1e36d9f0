"""Redeeming a catalog reward: points and stock in one transaction, or neither; cancelling gives both back.

Locks, always in this order: the customer's balance row (serialises one customer's redemptions, so the
per-customer limit and the points check cannot race), then the reward row (the conditional stock update).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import text
from uuid_utils import uuid7

from meadow_contracts.events import PointsSpent, RedemptionCancelled, RedemptionCompleted
from meadow_runtime.errors import Conflict, NotFound, Problem

from ..catalog.repository import CatalogRepository
from ..domain.ids import transfer_id
from ..domain.ledger import InsufficientPoints, restore, spend
from ..ledger.repository import TransferRecord, allocations_from_json, allocations_json
from ..ledger.service import expire_due, open_wallet, record

if TYPE_CHECKING:
    from ..uow import RewardsUnitOfWork

COLUMNS = (
    "id, customer_id, reward_id, quantity, points, status, transfer_id, created_at, "
    "cancelled_at, cancelled_by"
)


async def redeem(
    uow: RewardsUnitOfWork, merchant_id: str, customer_id: str, reward_id: UUID, quantity: int
) -> dict[str, Any]:
    now = datetime.now(UTC)
    catalog = CatalogRepository(uow.session)
    reward = await catalog.get(merchant_id, reward_id)
    if reward is None:
        raise NotFound("reward", reward_id)
    if (
        not reward["active"]
        or (reward["valid_from"] and now < reward["valid_from"])
        or (reward["valid_until"] and now >= reward["valid_until"])
    ):
        raise Conflict("Reward not available", "The reward is retired or outside its validity window.")
    locked = await open_wallet(uow, (merchant_id, customer_id))
    if locked.row.tier_rank < reward["min_tier_rank"]:
        raise Problem(
            403, "Tier too low", f"This reward needs tier rank {reward['min_tier_rank']}.",
            type_="tier-too-low",
            tier_rank=locked.row.tier_rank, required_rank=reward["min_tier_rank"],
        )  # fmt: skip
    if reward["per_customer_limit"] is not None:
        taken = (
            await uow.session.execute(
                text(
                    "SELECT coalesce(sum(quantity), 0) FROM redemptions "
                    "WHERE merchant_id = :m AND customer_id = :c AND reward_id = :r AND status = 'completed'"
                ),
                {"m": merchant_id, "c": customer_id, "r": reward_id},
            )
        ).scalar_one()
        if taken + quantity > reward["per_customer_limit"]:
            raise Conflict(
                "Per-customer limit reached",
                f"At most {reward['per_customer_limit']} per customer; {taken} already redeemed.",
                limit=reward["per_customer_limit"], redeemed=int(taken),
            )  # fmt: skip
    await expire_due(uow, locked, now)
    points = reward["points_price"] * quantity
    redemption_id = UUID(str(uuid7()))
    spend_id = transfer_id(merchant_id, "redemption", redemption_id, "spend")
    try:
        outcome = spend(locked.wallet, spend_id, points, now)
    except InsufficientPoints as error:
        raise Conflict(
            "Insufficient points", str(error), wanted=error.wanted, available=error.available
        ) from error
    await record(
        uow, locked, outcome,
        TransferRecord(outcome.transfer, merchant_id, customer_id, "redemption", points, now,
                       cause_ref=str(redemption_id)),
    )  # fmt: skip
    row = (
        await uow.session.execute(
            text(
                f"""
                INSERT INTO redemptions (id, merchant_id, customer_id, reward_id, quantity, points, status,
                                         allocations, transfer_id)
                VALUES (:id, :m, :c, :r, :q, :p, 'completed', CAST(:alloc AS jsonb), :t)
                RETURNING {COLUMNS}
                """
            ),
            {
                "id": redemption_id,
                "m": merchant_id,
                "c": customer_id,
                "r": reward_id,
                "q": quantity,
                "p": points,
                "alloc": allocations_json(outcome.allocations),
                "t": spend_id,
            },
        )
    ).one()
    uow.outbox.add(
        PointsSpent(
            transfer_id=spend_id, customer_id=customer_id, points=points, redemption_id=redemption_id,
            balance_after=outcome.wallet.balance,
        ),
        merchant_id=merchant_id,
        subject=customer_id,
    )  # fmt: skip
    uow.outbox.add(
        RedemptionCompleted(
            redemption_id=redemption_id, customer_id=customer_id, reward_id=reward_id, quantity=quantity,
            points=points,
        ),
        merchant_id=merchant_id,
        subject=customer_id,
    )  # fmt: skip
    # Last, so the reward row (the one lock all redeemers of this reward share) is held only until commit.
    if not await catalog.take_stock(merchant_id, reward_id, quantity, unlimited=reward["stock"] is None):
        raise Conflict("Out of stock", "The reward has no stock left for this quantity.")
    return dict(row._mapping)


async def cancel(uow: RewardsUnitOfWork, merchant_id: str, redemption_id: UUID, actor: str) -> dict[str, Any]:
    """Give the points back (repaying any debt first) and return the stock; cancelling twice is a no-op."""
    found = (
        await uow.session.execute(
            text(
                f"SELECT {COLUMNS}, allocations FROM redemptions "
                "WHERE merchant_id = :m AND id = :id FOR UPDATE"
            ),
            {"m": merchant_id, "id": redemption_id},
        )
    ).first()
    if found is None:
        raise NotFound("redemption", redemption_id)
    if found.status == "cancelled":
        return {k: v for k, v in found._mapping.items() if k != "allocations"}
    allocations = allocations_from_json(found.allocations)
    locked = await open_wallet(uow, (merchant_id, found.customer_id), [a.lot_id for a in allocations])
    restore_id = transfer_id(merchant_id, "redemption", redemption_id, "cancel")
    outcome = restore(locked.wallet, restore_id, allocations)
    now = datetime.now(UTC)
    await record(
        uow, locked, outcome,
        TransferRecord(outcome.transfer, merchant_id, found.customer_id, "cancellation", found.points, now,
                       cause_ref=str(redemption_id), actor=actor),
    )  # fmt: skip
    await CatalogRepository(uow.session).return_stock(merchant_id, found.reward_id, found.quantity)
    row = (
        await uow.session.execute(
            text(
                f"UPDATE redemptions SET status = 'cancelled', cancelled_at = :now, cancelled_by = :actor "
                f"WHERE id = :id RETURNING {COLUMNS}"
            ),
            {"now": now, "actor": actor, "id": redemption_id},
        )
    ).one()
    uow.outbox.add(
        RedemptionCancelled(
            redemption_id=redemption_id, customer_id=found.customer_id, reward_id=found.reward_id,
            points_refunded=found.points,
        ),
        merchant_id=merchant_id,
        subject=found.customer_id,
    )  # fmt: skip
    return dict(row._mapping)


async def get(uow: RewardsUnitOfWork, merchant_id: str, redemption_id: UUID) -> dict[str, Any]:
    found = (
        await uow.session.execute(
            text(f"SELECT {COLUMNS} FROM redemptions WHERE merchant_id = :m AND id = :id"),
            {"m": merchant_id, "id": redemption_id},
        )
    ).first()
    if found is None:
        raise NotFound("redemption", redemption_id)
    return dict(found._mapping)


async def of_customer(uow: RewardsUnitOfWork, merchant_id: str, customer_id: str) -> list[dict[str, Any]]:
    rows = await uow.session.execute(
        text(
            f"SELECT {COLUMNS} FROM redemptions WHERE merchant_id = :m AND customer_id = :c "
            "ORDER BY created_at DESC LIMIT 200"
        ),
        {"m": merchant_id, "c": customer_id},
    )
    return [dict(r._mapping) for r in rows]
