"""Async SQLAlchemy engine and session factory: the only way code reaches a service's database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


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


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "meadow"}},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
