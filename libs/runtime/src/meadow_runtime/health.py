"""`/healthz` says the process is alive; `/readyz` says it can do its job right now."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database_at_head(engine: AsyncEngine, head: str | None) -> str | None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        current = {row[0] for row in rows}
    if head is not None and head not in current:
        return f"migrations not at head {head} (database has {sorted(current) or 'none'})"
    return None


async def _broker_reachable(settings: Settings) -> str | None:
    last_error = "no bootstrap servers"
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host or "localhost", int(port)), 2)
        except (OSError, TimeoutError, ValueError) as error:
            last_error = f"{server}: {error or type(error).__name__}"
            continue
        writer.close()
        return None
    return last_error


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, Any] = {}
    try:
        problem = await asyncio.wait_for(_database_at_head(state.engine, state.migrations_head), 3)
    except Exception as error:  # any failure to reach the DB means not ready
        problem = f"{type(error).__name__}: {error}"
    checks["database"] = problem or "ok"
    checks["broker"] = await _broker_reachable(state.settings) or "ok"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
