"""SQLAlchemy metadata of the membership database (runtime tables included, so alembic sees them)."""

from meadow_runtime.tables import runtime_metadata

metadata = runtime_metadata()
