"""Creating, changing and archiving groups. Never commits: the endpoint that opened the unit of work does."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func

from meadow_contracts import new_event_id
from meadow_runtime.errors import Conflict, NotFound

from ..access import Actor, audit
from ..uow import MembershipUnitOfWork
from .repository import GroupRecord, SubgroupRecord
from .schemas import GroupCreate, GroupOut, GroupUpdate, JoinRulesBody, SubgroupOut, WelcomePerk


def render(group: GroupRecord, subgroups: list[SubgroupRecord]) -> GroupOut:
    return GroupOut(
        id=group.id,
        name=group.name,
        purpose=group.purpose,
        description=group.description,
        join_rules=JoinRulesBody(
            required_segments=sorted(group.rules.required_segments),
            required_mode=group.rules.required_mode,
            excluded_segments=sorted(group.rules.excluded_segments),
            min_tier_rank=group.rules.min_tier_rank,
        ),
        welcome_perks=[WelcomePerk.model_validate(p) for p in group.welcome_perks],
        subgroup_capacity=group.subgroup_capacity,
        max_subgroups=group.max_subgroups,
        product_ids=list(group.product_ids),
        categories=list(group.categories),
        member_count=sum(s.member_count for s in subgroups),
        subgroups=[
            SubgroupOut(id=s.id, number=s.number, capacity=s.capacity, member_count=s.member_count)
            for s in subgroups
        ],
        created_at=group.created_at,
        updated_at=group.updated_at,
        archived_at=group.archived_at,
    )


def _rule_columns(rules: JoinRulesBody) -> dict[str, Any]:
    return {
        "required_segments": sorted(set(rules.required_segments)),
        "required_mode": rules.required_mode,
        "excluded_segments": sorted(set(rules.excluded_segments)),
        "min_tier_rank": rules.min_tier_rank,
    }


async def create_group(uow: MembershipUnitOfWork, actor: Actor, body: GroupCreate) -> GroupOut:
    group = await uow.groups.add(
        {
            "id": new_event_id(),
            "merchant_id": actor.merchant_id,
            "name": body.name,
            "purpose": body.purpose,
            "description": body.description,
            **_rule_columns(body.join_rules),
            "welcome_perks": [p.model_dump() for p in body.welcome_perks],
            "subgroup_capacity": body.subgroup_capacity,
            "max_subgroups": body.max_subgroups,
            "product_ids": sorted(set(body.product_ids)),
            "categories": sorted(set(body.categories)),
        }
    )
    await audit(uow, actor, "group.created", str(group.id), name=group.name)
    return render(group, [])


async def get_group(uow: MembershipUnitOfWork, merchant_id: str, group_id: UUID) -> GroupOut:
    group = await uow.groups.get(merchant_id, group_id)
    if group is None:
        raise NotFound("group", group_id)
    subgroups = await uow.groups.subgroups_of(merchant_id, [group_id])
    return render(group, subgroups.get(group_id, []))


async def update_group(
    uow: MembershipUnitOfWork, actor: Actor, group_id: UUID, body: GroupUpdate
) -> GroupOut:
    # The group row lock orders this change with joins, which take the same lock to place a member.
    group = await uow.groups.get(actor.merchant_id, group_id, for_update=True)
    if group is None:
        raise NotFound("group", group_id)
    subgroups = (await uow.groups.subgroups_of(actor.merchant_id, [group_id])).get(group_id, [])
    changes = body.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    for simple in ("name", "purpose", "description", "subgroup_capacity", "max_subgroups"):
        if simple in changes:
            values[simple] = changes[simple]
    if body.join_rules is not None:
        values.update(_rule_columns(body.join_rules))
    if body.welcome_perks is not None:
        values["welcome_perks"] = [p.model_dump() for p in body.welcome_perks]
    if body.product_ids is not None:
        values["product_ids"] = sorted(set(body.product_ids))
    if body.categories is not None:
        values["categories"] = sorted(set(body.categories))
    if "name" in values and values["name"] is None:
        raise Conflict("A group needs a name", "name cannot be cleared.", pointer="/name")
    fullest = max((s.member_count for s in subgroups), default=0)
    if body.subgroup_capacity is not None and body.subgroup_capacity < fullest:
        raise Conflict(
            "Capacity below current members",
            f"A sub-group already has {fullest} members; remove members before lowering capacity.",
            pointer="/subgroup_capacity",
        )
    if body.max_subgroups is not None and body.max_subgroups < len(subgroups):
        raise Conflict(
            "Fewer sub-groups than exist",
            f"The group already has {len(subgroups)} sub-groups.",
            pointer="/max_subgroups",
        )
    if values:
        if body.subgroup_capacity is not None or body.max_subgroups is not None:
            values["set_filled_notified"] = False
        group = await uow.groups.update(actor.merchant_id, group_id, values)
        if body.subgroup_capacity is not None:
            if await uow.groups.resize_subgroups(group_id, body.subgroup_capacity) != len(subgroups):
                raise Conflict(
                    "Capacity below current members",
                    "A sub-group filled past the new capacity meanwhile; nothing was changed.",
                    pointer="/subgroup_capacity",
                )
            subgroups = (await uow.groups.subgroups_of(actor.merchant_id, [group_id])).get(group_id, [])
        await audit(uow, actor, "group.updated", str(group_id), changes=sorted(changes))
    return render(group, subgroups)


async def archive_group(uow: MembershipUnitOfWork, actor: Actor, group_id: UUID) -> GroupOut:
    group = await uow.groups.get(actor.merchant_id, group_id, for_update=True)
    if group is None:
        raise NotFound("group", group_id)
    if group.archived_at is None:
        group = await uow.groups.update(actor.merchant_id, group_id, {"archived_at": func.now()})
        await audit(uow, actor, "group.archived", str(group_id))
    subgroups = (await uow.groups.subgroups_of(actor.merchant_id, [group_id])).get(group_id, [])
    return render(group, subgroups)
