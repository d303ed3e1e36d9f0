"""Tiers CRUD (staff; anyone of the merchant may read). Customers move on their next earn or reversal and
in the daily re-evaluation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, status
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from uuid_utils import uuid7

from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.errors import Conflict, NotFound

from ..api import RewardsUoW
from ..models import tiers
from .schemas import Tier, TierFields, TierUpdate

router = APIRouter(prefix="/v1/tiers", tags=["tiers"])


def _duplicate(error: IntegrityError) -> Conflict:
    field = "rank" if "rank" in str(error.orig) else "name"
    return Conflict(
        "Tier already exists", f"Another tier of this merchant has the same {field}.", field=field
    )


@router.post("", response_model=Tier, status_code=status.HTTP_201_CREATED)
async def create_tier(body: TierFields, principal: StaffPrincipal, uow: RewardsUoW) -> Tier:
    principal.require_role("operator")
    try:
        row = await uow.session.execute(
            insert(tiers)
            .values(id=UUID(str(uuid7())), merchant_id=principal.merchant_id, **body.model_dump())
            .returning(*tiers.c)
        )
    except IntegrityError as error:
        raise _duplicate(error) from error
    created = Tier.model_validate(dict(row.one()._mapping))
    await uow.commit()
    return created


@router.get("", response_model=list[Tier])
async def list_tiers(principal: CurrentPrincipal, uow: RewardsUoW) -> list[Tier]:
    rows = await uow.session.execute(
        select(tiers).where(tiers.c.merchant_id == principal.merchant_id).order_by(tiers.c.rank)
    )
    return [Tier.model_validate(dict(r._mapping)) for r in rows]


@router.patch("/{tier_id}", response_model=Tier)
async def update_tier(tier_id: UUID, body: TierUpdate, principal: StaffPrincipal, uow: RewardsUoW) -> Tier:
    principal.require_role("operator")
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    try:
        row = await uow.session.execute(
            update(tiers)
            .where(tiers.c.merchant_id == principal.merchant_id, tiers.c.id == tier_id)
            .values(**changes)
            .returning(*tiers.c)
        )
    except IntegrityError as error:
        raise _duplicate(error) from error
    found = row.first()
    if found is None:
        raise NotFound("tier", tier_id)
    updated = Tier.model_validate(dict(found._mapping))
    await uow.commit()
    return updated


@router.delete("/{tier_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tier(tier_id: UUID, principal: StaffPrincipal, uow: RewardsUoW) -> None:
    principal.require_role("operator")
    result = await uow.session.execute(
        delete(tiers).where(tiers.c.merchant_id == principal.merchant_id, tiers.c.id == tier_id)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("tier", tier_id)
    await uow.commit()
