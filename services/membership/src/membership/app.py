"""Entry points of the membership service: `create_app(settings)` for the API, `SERVICE` for the worker."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from meadow_runtime.app import build_app
from meadow_runtime.service import ServiceDefinition
from meadow_runtime.settings import Settings

from .blacklist.endpoints import router as blacklist_router
from .consumers import CONSUMED_TOPICS, handlers
from .groups.endpoints import router as groups_router
from .invites.endpoints import router as invites_router
from .members.endpoints import router as members_router
from .staff.endpoints import router as staff_router
from .uow import MembershipUnitOfWork

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SERVICE = ServiceDefinition(
    name="membership",
    description="Groups, sub-groups of bounded size, gated joins, invites, blacklist and staff.",
    migrations_dir=MIGRATIONS_DIR,
    routers=[groups_router, members_router, invites_router, blacklist_router, staff_router],
    unit_of_work=MembershipUnitOfWork,
    handlers=handlers,
    consumed_topics=CONSUMED_TOPICS,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(settings or Settings(), SERVICE)
