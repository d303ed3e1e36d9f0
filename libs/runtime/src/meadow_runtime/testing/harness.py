"""Run one service in-process against the real servers: its API via httpx, its relay and consumers
driven step by step, so tests decide exactly when events move (no background timing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from ..app import build_app
from ..auth import Role, issue_token
from ..consumer import ConsumerRunner
from ..db import create_engine, create_session_factory
from ..kafka import create_producer
from ..relay import OutboxRelay
from ..service import ServiceDefinition
from ..settings import Settings
from ..uow import UnitOfWork


class ServiceHarness:
    def __init__(self, settings: Settings, service: ServiceDefinition) -> None:
        self.settings = settings.for_service(service.name)
        self.service = service
        self.app: FastAPI = build_app(self.settings, service)
        # as the worker's: the harness runs the service's consumers and jobs as well as its API
        self.engine = create_engine(self.settings.database_url, plan_each_execution=True)
        self.session_factory = create_session_factory(self.engine)
        self.producer = create_producer(self.settings)
        self.relay = OutboxRelay(self.settings, producer=self.producer)
        self.runner: ConsumerRunner[UnitOfWork] | None = None
        self.client: httpx.AsyncClient

    def uow(self) -> Any:
        """A fresh unit of work of the service's own type (use `async with harness.uow() as uow`)."""
        return self.service.unit_of_work(self.session_factory, self.service.name)

    def token(
        self, merchant_id: str = "m1", role: Role = "owner", customer_id: str | None = None, **kw: Any
    ) -> str:
        subject = customer_id if role == "customer" and customer_id else f"{role}-{merchant_id}"
        return issue_token(
            self.settings, merchant_id=merchant_id, subject=subject, role=role, customer_id=customer_id, **kw
        )

    def auth(
        self, merchant_id: str = "m1", role: Role = "owner", customer_id: str | None = None
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(merchant_id, role, customer_id)}"}

    async def publish_outbox(self) -> int:
        """Relay every pending outbox row to Kafka; returns how many went out."""
        total = 0
        while (count := await self.relay.publish_batch()) > 0:
            total += count
        return total

    async def consume(self, *, idle_polls: int = 2, timeout_ms: int = 300) -> int:
        """Handle what is on the consumed topics until `idle_polls` polls in a row bring nothing."""
        assert self.runner is not None, "this service consumes no topics"
        handled, idle = 0, 0
        while idle < idle_polls:
            count = await self.runner.poll_once(timeout_ms=timeout_ms)
            handled += count
            idle = 0 if count else idle + 1
        return handled

    async def start(self) -> None:
        await self.producer.start()
        await self.relay.start()
        if self.service.handlers.handlers and self.service.consumed_topics:
            self.runner = ConsumerRunner(
                self.settings,
                group_id=self.service.name,
                topics=self.service.consumed_topics,
                registry=self.service.handlers,
                unit_of_work=self.uow,
                dlq_producer=self.producer,
            )
            await self.runner.start()
            await self.runner.wait_until_assigned()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        await self.relay.stop()
        await self.producer.stop()
        await self.engine.dispose()


@asynccontextmanager
async def running_service(settings: Settings, service: ServiceDefinition) -> AsyncIterator[ServiceHarness]:
    harness = ServiceHarness(settings, service)
    await harness.start()
    async with harness.app.router.lifespan_context(harness.app):
        transport = httpx.ASGITransport(app=harness.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            harness.client = client
            try:
                yield harness
            finally:
                await harness.stop()
