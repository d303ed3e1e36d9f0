"""Catalog CRUD: staff manage rewards; everyone of the merchant (customers included) can browse them."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status
from pydantic import ValidationError
from uuid_utils import uuid7

from meadow_runtime.auth import CurrentPrincipal, StaffPrincipal
from meadow_runtime.errors import NotFound, validation_problem

from ..api import RewardsUoW
from .repository import CatalogRepository
from .schemas import Reward, RewardCreate, RewardUpdate

router = APIRouter(prefix="/v1/rewards", tags=["catalog"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Reward)
async def create_reward(body: RewardCreate, principal: StaffPrincipal, uow: RewardsUoW) -> Reward:
    principal.require_role("operator")
    row = await CatalogRepository(uow.session).add(
        principal.merchant_id, UUID(str(uuid7())), body.model_dump()
    )
    await uow.commit()
    return Reward.model_validate(row)


@router.get("", response_model=list[Reward])
async def list_rewards(
    principal: CurrentPrincipal, uow: RewardsUoW, include_inactive: bool = False
) -> list[Reward]:
    rows = await CatalogRepository(uow.session).list(
        principal.merchant_id, active_only=not (include_inactive and principal.is_staff)
    )
    return [Reward.model_validate(r) for r in rows]


@router.get("/{reward_id}", response_model=Reward)
async def get_reward(reward_id: UUID, principal: CurrentPrincipal, uow: RewardsUoW) -> Reward:
    row = await CatalogRepository(uow.session).get(principal.merchant_id, reward_id)
    if row is None or (not row["active"] and not principal.is_staff):
        raise NotFound("reward", reward_id)
    return Reward.model_validate(row)


@router.patch("/{reward_id}", response_model=Reward)
async def update_reward(
    reward_id: UUID, body: RewardUpdate, principal: StaffPrincipal, uow: RewardsUoW
) -> Reward:
    principal.require_role("operator")
    repository = CatalogRepository(uow.session)
    current = await repository.get(principal.merchant_id, reward_id)
    if current is None:
        raise NotFound("reward", reward_id)
    changes = body.model_dump(exclude_unset=True)
    merged = {**{k: current[k] for k in RewardCreate.model_fields}, **changes}
    try:
        RewardCreate.model_validate(merged)
    except ValidationError as error:  # the update is valid alone, but not with what it leaves as it is
        raise validation_problem(error.errors()) from error
    row = await repository.change(principal.merchant_id, reward_id, changes)
    await uow.commit()
    return Reward.model_validate(row)


@router.delete("/{reward_id}", status_code=status.HTTP_204_NO_CONTENT)
async def retire_reward(reward_id: UUID, principal: StaffPrincipal, uow: RewardsUoW) -> None:
    """Rewards are retired (made inactive), not erased: past redemptions keep pointing at them."""
    principal.require_role("operator")
    if (
        await CatalogRepository(uow.session).change(principal.merchant_id, reward_id, {"active": False})
        is None
    ):
        raise NotFound("reward", reward_id)
    await uow.commit()
