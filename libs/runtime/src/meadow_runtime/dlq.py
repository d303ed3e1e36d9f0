"""Re-drive a dead-letter topic: send its messages back to the original topic once the cause is fixed.

The consumer that dead-lettered a message never recorded it in its inbox, so the re-driven copy is
handled normally; the `dlq.*` headers are dropped and a `dlq.redriven` header records where it came from.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from meadow_contracts import dlq_topic

from .kafka import create_consumer, create_producer
from .settings import Settings

REDRIVE_GROUP = "meadow-dlq-redrive"


async def redrive(settings: Settings, topic: str, *, limit: int | None = None) -> int:
    """Move what is on `<topic>.dlq` now back to `<topic>`; returns how many messages were moved."""
    dead_letters = dlq_topic(topic)
    consumer = create_consumer(settings, REDRIVE_GROUP, dead_letters)
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    moved = 0
    try:
        partitions = consumer.assignment() or {
            TopicPartition(settings.topic(dead_letters), p)
            for p in (consumer.partitions_for_topic(settings.topic(dead_letters)) or ())
        }
        end_offsets = await consumer.end_offsets(list(partitions))
        remaining = {tp for tp, end in end_offsets.items() if await consumer.position(tp) < end}
        while remaining and (limit is None or moved < limit):
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for tp, records in batches.items():
                for record in records:
                    headers = [(k, v) for k, v in record.headers or () if not k.startswith("dlq.")]
                    headers.append(("dlq.redriven", str(record.offset).encode()))
                    await producer.send_and_wait(
                        settings.topic(topic), value=record.value, key=record.key, headers=headers
                    )
                    moved += 1
                if records:
                    await consumer.commit({tp: records[-1].offset + 1})
            remaining = {tp for tp in remaining if await consumer.position(tp) < end_offsets[tp]}
    finally:
        await consumer.stop()
        await producer.stop()
    return moved
