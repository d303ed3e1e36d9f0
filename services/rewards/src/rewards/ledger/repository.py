"""SQL of the ledger: set-based statements over whole batches (arrays in, one round trip each)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as DriverUUID
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from meadow_runtime.telemetry import current_trace_headers

from ..domain.ledger import Account, Allocation, Lot, Transfer
from ..models import POSTED_COLUMNS

CustomerKey = tuple[str, str]  # (merchant_id, customer_id)
# One paid order line, carrying its order's fields: the order's 1-based position in the batch, merchant,
# order id, customer, paid at, its UTC offset in seconds, event id, the order's earning transfer id; then
# the line's id, category and amount. A batch travels as one array of the composite `rewards_paid_line`
# (migration 0006): asyncpg encodes that at about two thirds of the cost of eleven parallel arrays.
PaidLine = tuple[int, str, str, str, datetime, int, UUID, UUID, str, str, int]


def database_uuid(raw: bytes) -> UUID:
    """A UUID of asyncpg's own type: made from its 16 bytes in C and encoded without a conversion (the
    ingest path makes one per paid order)."""
    made: UUID = DriverUUID(raw)
    return made


@dataclass
class BalanceRow:
    merchant_id: str
    customer_id: str
    points: int
    debt: int
    tier_rank: int
    tier_name: str | None
    first_paid_at: datetime | None


@dataclass(frozen=True)
class TransferRecord:
    transfer: Transfer
    merchant_id: str
    customer_id: str
    reason: str | None
    points: int
    occurred_at: datetime
    cause_event_id: UUID | None = None
    cause_ref: str | None = None
    actor: str | None = None
    note: str | None = None
    # A reversal's: when the points it takes back were earned (the rolling tier window counts it then).
    earned_at: datetime | None = None


# Raw asyncpg statements ($n parameters): the bulk paths run them on the session's own connection,
# because SQLAlchemy's per-row result handling cost more than the statements on the ingest path.
LOCK_BALANCES = """
    INSERT INTO balances (merchant_id, customer_id)
    SELECT m, c FROM unnest($1::text[], $2::text[]) AS k(m, c) ORDER BY m COLLATE "C", c COLLATE "C"
    ON CONFLICT (merchant_id, customer_id) DO UPDATE SET points = balances.points
    RETURNING merchant_id, customer_id, points, debt, tier_rank, tier_name, first_paid_at
"""

INSERT_TRANSFERS = text(
    """
    INSERT INTO transfers (id, merchant_id, customer_id, kind, reason, points, cause_event_id, cause_ref,
                           actor, note, occurred_at, earned_at, posted_customer, posted_issued,
                           posted_redeemed, posted_expired, posted_debt)
    SELECT * FROM unnest(CAST(:id AS uuid[]), CAST(:m AS text[]), CAST(:c AS text[]), CAST(:kind AS text[]),
                         CAST(:reason AS text[]), CAST(:points AS bigint[]), CAST(:cause AS uuid[]),
                         CAST(:ref AS text[]), CAST(:actor AS text[]), CAST(:note AS text[]),
                         CAST(:at AS timestamptz[]), CAST(:earned AS timestamptz[]),
                         CAST(:posted_customer AS bigint[]), CAST(:posted_issued AS bigint[]),
                         CAST(:posted_redeemed AS bigint[]), CAST(:posted_expired AS bigint[]),
                         CAST(:posted_debt AS bigint[]))
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)

TRANSFER_COLUMNS = (
    "id",
    "merchant_id",
    "customer_id",
    "kind",
    "reason",
    "points",
    "cause_event_id",
    "cause_ref",
    "actor",
    "note",
    "occurred_at",
    *POSTED_COLUMNS,
)


def posted(transfer: Transfer) -> tuple[int, ...]:
    """The transfer's amount on each account, in `Account` (and POSTED_COLUMNS) order."""
    return tuple(transfer.amount_on(account) for account in Account)


UPDATE_LOTS = text(
    """
    UPDATE lots SET remaining = v.r
    FROM unnest(CAST(:id AS uuid[]), CAST(:r AS bigint[])) AS v(i, r)
    WHERE lots.id = v.i
    """
)

UPDATE_BALANCES = """
    UPDATE balances b SET points = v.p, debt = v.d, tier_rank = v.tr, tier_name = v.tn,
                          first_paid_at = v.fp, updated_at = now()
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::int[], $6::text[],
                $7::timestamptz[]) AS v(m, c, p, d, tr, tn, fp)
    WHERE b.merchant_id = v.m AND b.customer_id = v.c
"""

# The order.paid path in one call (migration 0005): returns tier changes, new orders with a parked refund
# and invitees' first orders, the rare follow-ups the Python side handles.
EARN_PURCHASES = """
    SELECT what, merchant_id, customer_id, order_id, at, old_tier, old_rank, new_tier, new_rank
    FROM rewards_earn_purchases($1, $2, $3, $4, $5, $6)
"""

OUTBOX_COLUMNS = ("id", "aggregatetype", "aggregateid", "type", "payload", "headers")
LOT_COLUMNS = ("id", "merchant_id", "customer_id", "points", "remaining", "expires_at", "earned_at")

LIVE_LOTS = text(
    """
    SELECT id, points, remaining, expires_at FROM lots
    WHERE merchant_id = :m AND customer_id = :c AND remaining > 0
    """
)

