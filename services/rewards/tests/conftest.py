from collections.abc import AsyncIterator
from typing import Any

import pytest

from meadow_runtime.testing.harness import ServiceHarness, running_service
from rewards.app import MIGRATIONS_DIR, SERVICE


@pytest.fixture(scope="module")
def settings(infrastructure: Any) -> Any:
    return infrastructure.settings("rewards", MIGRATIONS_DIR)


@pytest.fixture
async def svc(settings: Any) -> AsyncIterator[ServiceHarness]:
    async with running_service(settings, SERVICE) as harness:
        yield harness
