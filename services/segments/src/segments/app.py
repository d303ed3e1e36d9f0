"""Entry points of the segments service: `create_app(settings)` for the API, `SERVICE` for the worker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from meadow_runtime.app import build_app
from meadow_runtime.service import PeriodicJob, ServiceDefinition
from meadow_runtime.settings import Settings

from .consumers import CONSUMED_TOPICS, handlers
from .definitions.endpoints import router as definitions_router
from .ingest.endpoints import router as ingest_router
from .insights.endpoints import router as insights_router
from .jobs import daily_reevaluation
from .uow import SegmentsUnitOfWork

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SERVICE = ServiceDefinition(
    name="segments",
    description="Customer facts, the segment rule language, lifecycle, RFM, tags and group metrics.",
    migrations_dir=MIGRATIONS_DIR,
    routers=[definitions_router, insights_router, ingest_router],
    unit_of_work=SegmentsUnitOfWork,
    handlers=handlers,
    consumed_topics=CONSUMED_TOPICS,
    jobs=[PeriodicJob("daily-reevaluation", every=timedelta(hours=24), run=daily_reevaluation)],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(settings or Settings(), SERVICE)
