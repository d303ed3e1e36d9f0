"""Entry points of the rewards service: `create_app(settings)` for the API, `SERVICE` for the worker."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from meadow_runtime.app import build_app
from meadow_runtime.service import ServiceDefinition
from meadow_runtime.settings import Settings

from .catalog.endpoints import router as catalog_router
from .consumers import CONSUMED_TOPICS, handlers
from .earning.endpoints import router as earn_rules_router
from .jobs import JOBS
from .ledger.endpoints import audit_router
from .ledger.endpoints import router as ledger_router
from .merchant_settings.endpoints import router as settings_router
from .redemptions.endpoints import router as redemptions_router
from .tiers.endpoints import router as tiers_router
from .uow import RewardsUnitOfWork

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SERVICE = ServiceDefinition(
    name="rewards",
    description="The points ledger: earn rules, lots and expiry, tiers, catalog and redemption.",
    migrations_dir=MIGRATIONS_DIR,
    handlers=handlers,
    unit_of_work=RewardsUnitOfWork,
    consumed_topics=CONSUMED_TOPICS,
    routers=[
        ledger_router,
        audit_router,
        earn_rules_router,
        tiers_router,
        catalog_router,
        redemptions_router,
        settings_router,
    ],
    jobs=JOBS,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(settings or Settings(), SERVICE)
