"""Batch statements are planned for the batch they carry, however often they run (see `meadow_runtime.db`)."""

from __future__ import annotations

from sqlalchemy import text

from meadow_runtime.db import create_engine
from meadow_runtime.testing.infrastructure import Infrastructure

BATCH = text("SELECT count(*) FROM unnest(CAST(:ids AS int[])) AS id WHERE id % 2 = 0")


async def test_a_prepared_batch_statement_is_never_given_a_generic_plan(
    infrastructure: Infrastructure,
) -> None:
    engine = create_engine(infrastructure.fresh_database(None), plan_each_execution=True)
    try:
        async with engine.connect() as conn:
            for size in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]:  # more than the five custom plans Postgres tries
                counted = await conn.scalar(BATCH, {"ids": list(range(size))})
                assert counted == (size + 1) // 2
            plans = (
                await conn.execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                        "WHERE statement LIKE 'SELECT count(*) FROM unnest%'"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert plans.generic_plans == 0
    assert plans.custom_plans == 10


async def test_an_api_engine_keeps_the_servers_plan_cache(infrastructure: Infrastructure) -> None:
    """Single-row API statements keep their cached plans (planning each would cost every request)."""
    engine = create_engine(infrastructure.fresh_database(None))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW plan_cache_mode")) == "auto"
    finally:
        await engine.dispose()
