"""A tiny service used only to test the runtime: an endpoint that records a profile change and emits an
event, and a consumer that appends one `effects` row per event it applies (so a double apply shows)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Column, DateTime, Integer, String, Table, Uuid, insert

from meadow_contracts import CustomerProfileUpdated, Topic
from meadow_runtime.app import UnitOfWorkDep
from meadow_runtime.auth import CurrentPrincipal
from meadow_runtime.consumer import Delivery, HandlerRegistry
from meadow_runtime.errors import Problem
from meadow_runtime.idempotency import IdempotencyKey, run_idempotently
from meadow_runtime.service import ServiceDefinition
from meadow_runtime.tables import runtime_metadata

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

metadata = runtime_metadata()
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("customer_id", String, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

handlers = HandlerRegistry()
FAIL_FOR_CUSTOMER = "always-fails"
# A customer whose event is undone by "deadlocks" this many times before it applies (kept per process).
DEADLOCKING_CUSTOMER = "deadlocks-first"
DEADLOCKS_BEFORE_SUCCESS = 4
deadlocks_met: dict[str, int] = {}
UNSERVED_CITY = "Atlantis"


@handlers.on(CustomerProfileUpdated)
async def record_effects(uow: Any, deliveries: Sequence[Delivery[CustomerProfileUpdated]]) -> None:
    for delivery in deliveries:
        if delivery.event.customer_id == FAIL_FOR_CUSTOMER:
            raise RuntimeError("this handler cannot apply the event")
        if delivery.event.customer_id == DEADLOCKING_CUSTOMER:
            met = deadlocks_met[str(delivery.envelope.id)] = (
                deadlocks_met.get(str(delivery.envelope.id), 0) + 1
            )
            if met <= DEADLOCKS_BEFORE_SUCCESS:
                raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected (testbed)")
    await uow.session.execute(
        insert(effects),
        [
            {"event_id": d.envelope.id, "customer_id": d.event.customer_id, "applied_at": datetime.now(UTC)}
            for d in deliveries
        ],
    )


class ProfileChange(BaseModel):
    customer_id: str
    city: str


router = APIRouter()


@router.post("/v1/profiles", status_code=202)
async def change_profile(
    body: ProfileChange, principal: CurrentPrincipal, uow: UnitOfWorkDep
) -> dict[str, str]:
    envelope = uow.outbox.add(
        CustomerProfileUpdated(customer_id=body.customer_id, city=body.city),
        merchant_id=principal.merchant_id,
        subject=body.customer_id,
    )
    await uow.commit()
    return {"event_id": str(envelope.id)}


class Note(BaseModel):
    customer_id: str = Field(min_length=1)
    city: str = Field(min_length=1, max_length=40)
    birth_year: int = Field(ge=1900, le=2100)


@router.post("/v1/notes", status_code=201)
async def add_note(
    body: Note, request: Request, principal: CurrentPrincipal, uow: UnitOfWorkDep, key: IdempotencyKey = None
) -> Response:
    """Emits one event per request; with an Idempotency-Key, once per key."""

    async def emit() -> dict[str, str]:
        event = CustomerProfileUpdated(
            customer_id=body.customer_id, city=body.city, birth_year=body.birth_year
        )
        envelope = uow.outbox.add(event, merchant_id=principal.merchant_id, subject=body.customer_id)
        await uow.flush()
        if body.city == UNSERVED_CITY:  # fails after the key is claimed and the event is written
            raise Problem(422, "City not served", f"We do not deliver to {body.city}.", pointer="/city")
        return {"event_id": str(envelope.id)}

    return await run_idempotently(uow, request, caller=principal, key=key, action=emit, status_code=201)


SERVICE = ServiceDefinition(
    name="testbed",
    migrations_dir=MIGRATIONS_DIR,
    routers=[router],
    handlers=handlers,
    consumed_topics=(Topic.COMMERCE_CUSTOMERS.value,),
)
