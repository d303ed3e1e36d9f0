"""A real worker process: it relays and consumes until SIGTERM, then finishes, commits and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import httpx

from meadow_contracts import CustomerProfileUpdated, Envelope, Topic
from meadow_devstack.servers import free_port
from meadow_runtime.db import plain_url
from meadow_runtime.testing.harness import running_service
from meadow_runtime.testing.infrastructure import Infrastructure
from meadow_runtime.testing.kafka import eventually, produce
from testbed.service import MIGRATIONS_DIR, SERVICE

TESTS_DIR = Path(__file__).resolve().parents[1]
WORKER = (
    "import asyncio\n"
    "from meadow_runtime.settings import Settings\n"
    "from meadow_runtime.worker import run_worker\n"
    "from testbed.service import SERVICE\n"
    "import sys\n"
    "asyncio.run(run_worker(Settings(), SERVICE, health_port=int(sys.argv[1])))\n"
)


async def _get(client: httpx.AsyncClient, path: str) -> httpx.Response | None:
    try:
        return await client.get(path)
    except httpx.TransportError:
        return None  # not listening yet


async def test_sigterm_stops_the_worker_cleanly_with_offsets_committed(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    settings = infrastructure.settings("testbed", MIGRATIONS_DIR)
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS_DIR),
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(settings.kafka_heartbeat_interval_ms),
        "KAFKA_REBALANCE_TIMEOUT_MS": str(settings.kafka_rebalance_timeout_ms),
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }
    events = [
        Envelope.wrap(
            CustomerProfileUpdated(customer_id=f"c{i}", city="Hefei"),
            source="t",
            merchant_id="m",
            subject=f"c{i}",
        )
        for i in range(200)
    ]
    await produce(settings, Topic.COMMERCE_CUSTOMERS.value, *events)
    log_path = tmp_path / "worker.log"
    health_port = free_port()
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, str(health_port), env=env, stderr=log
        )
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:

        async def applied() -> int:
            return int(await conn.fetchval("SELECT count(*) FROM effects"))

        await eventually(applied, until=lambda n: n == len(events), timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health_port}") as client:
            health = await eventually(lambda: _get(client, "/healthz"), until=lambda r: r is not None)
            assert health is not None
            consumers = {f"consumer-{i}": True for i in range(settings.consumer_concurrency)}
            assert len(consumers) == 2, "the worker runs two members of its group by default"
            assert health.json()["loops"] == {"relay": True, **consumers}
            metrics = await client.get("/metrics")
            assert (
                'meadow_events_consumed_total{consumer_group="testbed",outcome="handled"} 200.0'
                in metrics.text
            )
        worker.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(worker.wait(), timeout=30)
        logged = log_path.read_text()
        assert returncode == 0, logged
        assert "worker stopped" in logged
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        await conn.close()

    async with running_service(settings, SERVICE) as restarted:
        assert await restarted.consume() == 0, "offsets were committed: nothing is delivered again"
