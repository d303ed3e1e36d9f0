"""Create each service's database and every topic, on our dev servers or on ones named by the environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

DEV_PARTITIONS = 4


def plain_url(url: str) -> str:
    """asyncpg wants `postgresql://`; SQLAlchemy wants `postgresql+asyncpg://`. Accept either."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def sqlalchemy_url(url: str) -> str:
    return "postgresql+asyncpg://" + plain_url(url).split("://", 1)[1]


async def create_databases(admin_url: str, names: Iterable[str], *, recreate: bool = False) -> None:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name in existing and recreate:
                await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                existing.discard(name)
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def create_topics(
    bootstrap_servers: str, topics: Iterable[str], partitions: int = DEV_PARTITIONS
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(wanted)
    finally:
        await admin.close()
