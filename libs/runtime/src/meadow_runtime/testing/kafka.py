"""Producing and reading raw messages in tests, and polling with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from meadow_contracts import Envelope

from ..kafka import create_producer, create_reader
from ..settings import Settings

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool] = bool, timeout: float = 20.0
) -> T:
    """Call `probe` until `until(result)` holds; fail with the last result when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last result: {result!r}")
        await asyncio.sleep(0.05)  # polling interval inside a deadline-bounded wait


async def produce(
    settings: Settings,
    topic: str,
    *envelopes: Envelope | bytes,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        for item in envelopes:
            value = item if isinstance(item, bytes) else item.to_bytes()
            key = None if isinstance(item, bytes) else item.key.encode()
            await producer.send_and_wait(settings.topic(topic), value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


class TopicReader:
    """Reads everything on a topic from the beginning; for asserting what a service published."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._topic = settings.topic(topic)
        self._consumer: AIOKafkaConsumer = create_reader(settings)
        self.records: list[ConsumerRecord[bytes, bytes]] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        partitions = await eventually(lambda: self._partitions(), until=lambda found: bool(found), timeout=10)
        assigned = [TopicPartition(self._topic, p) for p in partitions]
        self._consumer.assign(assigned)
        # Test topics are fresh and never truncated, so every partition starts at offset 0. Asking the
        # broker for its earliest offset instead (seek_to_beginning) once got 17 back for a partition
        # that two relays had just written to at once, and the reader never saw those 17 records.
        for partition in assigned:
            self._consumer.seek(partition, 0)
        return self

    async def _partitions(self) -> set[int]:
        await self._consumer._client.force_metadata_update()
        return self._consumer.partitions_for_topic(self._topic) or set()

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def read_available(self) -> list[ConsumerRecord[bytes, bytes]]:
        batches = await self._consumer.getmany(timeout_ms=200)
        for records in batches.values():
            self.records.extend(records)
        return self.records

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Envelope]:
        await eventually(self.read_available, until=lambda records: len(records) >= count, timeout=timeout)
        return [Envelope.from_bytes(r.value) for r in self.records if r.value is not None]

    def envelopes(self) -> list[Envelope]:
        return [Envelope.from_bytes(r.value) for r in self.records if r.value is not None]
