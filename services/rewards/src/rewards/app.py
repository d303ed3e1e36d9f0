"""Entry points of the rewards service: `create_app(settings)` for the API, `SERVICE` for the worker."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from meadow_runtime.app import build_app
from meadow_runtime.service import ServiceDefinition
from meadow_runtime.settings import Settings

from .catalog.endpoints import router as catalog_router
from .consumers import CONSUMED_TOPICS, handlers
from .redemptions.endpoints import router as redemptions_router
from .uow import RewardsUnitOfWork

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SERVICE = ServiceDefinition(
    name="rewards",
    description="The points ledger: earn rules, lots and expiry, tiers, catalog and redemption.",
    migrations_dir=MIGRATIONS_DIR,
    handlers=handlers,
    unit_of_work=RewardsUnitOfWork,
    consumed_topics=CONSUMED_TOPICS,
    routers=[catalog_router, redemptions_router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(settings or Settings(), SERVICE)
