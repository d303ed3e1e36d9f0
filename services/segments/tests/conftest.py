import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meadow_runtime.settings import Settings
from meadow_runtime.testing.harness import ServiceHarness, running_service
from segments.app import MIGRATIONS_DIR, SERVICE

# Test modules import in importlib mode; their shared event builders live beside them.
sys.path.insert(0, str(Path(__file__).parent / "integration"))


@pytest.fixture(scope="module")
def settings(infrastructure: Any) -> Settings:
    # A fresh database (template copy) and topic prefix for each test module.
    result: Settings = infrastructure.settings("segments", MIGRATIONS_DIR)
    return result


@pytest.fixture
async def svc(settings: Settings) -> AsyncIterator[ServiceHarness]:
    async with running_service(settings, SERVICE) as harness:
        yield harness
