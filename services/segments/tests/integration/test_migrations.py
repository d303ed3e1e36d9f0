"""The hand-written migrations build exactly the tables `models.py` describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from meadow_runtime.db import psycopg_url
from meadow_runtime.migrations import head_revision
from meadow_runtime.settings import Settings
from segments.app import MIGRATIONS_DIR
from segments.models import metadata


def test_migrations_match_the_models(settings: Settings) -> None:
    engine = create_engine(psycopg_url(settings.database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert context.get_current_revision() == head_revision(MIGRATIONS_DIR)
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
