"""The outbox relay: moves committed outbox rows to Kafka.

It claims unpublished rows with `FOR UPDATE SKIP LOCKED`, produces them with acks=all, and marks them
published in the same transaction that holds the lock, so several relays share the work and none ever
skips a row. A crash after producing but before the commit re-sends the batch: consumers' inboxes absorb
the duplicate. Rows stay for a retention window so a time range can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from asyncpg.transaction import Transaction

from .db import plain_url
from .kafka import create_producer
from .settings import Settings
from .tables import OUTBOX_NOTIFY_CHANNEL
from .telemetry import EVENTS_PUBLISHED

log = logging.getLogger(__name__)
_PARTITIONER = DefaultPartitioner()

CLAIM_SQL = """
    SELECT id, aggregatetype, aggregateid, payload::text AS payload, headers::text AS headers
    FROM outbox
    WHERE published_at IS NULL
    ORDER BY position
    LIMIT $1
    FOR UPDATE SKIP LOCKED
"""
MARK_SQL = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])"
PURGE_SQL = (
    "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < now() - make_interval(hours => $1)"
)
REPLAY_SQL = "UPDATE outbox SET published_at = NULL WHERE created_at >= $1 AND created_at < $2"


class OutboxRelay:
    def __init__(self, settings: Settings, producer: AIOKafkaProducer | None = None) -> None:
        self._settings = settings
        self._producer = producer or create_producer(settings)
        self._owns_producer = producer is None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self.published = 0

    async def start(self) -> None:
        url = plain_url(self._settings.database_url)
        self._pool = await asyncpg.create_pool(url, min_size=2, max_size=3)
        self._listener = await asyncpg.connect(url)
        await self._listener.add_listener(OUTBOX_NOTIFY_CHANNEL, self._on_notify)
        if self._owns_producer:
            await self._producer.start()

    def request_stop(self) -> None:
        """Finish the batch in hand, then leave `run`."""
        self._stopping.set()
        self._wake.set()

    async def stop(self) -> None:
        self.request_stop()
        if self._listener is not None:
            await self._listener.close()
        if self._pool is not None:
            await self._pool.close()
        if self._owns_producer:
            await self._producer.stop()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def publish_batch(self) -> int:
        """Claim, produce and mark one batch; returns how many rows it published."""
        assert self._pool is not None, "start() the relay first"
        async with self._pool.acquire() as conn:
            transaction, rows = await self._claim(conn)
            if not rows:
                return 0
            try:
                await self._produce_and_mark(conn, rows)
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()
        return len(rows)

    async def drain(self) -> int:
        """Publish batch after batch until nothing is left (or a stop is requested)."""
        total = 0
        while not self._stopping.is_set() and (published := await self.publish_batch()):
            total += published
        return total

    async def _claim(self, conn: asyncpg.Connection) -> tuple[Transaction, list[asyncpg.Record]]:
        """Open a transaction and lock the next unpublished rows in it (an empty claim is rolled back)."""
        transaction = conn.transaction()
        await transaction.start()
        try:
            rows = await conn.fetch(CLAIM_SQL, self._settings.outbox_batch_size)
        except BaseException:
            await transaction.rollback()
            raise
        if not rows:
            await transaction.rollback()
        return transaction, rows

    async def _send(self, rows: list[asyncpg.Record]) -> list[asyncio.Future[object]]:
        """Queue the rows as one record batch per partition (far cheaper than a `send` per message).

        Partitions are chosen exactly as `send` would (murmur2 of the key), so a key keeps its partition
        whichever way a message was produced, and batches to one partition leave in claim order.
        """
        partitions: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], BatchBuilder] = {}
        sends: list[asyncio.Future[object]] = []
        for row in rows:
            topic = self._settings.topic(row["aggregatetype"])
            if topic not in partitions:
                partitions[topic] = sorted(await self._producer.partitions_for(topic))
            key = row["aggregateid"].encode()
            partition = _PARTITIONER(key, partitions[topic], partitions[topic])
            headers = [(name, str(value).encode()) for name, value in json.loads(row["headers"]).items()]
            value = row["payload"].encode()
            batch = batches.get((topic, partition))
            if batch is None or batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                if batch is not None:  # full: send it and start the next one
                    sends.append(await self._producer.send_batch(batch, topic, partition=partition))
                batch = batches[(topic, partition)] = self._producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        for (topic, partition), batch in batches.items():
            sends.append(await self._producer.send_batch(batch, topic, partition=partition))
        return sends

    async def _produce_and_mark(self, conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
        await asyncio.gather(*await self._send(rows))  # every message acknowledged by all in-sync replicas
        await self._mark_published(conn, [row["id"] for row in rows])
        self._count(rows)

    def _count(self, rows: list[asyncpg.Record]) -> None:
        for row in rows:
            EVENTS_PUBLISHED.labels(row["aggregatetype"]).inc()
        self.published += len(rows)

    async def _mark_published(self, conn: asyncpg.Connection, ids: list[object]) -> None:
        await conn.execute(MARK_SQL, ids)

    async def purge_expired(self) -> int:
        assert self._pool is not None
        status = await self._pool.execute(PURGE_SQL, self._settings.outbox_retention_hours)
        return int(status.split()[-1])

    async def run(self) -> None:
        """Publish until stopped; sleep between empty polls unless a NOTIFY arrives first."""
        last_purge = asyncio.get_running_loop().time()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.drain()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("outbox relay batch failed, will retry", extra={"error": str(error)})
            now = asyncio.get_running_loop().time()
            if now - last_purge > 3600:
                last_purge = now
                await self.purge_expired()
            # drain() returned because nothing was left: wait for a NOTIFY (one that arrived while
            # draining has already set the event) or for the polling interval.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.outbox_poll_interval_seconds)


async def replay(settings: Settings, since: datetime, until: datetime) -> int:
    """Mark the rows created in [since, until) unpublished again, so the relays send them once more."""
    if until <= since:
        raise ValueError("until must be after since")
    if until - since > timedelta(days=366):
        raise ValueError("replay at most a year at a time")
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        status = await conn.execute(REPLAY_SQL, since, until)
    finally:
        await conn.close()
    return int(status.split()[-1])
