"""The worker's small HTTP side: `/healthz` for liveness probes and `/metrics` for Prometheus.

The consumer, relay and DLQ counters live in the worker process, so this is where they are scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the worker owns SIGTERM/SIGINT; it stops this server itself


def health_app(alive: Callable[[], dict[str, bool]]) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        loops = alive()
        healthy = all(loops.values())
        return JSONResponse(
            {"status": "ok" if healthy else "failing", "loops": loops}, 200 if healthy else 503
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


async def serve_health(port: int, alive: Callable[[], dict[str, bool]], stop: asyncio.Event) -> None:
    config = uvicorn.Config(health_app(alive), host="0.0.0.0", port=port, log_config=None, access_log=False)
    server = _EmbeddedServer(config)
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving
