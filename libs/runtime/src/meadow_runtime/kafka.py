"""aiokafka clients configured from settings.

Tansu (dev) and our reliability contract both want `acks="all"` without the idempotent producer: the
outbox can re-send after a crash anyway, and every consumer's inbox makes a redelivery harmless.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from .settings import Settings


def _connection_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def create_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        **_connection_options(settings),
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_batch_size": 1024 * 1024,
        "client_id": f"{settings.service_name}-producer",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_consumer(settings: Settings, group_id: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        **_connection_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "client_id": f"{settings.service_name}-{group_id}",
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "rebalance_timeout_ms": settings.kafka_rebalance_timeout_ms,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*(settings.topic(t) for t in topics), **options)


def create_reader(settings: Settings, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer outside any group, for tools and tests that assign partitions themselves."""
    options: dict[str, Any] = {**_connection_options(settings), "enable_auto_commit": False, "group_id": None}
    options.update(overrides)
    return AIOKafkaConsumer(**options)
