"""Build a service's FastAPI application from its definition: auth, errors, telemetry, health, routers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic_core import from_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .db import create_engine, create_session_factory
from .errors import install_problem_handlers, problem_response, validation_problem
from .health import router as health_router
from .migrations import head_revision
from .service import ServiceDefinition
from .settings import Settings
from .telemetry import configure_logging, configure_tracing
from .uow import UnitOfWork

HTTP_REQUESTS = Counter("meadow_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("meadow_http_request_seconds", "HTTP request latency", ["method", "route"])

U = TypeVar("U", bound=UnitOfWork)


class _PrometheusMiddleware:
    """Plain ASGI (not BaseHTTPMiddleware): it sits on every request's path, so it stays cheap."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
            HTTP_SECONDS.labels(scope["method"], path).observe(time.perf_counter() - started)


class _StrictJsonBodies:
    """Refuses, as a 422, a JSON body Python's `json` accepts but no store can hold: a lone UTF-16
    surrogate escape (`"\\ud800"`) becomes a `str` that UTF-8 cannot encode, which would fail later, as
    a 500, when written to Postgres or the outbox or echoed in an error. pydantic-core's parser refuses
    it (and whatever else is not JSON); the body then goes on to the endpoint as it came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_be_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                from_json(body)
            except ValueError as error:
                problem = validation_problem([{"type": "json_invalid", "loc": ("body",), "msg": str(error)}])
                await problem_response(problem)(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _may_be_json(scope: Scope) -> bool:
    """As FastAPI reads a body as JSON: when it says so (`…/json`, `…+json`) or says nothing."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media.endswith(b"/json") or media.endswith(b"+json")
    return True


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def build_app(settings: Settings, service: ServiceDefinition) -> FastAPI:
    settings = settings.for_service(service.name)
    configure_logging(settings)
    configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        session_factory = create_session_factory(engine)
        app.state.engine = engine
        app.state.uow_factory = lambda: service.unit_of_work(session_factory, service.name)
        yield
        await engine.dispose()

    app = FastAPI(
        title=f"Meadow {service.name}",
        description=service.description,
        version="0.1.0",
        lifespan=lifespan,
        root_path_in_servers=False,
    )
    app.state.settings = settings
    app.state.verified_tokens = {}  # token → (principal, expiry): see auth.authenticate
    app.state.service = service
    app.state.migrations_head = head_revision(service.migrations_dir)
    install_problem_handlers(app)
    app.include_router(health_router)
    for router in service.routers:
        app.include_router(router)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    app.add_middleware(_StrictJsonBodies)
    app.add_middleware(_PrometheusMiddleware)  # added last: outermost, so it counts the 422s above too
    # One server span per request; the per-message `receive`/`send` child spans cost ~8% of a busy
    # endpoint's CPU and tell an operator nothing the server span does not.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )
    return app


def unit_of_work_dependency(uow_type: type[U]) -> Callable[[Request], AsyncIterator[U]]:
    """A typed request dependency: `Annotated[MyUoW, Depends(unit_of_work_dependency(MyUoW))]`."""

    async def dependency(request: Request) -> AsyncIterator[U]:
        async with request.app.state.uow_factory() as uow:
            if not isinstance(uow, uow_type):
                raise TypeError(f"the service builds {type(uow).__name__}, not {uow_type.__name__}")
            yield uow

    return dependency


# An entered unit of work for one request: the endpoint commits; anything uncommitted rolls back.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work_dependency(UnitOfWork))]
