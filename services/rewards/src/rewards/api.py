"""What every rewards endpoint shares: the request's unit of work and the customer a request may act for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from meadow_runtime.app import unit_of_work_dependency
from meadow_runtime.auth import Principal
from meadow_runtime.errors import Problem, field_problem

from .uow import RewardsUnitOfWork

RewardsUoW = Annotated[RewardsUnitOfWork, Depends(unit_of_work_dependency(RewardsUnitOfWork))]


def acting_customer(principal: Principal, customer_id: str | None) -> str:
    """The customer a request is about: a customer acts for themself; staff and services must name one."""
    if principal.role == "customer":
        assert principal.customer_id is not None  # enforced when the token was verified
        if customer_id is not None and customer_id != principal.customer_id:
            raise Problem(403, "Forbidden", "Customers may only act for themselves.", type_="forbidden")
        return principal.customer_id
    if customer_id is None:
        raise field_problem("/customer_id", "required when staff act for a customer", error_type="missing")
    return customer_id
