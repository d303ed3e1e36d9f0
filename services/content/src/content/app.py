"""Entry points of the content service: `create_app(settings)` for the API, `SERVICE` for the worker."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from meadow_runtime.app import build_app
from meadow_runtime.service import ServiceDefinition
from meadow_runtime.settings import Settings

from .comments.endpoints import router as comments_router
from .consumers import CONSUMED_TOPICS, handlers
from .likes.endpoints import router as likes_router
from .lotteries.endpoints import router as lotteries_router
from .polls.endpoints import router as polls_router
from .posts.endpoints import router as posts_router
from .publisher.service import run_scheduler
from .settings.endpoints import router as settings_router
from .uow import ContentUnitOfWork
from .webhooks.endpoints import router as webhooks_router

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SERVICE = ServiceDefinition(
    name="content",
    description="Posts, schedules, comments, likes, polls, check-ins, lotteries and webhook delivery.",
    migrations_dir=MIGRATIONS_DIR,
    routers=[
        posts_router,
        comments_router,
        polls_router,
        likes_router,
        lotteries_router,
        webhooks_router,
        settings_router,
    ],
    unit_of_work=ContentUnitOfWork,
    handlers=handlers,
    consumed_topics=CONSUMED_TOPICS,
    scheduler=run_scheduler,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(settings or Settings(), SERVICE)
