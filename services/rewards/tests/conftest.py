from collections.abc import AsyncIterator
from typing import Any

import pytest

from meadow_runtime.testing.harness import ServiceHarness, running_service
from rewards.app import MIGRATIONS_DIR, SERVICE


@pytest.fixture(scope="module")
def settings(infrastructure: Any) -> Any:
    return infrastructure.settings("rewards", MIGRATIONS_DIR)


@pytest.fixture(scope="module")
async def svc(settings: Any) -> AsyncIterator[ServiceHarness]:
    """One running service per test module (joining a consumer group is the slow part); tests keep apart
    by using a fresh merchant each."""
    async with running_service(settings, SERVICE) as harness:
        yield harness
