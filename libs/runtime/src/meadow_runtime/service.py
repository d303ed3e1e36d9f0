"""What a service declares about itself; the runtime builds its API, worker and migrations from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .consumer import HandlerRegistry
from .settings import Settings
from .uow import UnitOfWork


@dataclass(frozen=True)
class PeriodicJob:
    """Work the worker runs on a fixed interval (expiry, daily re-evaluation, …). It must be idempotent."""

    name: str
    every: timedelta
    run: Callable[[Callable[[], UnitOfWork], Settings], Awaitable[Any]]


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    unit_of_work: Callable[[async_sessionmaker[AsyncSession], str], UnitOfWork] = UnitOfWork
    handlers: HandlerRegistry = field(default_factory=HandlerRegistry)
    consumed_topics: Sequence[str] = ()
    jobs: Sequence[PeriodicJob] = ()
    scheduler: Callable[[Settings, Callable[[], UnitOfWork]], Coroutine[Any, Any, None]] | None = None
    description: str = ""