LOTS_BY_ID = text("SELECT id, points, remaining, expires_at FROM lots WHERE id = ANY(CAST(:ids AS uuid[]))")


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def driver(self) -> Any:
        """asyncpg's connection, inside the session's transaction."""
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    async def lock_balances(self, keys: Iterable[CustomerKey]) -> dict[CustomerKey, BalanceRow]:
        """Create missing balance rows and lock them all (sorted, so concurrent batches never deadlock)."""
        ordered = sorted(set(keys))
        if not ordered:
            return {}
        driver = await self.driver()
        rows = await driver.fetch(LOCK_BALANCES, [k[0] for k in ordered], [k[1] for k in ordered])
        return {(r[0], r[1]): BalanceRow(*r) for r in rows}

    async def save_balances(self, rows: Sequence[BalanceRow]) -> None:
        if not rows:
            return
        driver = await self.driver()
        await driver.execute(
            UPDATE_BALANCES,
            [r.merchant_id for r in rows],
            [r.customer_id for r in rows],
            [r.points for r in rows],
            [r.debt for r in rows],
            [r.tier_rank for r in rows],
            [r.tier_name for r in rows],
            [r.first_paid_at for r in rows],
        )

    async def earn_purchases(
        self,
        lines: Sequence[PaidLine],
        *,
        emitted_at: str,
        event: tuple[str, str, str],
    ) -> list[Any]:
        """Apply a batch of paid orders set-based (see migrations 0005, 0006); `event` is the `points.earned`
        (topic, type, source), `emitted_at` its envelope time as JSON renders it."""
        driver = await self.driver()
        rows: list[Any] = await driver.fetch(
            EARN_PURCHASES, lines, emitted_at, json.dumps(current_trace_headers()), *event
        )
        return rows

    async def insert_transfers(self, records: Sequence[TransferRecord]) -> set[UUID]:
        """Insert transfers whose id is new; returns those ids."""
        if not records:
            return set()
        result = await self.session.execute(
            INSERT_TRANSFERS,
            {
                "id": [r.transfer.id for r in records],
                "m": [r.merchant_id for r in records],
                "c": [r.customer_id for r in records],
                "kind": [r.transfer.kind.value for r in records],
                "reason": [r.reason for r in records],
                "points": [r.points for r in records],
                "cause": [r.cause_event_id for r in records],
                "ref": [r.cause_ref for r in records],
                "actor": [r.actor for r in records],
                "note": [r.note for r in records],
                "at": [r.occurred_at for r in records],
                "earned": [r.earned_at for r in records],
                **{
                    column: [r.transfer.amount_on(account) for r in records]
                    for column, account in zip(POSTED_COLUMNS, Account, strict=True)
                },
            },
        )
        return {row[0] for row in result}

    async def _copy(self, table: str, columns: Sequence[str], records: Sequence[tuple[Any, ...]]) -> None:
        """COPY rows in, inside the session's transaction: the cheapest way to write a batch. Only for
        rows known to be new (a duplicate key fails the whole batch, which the runner then retries)."""
        driver = await self.driver()
        await driver.copy_records_to_table(table, records=records, columns=list(columns))

    async def copy_earnings(
        self, transfers: Sequence[tuple[Any, ...]], lots: Sequence[tuple[Any, ...]]
    ) -> None:
        """The bulk earn path's rows (already tuples in TRANSFER_COLUMNS / LOT_COLUMNS order), whose
        transfer ids the caller knows to be new under the customers' locks."""
        if transfers:
            await self._copy("transfers", TRANSFER_COLUMNS, transfers)
        if lots:
            await self._copy("lots", LOT_COLUMNS, lots)

    async def insert_lots(self, new_lots: Sequence[tuple[CustomerKey, Lot, datetime]]) -> None:
        if not new_lots:
            return
        await self._copy(
            "lots",
            LOT_COLUMNS,
            [
                (lot.id, key[0], key[1], lot.points, lot.remaining, lot.expires_at, at)
                for key, lot, at in new_lots
            ],
        )

    async def set_lot_remainders(self, lots: Sequence[Lot]) -> None:
        if lots:
            await self.session.execute(
                UPDATE_LOTS, {"id": [lot.id for lot in lots], "r": [lot.remaining for lot in lots]}
            )

    async def write_outbox(self, rows: Sequence[tuple[UUID, str, str, str, str]]) -> None:
        """Outbox rows (id, topic, key, type, envelope json) of a whole batch in one COPY (the runtime's
        `Outbox` writes the same columns; on the ingest path its per-event model building and parameter
        handling dominated the cost). COPY fires the table's statement trigger, so the relay is woken as
        usual."""
        if not rows:
            return
        headers = json.dumps(current_trace_headers())
        await self._copy("outbox", OUTBOX_COLUMNS, [(*row, headers) for row in rows])

    async def live_lots(self, key: CustomerKey) -> tuple[Lot, ...]:
        rows = await self.session.execute(LIVE_LOTS, {"m": key[0], "c": key[1]})
        return tuple(Lot(r.id, r.points, r.remaining, r.expires_at) for r in rows)

    async def lots_by_id(self, ids: Sequence[UUID]) -> tuple[Lot, ...]:
        rows = await self.session.execute(LOTS_BY_ID, {"ids": list(ids)})
        return tuple(Lot(r.id, r.points, r.remaining, r.expires_at) for r in rows)

    async def merchant_settings(self, merchant_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        """(points validity in days, time zone) per merchant; defaults where none are stored."""
        rows = await self.session.execute(
            text(
                "SELECT merchant_id, points_validity_days, timezone FROM merchant_settings "
                "WHERE merchant_id = ANY(CAST(:m AS text[]))"
            ),
            {"m": list(set(merchant_ids))},
        )
        return {r.merchant_id: (r.points_validity_days, r.timezone) for r in rows}


def allocations_json(allocations: Iterable[Allocation]) -> str:
    return json.dumps({str(a.lot_id): a.points for a in allocations})


def allocations_from_json(raw: Any) -> tuple[Allocation, ...]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    return tuple(Allocation(UUID(lot_id), int(points)) for lot_id, points in data.items())
