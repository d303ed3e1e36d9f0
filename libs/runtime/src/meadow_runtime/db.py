"""Async SQLAlchemy engine and session factory: the only way code reaches a service's database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# A worker's statements take a batch as arrays of 1 to 1,000 elements. After five executions of a
# prepared statement (and of every statement in a PL/pgSQL function) Postgres may switch to a generic
# plan, made without the arrays and assuming 10 elements. Measured with generic plans: rewards' ingest
# function on 250-order batches scanned every balance of the merchant for each line (36 ms per batch at
# first, 1.7 s by the thirtieth, 7,500 orders in); segments on 50-event batches ran at a quarter of the
# rate it reaches with each batch planned for its arrays. Planning each execution costs ~2 ms on rewards'
# 1,000-order batch, and tens of µs on every single-row query, which is why the API processes, whose
# statements are single-row, keep Postgres' default (membership's join API, 100 clients: 175–204 req/s
# with it in two runs, 210–229 without). Sent as a `SET` once per connection, not as a startup
# parameter, which poolers such as PgBouncer refuse.
PLAN_EACH_EXECUTION = "SET plan_cache_mode = force_custom_plan"


def asyncpg_url(url: str) -> str:
    """Accept `postgres://`, `postgresql://` (as CloudNativePG's secrets give it) or the asyncpg form."""
    scheme, rest = url.split("://", 1)
    if scheme in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+asyncpg"}:
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database URL scheme {scheme!r}")


def psycopg_url(url: str) -> str:
    """Migrations run synchronously with psycopg; same database, other driver."""
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def plain_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def create_engine(url: str, *, pool_size: int = 10, plan_each_execution: bool = False) -> AsyncEngine:
    """`plan_each_execution` for batch work (consumers, jobs, the scheduler): see PLAN_EACH_EXECUTION."""
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "meadow"}},
    )
    if plan_each_execution:
        event.listen(engine.sync_engine, "connect", _plan_each_execution)
    return engine


def _plan_each_execution(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(lambda connection: connection.execute(PLAN_EACH_EXECUTION))


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
