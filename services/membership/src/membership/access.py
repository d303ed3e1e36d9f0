"""Who is calling, with which effective role, and the audit trail of what staff do.

The token's role is the default; a registered staff sub-account overrides it (and a disabled one is
refused), so the owner can demote or disable a sub-account without waiting for its tokens to expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends

from meadow_runtime.app import unit_of_work_dependency
from meadow_runtime.auth import ROLE_RANK, CurrentPrincipal, Principal, Role
from meadow_runtime.errors import Problem

from .uow import MembershipUnitOfWork

StaffRole = Literal["support", "operator", "owner"]


UoW = Annotated[MembershipUnitOfWork, Depends(unit_of_work_dependency(MembershipUnitOfWork))]


def _forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, type_="forbidden")


@dataclass(frozen=True)
class Actor:
    principal: Principal
    role: Role

    @property
    def merchant_id(self) -> str:
        return self.principal.merchant_id

    @property
    def subject(self) -> str:
        return self.principal.subject

    @property
    def is_staff(self) -> bool:
        return self.role in ROLE_RANK

    def require_staff(self, minimum: StaffRole) -> None:
        if ROLE_RANK.get(self.role, 0) < ROLE_RANK[minimum]:
            raise _forbidden(f"This action needs the {minimum} role or higher.")

    def require_staff_or_service(self, minimum: StaffRole) -> None:
        if self.role != "service":
            self.require_staff(minimum)

    def require_customer_access(self, customer_id: str) -> None:
        """Staff and trusted services (the storefront) act for any customer; a customer only for themself."""
        if self.role == "customer" and self.principal.customer_id != customer_id:
            raise _forbidden("Customers may only act for themselves.")

    def require_acting_for(self, customer_id: str) -> None:
        """A seat change for `customer_id`: staff need operator, a customer may only act for themself."""
        if self.is_staff:
            self.require_staff("operator")
        self.require_customer_access(customer_id)


async def _actor(principal: CurrentPrincipal, uow: UoW) -> Actor:
    if not principal.is_staff:
        return Actor(principal, principal.role)
    account = await uow.staff.get(principal.merchant_id, principal.subject)
    if account is None:
        return Actor(principal, principal.role)
    if account.disabled_at is not None:
        raise _forbidden("This staff account is disabled.")
    return Actor(principal, account.role)


CurrentActor = Annotated[Actor, Depends(_actor)]


async def audit(
    uow: MembershipUnitOfWork, actor: Actor, action: str, target: str | None, **details: Any
) -> None:
    """Record a staff action in the same transaction as its effect (a rolled-back action leaves no entry)."""
    if actor.is_staff:
        await uow.audit.record(actor.merchant_id, actor.subject, actor.role, action, target, details)
