"""The hand-written migrations build exactly the tables `models.py` describes."""

from __future__ import annotations

from meadow_runtime.migrations import head_revision, schema_against_models
from meadow_runtime.settings import Settings
from membership.app import MIGRATIONS_DIR
from membership.models import metadata


def test_migrations_match_the_models(settings: Settings) -> None:
    revision, differences = schema_against_models(settings.database_url, metadata)
    assert revision == head_revision(MIGRATIONS_DIR)
    assert differences == []
