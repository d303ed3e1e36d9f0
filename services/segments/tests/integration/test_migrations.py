"""The hand-written migrations build exactly the tables `models.py` describes."""

from __future__ import annotations

from typing import Any

import psycopg
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from meadow_runtime.db import plain_url
from meadow_runtime.migrations import alembic_config, head_revision, schema_against_models, upgrade
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


def _index_methods(database_url: str) -> dict[str, str]:
    with psycopg.connect(plain_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN ("
            "'ix_segment_memberships_customer', 'ix_orders_customer', 'ix_order_lines_customer', "
            "'ix_outbox_created_at')"
        )
        return {name: definition.split(" USING ", 1)[1] for name, definition in rows}


def test_customer_lookups_hash_and_outbox_times_take_block_ranges_both_ways(infrastructure: Any) -> None:
    """Index methods, which the models comparison cannot see either: from head down to before 0010
    (b-trees everywhere) and up again, in a database of its own."""
    url = infrastructure.fresh_database(MIGRATIONS_DIR)
    at_head = {
        "ix_segment_memberships_customer": "hash (customer_id)",
        "ix_orders_customer": "hash (customer_id)",
        "ix_order_lines_customer": "hash (customer_id)",
        "ix_outbox_created_at": "brin (created_at) WITH (autosummarize='on')",
    }
    assert _index_methods(url) == at_head
    command.downgrade(alembic_config(MIGRATIONS_DIR, url), "0009")
    assert _index_methods(url) == {
        "ix_segment_memberships_customer": "btree (merchant_id, customer_id)",
        "ix_orders_customer": "btree (merchant_id, customer_id)",
        "ix_order_lines_customer": "btree (merchant_id, customer_id)",
        "ix_outbox_created_at": "btree (created_at)",
    }
    upgrade(MIGRATIONS_DIR, url)
    assert _index_methods(url) == at_head
