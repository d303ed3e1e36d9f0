"""The hand-written migrations build exactly the tables `models.py` describes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from meadow_runtime.migrations import head_revision, schema_against_models
from meadow_runtime.settings import Settings
from segments.app import MIGRATIONS_DIR
from segments.models import metadata


def test_migrations_match_the_models(settings: Settings) -> None:
    revision, differences = schema_against_models(settings.database_url, metadata)
    assert revision == head_revision(MIGRATIONS_DIR)
    assert differences == []


async def test_group_memberships_are_stints_with_at_most_one_open(settings: Settings) -> None:
    """What the models-against-migrations comparison cannot see: primary keys and partial indexes."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            key = await conn.execute(
                text(
                    "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
                    "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) "
                    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                    "WHERE c.conname = 'pk_group_members'"
                )
            )
            open_index = await conn.execute(text("SELECT pg_get_indexdef('ux_group_members_open'::regclass)"))
            assert key.scalar_one() == ["merchant_id", "group_id", "customer_id", "joined_at"]
            assert open_index.scalar_one().endswith(
                "(merchant_id, group_id, customer_id) WHERE (left_at IS NULL)"
            )
    finally:
        await engine.dispose()
