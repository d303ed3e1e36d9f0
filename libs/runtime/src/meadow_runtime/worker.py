"""A service's worker process: the outbox relay, its consumers and its periodic jobs, until SIGTERM.

On SIGTERM (or Ctrl-C) intake stops, the batch in hand is finished and committed, then everything closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from .consumer import ConsumerRunner
from .db import create_engine, create_session_factory
from .heap import worker_collector
from .kafka import create_producer
from .relay import OutboxRelay
from .service import PeriodicJob, ServiceDefinition
from .settings import Settings
from .telemetry import configure_logging, configure_tracing
from .uow import UnitOfWork
from .worker_http import serve_health

log = logging.getLogger(__name__)


async def _run_job(
    job: PeriodicJob, uow_factory: Callable[[], UnitOfWork], settings: Settings, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await job.run(uow_factory, settings)
        except Exception:
            log.exception("periodic job failed; next run as scheduled", extra={"job": job.name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), job.every.total_seconds())


async def run_worker(
    settings: Settings,
    service: ServiceDefinition,
    *,
    with_scheduler: bool = False,
    health_port: int | None = None,
) -> None:
    settings = settings.for_service(service.name)
    configure_logging(settings)
    configure_tracing(settings)
    engine = create_engine(
        settings.database_url, pool_size=settings.database_pool_size, plan_each_execution=True
    )
    session_factory = create_session_factory(engine)

    def uow_factory() -> UnitOfWork:
        return service.unit_of_work(session_factory, service.name)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    producer = create_producer(settings)
    await producer.start()
    relay = OutboxRelay(settings, producer=producer)
    await relay.start()
    # Several members of the group in one process, each with its own partitions and transactions: while
    # one batch waits on Postgres, another is decoded and handled, so a worker uses both the database and
    # its own CPU instead of taking turns. Per-partition order and the inbox work as with one.
    runners: list[ConsumerRunner[UnitOfWork]] = []
    if service.handlers.handlers and service.consumed_topics:
        runners = [
            ConsumerRunner(
                settings,
                group_id=service.name,
                topics=service.consumed_topics,
                registry=service.handlers,
                unit_of_work=uow_factory,
                dlq_producer=producer,
            )
            for _ in range(settings.consumer_concurrency)
        ]
        for runner in runners:
            await runner.start()
    tasks = [asyncio.create_task(relay.run(), name="relay")]
    tasks += [asyncio.create_task(r.run(), name=f"consumer-{i}") for i, r in enumerate(runners)]
    tasks += [
        asyncio.create_task(_run_job(j, uow_factory, settings, stop), name=j.name) for j in service.jobs
    ]
    scheduler: asyncio.Task[None] | None = None
    if with_scheduler and service.scheduler is not None:
        scheduler = asyncio.create_task(service.scheduler(settings, uow_factory), name="scheduler")
        tasks.append(scheduler)
    loops = list(tasks)
    health: asyncio.Task[None] | None = None
    if health_port is not None:

        def alive() -> dict[str, bool]:
            return {task.get_name(): not task.done() for task in loops}

        health = asyncio.create_task(serve_health(health_port, alive, stop), name="health")
    log.info("worker started", extra={"service": service.name, "tasks": [t.get_name() for t in tasks]})

    stopped = asyncio.create_task(stop.wait())
    async with worker_collector():
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopped and task.exception() is not None:
            log.error("worker task died", exc_info=task.exception(), extra={"task": task.get_name()})
    stop.set()
    relay.request_stop()
    for runner in runners:
        runner.request_stop()
    if scheduler is not None:
        # The scheduler runs until cancelled; a claim it was making rolls back and is picked up again.
        scheduler.cancel()
    # Each loop notices the stop between batches: the batch in hand finishes and commits first.
    _, pending = await asyncio.wait(tasks, timeout=15)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if health is not None:
        await health
    await relay.stop()
    for runner in runners:
        await runner.stop()
    await producer.stop()
    await engine.dispose()
    log.info("worker stopped", extra={"service": service.name})
