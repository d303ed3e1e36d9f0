"""Alembic, one history per service, run synchronously with psycopg against the service's database."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, pool

from .db import psycopg_url
from .tables import OUTBOX_NOTIFY_DDL, runtime_metadata


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", psycopg_url(database_url).replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def head_revision(migrations_dir: Path) -> str | None:
    return ScriptDirectory.from_config(
        alembic_config(migrations_dir, "postgresql://unused")
    ).get_current_head()


def sibling_revision(revision_file: str, filename: str) -> ModuleType:
    """Another revision file of the same history, for its SQL text (revision files are loaded by path,
    not imported)."""
    path = Path(revision_file).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"revision_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_env(target_metadata: MetaData | None) -> None:
    """The body of every service's `migrations/env.py`."""
    from alembic import context

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def schema_against_models(database_url: str, metadata: MetaData) -> tuple[str | None, list[Any]]:
    """A database's revision, and how its tables differ from `metadata` by alembic's autogenerate
    comparison (types included, as in `run_env`): what each service's migrations-match-models test
    checks."""
    from alembic.autogenerate import compare_metadata

    engine = create_engine(psycopg_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return context.get_current_revision(), list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def current_revision_sync(connection: object) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()  # type: ignore[arg-type]


def create_runtime_tables() -> None:
    """Call from a service's first revision: outbox, inbox, idempotency keys and the relay's NOTIFY."""
    from alembic import op

    bind = op.get_bind()
    runtime_metadata().create_all(bind)
    for statement in OUTBOX_NOTIFY_DDL:
        op.execute(statement)


def add_outbox_position() -> None:
    """A later revision for databases made before the outbox had `position` (the relay's order).

    Idempotent: a fresh database already has it from `create_runtime_tables`. Existing unpublished rows
    are numbered in their physical order, which is as good as the `created_at` order they had.
    """
    from alembic import op

    op.execute("ALTER TABLE outbox ADD COLUMN IF NOT EXISTS position bigint GENERATED ALWAYS AS IDENTITY")
    op.execute("DROP INDEX IF EXISTS ix_outbox_unpublished")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_outbox_unpublished_position ON outbox (position) "
        "WHERE published_at IS NULL"
    )


def set_outbox_json_type(json_type: str) -> None:
    """Store the outbox's payload and headers as `json` (a later revision for databases made when they
    were `jsonb`) or, to undo it, `jsonb`.

    The relay sends the payload's text as it is and nothing queries inside it, so `json` (the text as
    written, checked to be JSON) spares each row jsonb's conversion to its binary form on insert and
    back to text when published. Rewrites the table: existing envelopes keep their content.
    """
    from alembic import op

    if json_type not in ("json", "jsonb"):
        raise ValueError(json_type)
    op.execute(
        f"ALTER TABLE outbox ALTER COLUMN payload TYPE {json_type}, ALTER COLUMN headers DROP DEFAULT, "
        f"ALTER COLUMN headers TYPE {json_type}, ALTER COLUMN headers SET DEFAULT '{{}}'::{json_type}"
    )


def set_outbox_time_index(method: str) -> None:
    """Index the outbox's `created_at` (what a replay selects on) with `brin` or, to undo it, `btree`.

    Rows are written in time order, so a block-range index prunes a replay's scan nearly as well as a
    b-tree, at a fraction of the cost each row's insert paid to keep one. The index is built anew either
    way: on a fresh database, which has the block-range index from `create_runtime_tables` already, the
    outbox is empty.
    """
    from alembic import op

    if method not in ("brin", "btree"):
        raise ValueError(method)
    options = " WITH (autosummarize = on)" if method == "brin" else ""
    op.execute("DROP INDEX IF EXISTS ix_outbox_created_at")
    op.execute(f"CREATE INDEX ix_outbox_created_at ON outbox USING {method} (created_at){options}")


def set_key_collation(keys: Mapping[str, Sequence[tuple[str, int]]], collation: str) -> None:
    """Give identifier columns a collation: `keys` maps a table to its (column, varchar length) pairs.

    Ids are opaque, so services give theirs `"C"`: bytewise comparison makes every index probe,
    insertion and sort on them a memcmp instead of the locale's strcoll. `"default"` undoes it.
    """
    from alembic import op

    for table, columns in keys.items():
        changes = ", ".join(
            f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE "{collation}"' for name, length in columns
        )
        op.execute(f"ALTER TABLE {table} {changes}")


def drop_runtime_tables() -> None:
    from alembic import op

    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS meadow_notify_outbox()")
    runtime_metadata().drop_all(op.get_bind())
