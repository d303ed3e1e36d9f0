"""The consumer runner: Kafka → handlers → one DB transaction per batch → offsets.

Per batch from `getmany`:
1. decode every record; undecodable or invalid ones go to `<topic>.dlq`, unknown event types are skipped;
2. in one transaction for the whole `getmany` (all partitions): claim the event ids in the inbox
   (duplicates drop out), run the handlers over runs of same-typed events in partition order, commit;
3. only then commit the offsets, of the partitions still assigned (a rebalance during the batch hands the
   others to a consumer that re-reads them, and the inbox skips what this batch applied).
If the batch fails, each event is retried alone in its own transaction; one that still fails after
`consumer_max_attempts` goes to the DLQ with the error in its headers, and the partition moves on. A
transient database failure (deadlock, serialization failure) is retried with backoff first, without
spending an attempt: it says nothing of the event.
A crash anywhere replays from the last committed offset, and the inbox makes the replay harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from opentelemetry import trace
from opentelemetry.trace import Link
from pydantic import ValidationError

from meadow_contracts import Envelope, Event, UnknownEventType, dlq_topic
from meadow_contracts.registry import decode_envelope

from .errors import transient_failure
from .inbox import claim_new
from .kafka import create_consumer
from .settings import Settings
from .telemetry import (
    CONSUMER_BATCH_SECONDS,
    DEAD_LETTERS,
    EVENTS_CONSUMED,
    context_from_kafka_headers,
    tracer,
)
from .uow import UnitOfWork

log = logging.getLogger(__name__)
# Retries of an event undone by a concurrent transaction (deadlock, serialization failure) before its
# failures start to count as attempts: about 9 s of backoff in all.
TRANSIENT_WAITS = 8

E = TypeVar("E", bound=Event)
U = TypeVar("U", bound=UnitOfWork)


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """One decoded event as it arrived: the envelope, its typed data, and where it came from."""

    envelope: Envelope[Any]  # at run time an `Envelope[E]`: its data is `event`
    event: E
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()


BatchHandler = Callable[[Any, Sequence[Delivery[Any]]], Awaitable[None]]


@dataclass
class HandlerRegistry:
    """Which handler applies which event type. Handlers take the unit of work and a run of deliveries."""

    handlers: dict[str, BatchHandler] = field(default_factory=dict)

    def on(self, event_model: type[E]) -> Callable[[BatchHandler], BatchHandler]:
        def register(handler: BatchHandler) -> BatchHandler:
            self.handlers[event_model.event_type] = handler
            return handler

        return register

    def one_at_a_time(
        self, event_model: type[E]
    ) -> Callable[[Callable[[Any, Delivery[E]], Awaitable[None]]], Any]:
        """Register a handler written for one delivery; the runner still batches the transaction."""

        def register(handler: Callable[[Any, Delivery[E]], Awaitable[None]]) -> Any:
            async def run_each(uow: Any, deliveries: Sequence[Delivery[E]]) -> None:
                for delivery in deliveries:
                    await handler(uow, delivery)

            self.handlers[event_model.event_type] = run_each
            return handler

        return register


class PoisonMessage(Exception):
    """A record that can never be handled as it is (undecodable or invalid)."""


def _decode_record(record: ConsumerRecord[bytes, bytes], logical_topic: str) -> Delivery[Event] | None:
    if record.value is None:
        raise PoisonMessage("empty message")
    try:
        envelope = decode_envelope(record.value)
    except UnknownEventType:
        return None
    except ValidationError as error:
        raise PoisonMessage(f"invalid envelope: {error.errors(include_url=False)}") from error
    return Delivery(
        envelope=envelope,
        event=envelope.data,
        topic=logical_topic,
        partition=record.partition,
        offset=record.offset,
        headers=tuple(record.headers or ()),
    )


def runs_of_same_type(deliveries: Sequence[Delivery[Any]]) -> Iterable[list[Delivery[Any]]]:
    run: list[Delivery[Any]] = []
    for delivery in deliveries:
        if run and run[-1].envelope.type != delivery.envelope.type:
            yield run
            run = []
        run.append(delivery)
    if run:
        yield run


@dataclass
class _FetchedBatch:
    deliveries: list[Delivery[Any]] = field(default_factory=list)
    poison: list[tuple[ConsumerRecord[bytes, bytes], str, str]] = field(default_factory=list)
    records: dict[tuple[str, int, int], ConsumerRecord[bytes, bytes]] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


class ConsumerRunner(Generic[U]):
    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        topics: Sequence[str],
        registry: HandlerRegistry,
        unit_of_work: Callable[[], U],
        dlq_producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer | None = None,
    ) -> None:
        self._settings = settings
        self.group_id = group_id
        self._registry = registry
        self._unit_of_work = unit_of_work
        self._dlq_producer = dlq_producer
        self._consumer = consumer or create_consumer(settings, group_id, *topics)
        self._stopping = asyncio.Event()
        self._prefetch: asyncio.Future[_FetchedBatch] | None = None
        self.handled = 0
        self.dead_lettered = 0

    async def start(self) -> None:
        await self._consumer.start()

    async def wait_until_assigned(self, timeout: float = 30.0) -> None:
        """Poll (handling whatever arrives) until the group has given this consumer its partitions."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"consumer group {self.group_id} got no partitions in {timeout}s")
            await self.poll_once(timeout_ms=100)

    def request_stop(self) -> None:
        """Stop taking new batches; the one in hand is finished and committed first."""
        self._stopping.set()

    async def stop(self) -> None:
        self.request_stop()
        if self._prefetch is not None:
            # Fetched but never applied nor committed: the partitions' next owner reads these again.
            self._prefetch.cancel()
            await asyncio.gather(self._prefetch, return_exceptions=True)
            self._prefetch = None
        await self._consumer.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.poll_once(timeout_ms=500)

    async def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle one `getmany`: every partition's records in one transaction, then one offset commit.

        While this batch's transaction and offset commit wait on Postgres and the broker, the next batch
        is already being fetched and decoded (CPU work that would otherwise wait its turn). That batch is
        only ever applied by the next call, after this one's offsets are committed, so order and
        at-least-once delivery are unchanged; if the runner stops instead, its offsets were never
        committed and the records are fetched again by whoever owns the partitions next.
        """
        fetching, self._prefetch = self._prefetch, None
        batch = await (fetching if fetching is not None else self._fetch(timeout_ms))
        if not batch.offsets:
            return 0
        if not self._stopping.is_set():
            self._prefetch = asyncio.ensure_future(self._fetch(timeout_ms))
        started = time.perf_counter()
        for record, logical_topic, error in batch.poison:
            await self._dead_letter(record, logical_topic, error, attempts=1)
        if batch.deliveries:
            try:
                await self._apply(batch.deliveries)
            except Exception:
                log.exception("batch failed; retrying its events one by one", extra={"group": self.group_id})
                await self._apply_one_by_one(batch.deliveries, batch.records)
        try:
            await self._commit_offsets(batch.offsets)
        except CommitFailedError:
            # The group rebalanced while this batch was applied. Its effects and inbox rows are committed,
            # so whoever owns the partitions now re-reads these records and the inbox skips them.
            log.warning("offsets not committed: the group rebalanced", extra={"group": self.group_id})
        CONSUMER_BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
        return len(batch.deliveries)

    async def _fetch(self, timeout_ms: int) -> _FetchedBatch:
        """One `getmany`, decoded: what to apply, what to dead-letter, and the offsets to commit after."""
        by_partition = await self._consumer.getmany(
            timeout_ms=timeout_ms, max_records=self._settings.consumer_batch_size
        )
        batch = _FetchedBatch()
        for partition, records in by_partition.items():
            if not records:
                continue
            logical_topic = self._settings.logical_topic(partition.topic)
            for record in records:
                try:
                    delivery = _decode_record(record, logical_topic)
                except PoisonMessage as error:
                    batch.poison.append((record, logical_topic, str(error)))
                    continue
                if delivery is not None and delivery.envelope.type in self._registry.handlers:
                    batch.deliveries.append(delivery)
                    batch.records[(logical_topic, record.partition, record.offset)] = record
            batch.offsets[partition] = records[-1].offset + 1
        return batch

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        # A rebalance that completed while the batch was applied has already taken some partitions away,
        # and aiokafka refuses to commit for those (IllegalStateError). Their records' effects are
        # committed; the partitions' new owner re-reads them and the inbox skips them.
        assigned = self._consumer.assignment()
        kept = {partition: offset for partition, offset in offsets.items() if partition in assigned}
        if len(kept) < len(offsets):
            log.warning(
                "offsets not committed for partitions the group reassigned",
                extra={
                    "group": self.group_id,
                    "partitions": sorted(str(p) for p in offsets.keys() - kept.keys()),
                },
            )
        if kept:
            await self._consumer.commit(kept)

    async def _apply(self, deliveries: Sequence[Delivery[Any]]) -> None:
        with tracer().start_as_current_span(
            f"consume {self.group_id}",
            context=context_from_kafka_headers(deliveries[0].headers),
            kind=trace.SpanKind.CONSUMER,
            links=[_link(d) for d in deliveries[1:64]],
            attributes={
                "messaging.batch.message_count": len(deliveries),
                "messaging.consumer.group.name": self.group_id,
            },
        ):
            async with self._unit_of_work() as uow:
                fresh = await claim_new(uow.session, self.group_id, [d.envelope.id for d in deliveries])
                new = []
                for delivery in deliveries:  # a re-sent event can sit twice in one batch: apply the first
                    if delivery.envelope.id in fresh:
                        fresh.discard(delivery.envelope.id)
                        new.append(delivery)
                for run in runs_of_same_type(new):
                    await self._registry.handlers[run[0].envelope.type](uow, run)
                await uow.commit()
        self.handled += len(new)
        EVENTS_CONSUMED.labels(self.group_id, "handled").inc(len(new))
        EVENTS_CONSUMED.labels(self.group_id, "duplicate").inc(len(deliveries) - len(new))

    async def _apply_one_by_one(
        self,
        deliveries: Sequence[Delivery[Any]],
        records: Mapping[tuple[str, int, int], ConsumerRecord[bytes, bytes]],
    ) -> None:
        for delivery in deliveries:
            error: Exception | None = None
            attempts = waits = 0
            while attempts < self._settings.consumer_max_attempts:
                try:
                    await self._apply([delivery])
                    error = None
                    break
                except Exception as failure:  # the handler's own bug or a transient DB error alike
                    error = failure
                    # A deadlock or serialization failure says nothing of the event: wait for the
                    # other transaction, with backoff, without spending an attempt, a few times.
                    if transient_failure(failure) and waits < TRANSIENT_WAITS:
                        waits += 1
                        await asyncio.sleep(min(0.05 * 2**waits, 2.0))  # backoff, not synchronisation
                        continue
                    attempts += 1
            if error is not None:
                await self._dead_letter(
                    records[(delivery.topic, delivery.partition, delivery.offset)],
                    delivery.topic,
                    f"{type(error).__name__}: {error}",
                    attempts=self._settings.consumer_max_attempts,
                )

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], logical_topic: str, error: str, *, attempts: int
    ) -> None:
        headers = [
            *(record.headers or ()),
            ("dlq.error", error[:4000].encode()),
            ("dlq.original.topic", logical_topic.encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
            ("dlq.consumer.group", self.group_id.encode()),
            ("dlq.attempts", str(attempts).encode()),
        ]
        await self._dlq_producer.send_and_wait(
            self._settings.topic(dlq_topic(logical_topic)),
            value=record.value,
            key=record.key,
            headers=headers,
        )
        self.dead_lettered += 1
        DEAD_LETTERS.labels(logical_topic).inc()
        log.warning(
            "sent to DLQ", extra={"topic": logical_topic, "offset": record.offset, "error": error[:500]}
        )


def _link(delivery: Delivery[Any]) -> Link:
    span_context = trace.get_current_span(context_from_kafka_headers(delivery.headers)).get_span_context()
    return Link(span_context)
