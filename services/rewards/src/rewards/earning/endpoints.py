"""Earn rules CRUD (staff); the rules apply to events handled after the change."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select, update
from uuid_utils import uuid7

from meadow_runtime.auth import StaffPrincipal
from meadow_runtime.errors import NotFound, validation_problem

from ..api import RewardsUoW
from ..models import earn_rules
from .schemas import EarnRule, EarnRuleFields, EarnRuleUpdate

router = APIRouter(prefix="/v1/earn-rules", tags=["earn rules"])


@router.post("", response_model=EarnRule, status_code=status.HTTP_201_CREATED)
async def create_rule(body: EarnRuleFields, principal: StaffPrincipal, uow: RewardsUoW) -> EarnRule:
    principal.require_role("operator")
    row = await uow.session.execute(
        insert(earn_rules)
        .values(id=UUID(str(uuid7())), merchant_id=principal.merchant_id, **body.model_dump())
        .returning(*earn_rules.c)
    )
    created = EarnRule.model_validate(dict(row.one()._mapping))
    await uow.commit()
    return created


@router.get("", response_model=list[EarnRule])
async def list_rules(principal: StaffPrincipal, uow: RewardsUoW) -> list[EarnRule]:
    rows = await uow.session.execute(
        select(earn_rules)
        .where(earn_rules.c.merchant_id == principal.merchant_id)
        .order_by(earn_rules.c.created_at)
    )
    return [EarnRule.model_validate(dict(r._mapping)) for r in rows]


async def _get(uow: RewardsUoW, merchant_id: str, rule_id: UUID) -> dict[str, Any]:
    row = (
        await uow.session.execute(
            select(earn_rules).where(earn_rules.c.merchant_id == merchant_id, earn_rules.c.id == rule_id)
        )
    ).first()
    if row is None:
        raise NotFound("earn rule", rule_id)
    return dict(row._mapping)


@router.get("/{rule_id}", response_model=EarnRule)
async def get_rule(rule_id: UUID, principal: StaffPrincipal, uow: RewardsUoW) -> EarnRule:
    return EarnRule.model_validate(await _get(uow, principal.merchant_id, rule_id))


@router.patch("/{rule_id}", response_model=EarnRule)
async def update_rule(
    rule_id: UUID, body: EarnRuleUpdate, principal: StaffPrincipal, uow: RewardsUoW
) -> EarnRule:
    principal.require_role("operator")
    current = await _get(uow, principal.merchant_id, rule_id)
    changes = body.model_dump(exclude_unset=True)
    try:
        EarnRuleFields.model_validate({**{k: current[k] for k in EarnRuleFields.model_fields}, **changes})
    except ValidationError as error:
        raise validation_problem(error.errors()) from error
    row = await uow.session.execute(
        update(earn_rules)
        .where(earn_rules.c.merchant_id == principal.merchant_id, earn_rules.c.id == rule_id)
        .values(**changes, updated_at=func.now())
        .returning(*earn_rules.c)
    )
    updated = EarnRule.model_validate(dict(row.one()._mapping))
    await uow.commit()
    return updated


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: UUID, principal: StaffPrincipal, uow: RewardsUoW) -> None:
    """Points already earned under the rule stay; it simply earns nothing from now on."""
    principal.require_role("operator")
    result = await uow.session.execute(
        delete(earn_rules).where(
            earn_rules.c.merchant_id == principal.merchant_id, earn_rules.c.id == rule_id
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("earn rule", rule_id)
    await uow.commit()
