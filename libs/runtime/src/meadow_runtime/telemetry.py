"""Traces, metrics and logs.

Trace context travels HTTP → outbox row headers → Kafka headers → consumer span (W3C traceparent), so one
trace shows a request and every effect it caused in other services.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import Counter, Histogram
from pythonjsonlogger.json import JsonFormatter

from .settings import Settings

TRACER_NAME = "meadow"

EVENTS_PUBLISHED = Counter("meadow_outbox_events_published_total", "Events the relay produced", ["topic"])
EVENTS_CONSUMED = Counter(
    "meadow_events_consumed_total", "Events handled by consumers", ["consumer_group", "outcome"]
)
DEAD_LETTERS = Counter("meadow_dead_letters_total", "Messages sent to a DLQ", ["topic"])
CONSUMER_BATCH_SECONDS = Histogram(
    "meadow_consumer_batch_seconds", "Time to handle one batch", ["consumer_group"]
)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


_memory_exporter: InMemorySpanExporter | None = None


def configure_tracing(settings: Settings) -> None:
    """Install a tracer provider once per process; tests use the in-memory exporter to inspect spans."""
    global _memory_exporter
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        # One provider per process; a test process that later asks for in-memory spans still gets them.
        if settings.otel_traces_exporter == "memory" and _memory_exporter is None:
            _memory_exporter = InMemorySpanExporter()
            existing.add_span_processor(SimpleSpanProcessor(_memory_exporter))
        return
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter: SpanExporter | None = None
    if settings.otel_traces_exporter == "console":
        exporter = ConsoleSpanExporter()
    elif settings.otel_traces_exporter == "memory":
        _memory_exporter = exporter = InMemorySpanExporter()
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def memory_exporter() -> InMemorySpanExporter | None:
    return _memory_exporter


def current_trace_headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def kafka_headers(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in headers.items()]


def context_from_kafka_headers(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    carrier = {name: value.decode(errors="replace") for name, value in headers or ()}
    return extract(carrier)


class _TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        record.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        record.span_id = format(span_context.span_id, "016x") if span_context.is_valid else None
        return True


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_TraceIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def span_attributes(**attributes: Any) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}
