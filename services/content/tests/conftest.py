from collections.abc import AsyncIterator

import pytest

from content.app import MIGRATIONS_DIR, SERVICE
from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness, running_service
from meadow_runtime.testing.infrastructure import Infrastructure


@pytest.fixture(scope="module")
def settings(infrastructure: Infrastructure) -> Settings:
    return infrastructure.settings("content", MIGRATIONS_DIR)


@pytest.fixture(scope="module")
async def svc(settings: Settings) -> AsyncIterator[ServiceHarness]:
    # One running service per module (a fresh database and topic prefix each); tests use distinct merchants.
    async with running_service(settings, SERVICE) as harness:
        yield harness
