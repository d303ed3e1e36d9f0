"""Validating a batch of commerce events against the contracts and publishing them via the outbox."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from pydantic import ValidationError
from sqlalchemy import Column, String, text

from meadow_contracts import (
    CustomerProfileUpdated,
    Envelope,
    Event,
    OrderPaid,
    OrderRefunded,
    ProductFavorited,
    ProductViewed,
)
from meadow_runtime.errors import NotFound, Problem

from .. import models
from ..uow import SegmentsUnitOfWork

INGESTIBLE: dict[str, type[Event]] = {
    model.event_type: model
    for model in (OrderPaid, OrderRefunded, CustomerProfileUpdated, ProductFavorited, ProductViewed)
}
SHORT_NAMES: dict[str, type[Event]] = {name.split(".")[-2]: model for name, model in INGESTIBLE.items()}
ENVELOPE_FIELDS = {"id", "type", "source", "time", "merchant_id", "subject", "data"}


def _length(column: Column[Any]) -> int:
    assert isinstance(column.type, String)
    assert column.type.length is not None
    return column.type.length


# The longest value of each event field that the facts tables can hold: an event the consumer could not
# store is refused here, instead of being accepted and then dead-lettered.
STORED_LENGTHS: dict[str, int] = {
    "customer_id": _length(models.customers.c.customer_id),
    "order_id": _length(models.orders.c.order_id),
    "refund_id": _length(models.refund_lines.c.refund_id),
    "line_id": _length(models.order_lines.c.line_id),
    "product_id": _length(models.order_lines.c.product_id),
    "category": _length(models.order_lines.c.category),
    "city": _length(models.customers.c.city),
    "size": _length(models.customers.c.size),
    "channel": _length(models.customers.c.channel),
}


def _unstorable_strings(
    value: Any, path: tuple[object, ...] = ()
) -> Iterator[tuple[tuple[object, ...], str]]:
    """Strings the facts tables cannot hold: longer than their column, or with a NUL character (which
    Postgres text refuses)."""
    if isinstance(value, dict):
        for name, item in value.items():
            limit = STORED_LENGTHS.get(name)
            if isinstance(item, str) and "\x00" in item:
                yield (*path, name), "contains a NUL character"
            elif limit is not None and isinstance(item, str) and len(item) > limit:
                yield (*path, name), f"at most {limit} characters"
            else:
                yield from _unstorable_strings(item, (*path, name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _unstorable_strings(item, (*path, index))


# Amounts are stored as Postgres bigints, and so is an order's total, the sum of its lines.
MAX_STORED_AMOUNT = 2**63 - 1


def _too_large(fields: dict[str, Any]) -> list[tuple[object, ...]]:
    lines = fields.get("lines") or ()
    too_large: list[tuple[object, ...]] = [
        ("lines", index, "amount_minor")
        for index, line in enumerate(lines)
        if line["amount_minor"] > MAX_STORED_AMOUNT
    ]
    if not too_large and sum(line["amount_minor"] for line in lines) > MAX_STORED_AMOUNT:
        too_large.append(("lines",))  # each line fits, their total does not
    return too_large


def model_for(event_type: str) -> type[Event]:
    model = INGESTIBLE.get(event_type) or SHORT_NAMES.get(event_type)
    if model is None:
        raise NotFound("ingestible event type", f"{event_type!r} (one of {sorted(SHORT_NAMES)})")
    return model


def _pointer(*parts: object) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _data_path(item: dict[str, Any], index: int) -> tuple[object, ...]:
    """Where an item's event body sits: inside an envelope's `data`, or the item itself."""
    return ("events", index, "data") if isinstance(item.get("data"), dict) else ("events", index)


class Ingestible(NamedTuple):
    envelope: Envelope
    event: Event  # the envelope's body, validated


def build_envelopes(model: type[Event], merchant: str, items: list[dict[str, Any]]) -> list[Ingestible]:
    """Every item validated first: one bad item refuses the whole batch, naming each bad field."""
    errors: list[dict[str, str]] = []
    wrong_merchant: list[dict[str, str]] = []
    envelopes: list[Ingestible] = []
    for index, item in enumerate(items):
        is_envelope = isinstance(item.get("data"), dict)
        data = item["data"] if is_envelope else item
        base = _data_path(item, index)
        if is_envelope:
            unknown = sorted(set(item) - ENVELOPE_FIELDS)
            errors += [
                {"pointer": _pointer("events", index, u), "detail": "unknown envelope field"} for u in unknown
            ]
            if item.get("merchant_id", merchant) != merchant:
                wrong_merchant.append(
                    {
                        "pointer": _pointer("events", index, "merchant_id"),
                        "detail": "not the merchant of your token",
                    }
                )
            if item.get("type", model.event_type) != model.event_type:
                errors.append(
                    {"pointer": _pointer("events", index, "type"), "detail": f"expected {model.event_type}"}
                )
        try:
            # Consumers ignore fields they do not know (a newer producer's); an integrator's misspelt
            # field is refused here instead of being dropped without a word.
            event = model.model_validate(data, extra="forbid")
        except ValidationError as error:
            errors += [
                {"pointer": _pointer(*base, *e["loc"]), "detail": str(e["msg"])}
                for e in _most_specific(error.errors(include_url=False))
            ]
            continue
        fields = event.model_dump()
        item_errors = [
            {"pointer": _pointer(*base, *path), "detail": detail}
            for path, detail in _unstorable_strings(fields)
        ]
        item_errors += [
            {"pointer": _pointer(*base, *path), "detail": f"at most {MAX_STORED_AMOUNT} minor units"}
            for path in _too_large(fields)
        ]
        customer = str(fields["customer_id"])
        # the Kafka key is merchant:customer, so one customer's events keep their order
        if is_envelope and item.get("subject") not in (None, "", customer):
            item_errors.append(
                {"pointer": _pointer("events", index, "subject"), "detail": "must be the customer_id"}
            )
        event_id: UUID | None = None
        at: datetime | None = None
        try:
            if is_envelope and item.get("id"):
                event_id = UUID(str(item["id"]))
        except ValueError:
            item_errors.append({"pointer": _pointer("events", index, "id"), "detail": "not a UUID"})
        try:
            if is_envelope and item.get("time"):
                at = datetime.fromisoformat(str(item["time"]))
        except ValueError:
            item_errors.append(
                {"pointer": _pointer("events", index, "time"), "detail": "not an ISO 8601 time"}
            )
        if item_errors:
            errors += item_errors
            continue
        try:
            envelope = Envelope.wrap(
                event,
                source=str(item.get("source") or "ingest") if is_envelope else "ingest",
                merchant_id=merchant,
                subject=customer,
                id=event_id or _derived_id(merchant, model, data),
                time=at or datetime.now(UTC),
            )
        except ValueError as error:  # e.g. a time without its offset
            errors.append({"pointer": _pointer("events", index), "detail": f"invalid envelope: {error}"})
            continue
        envelopes.append(Ingestible(envelope, event))
    if wrong_merchant:
        raise _refused(403, "Forbidden", "forbidden", wrong_merchant)
    if errors:
        raise _refused(422, "Events are not valid", "validation-error", errors)
    return envelopes


def _most_specific(errors: list[Any]) -> list[Any]:
    """Pydantic reports a list whose item is invalid twice: at the item's field, and at the list as too
    short (the bad item did not count). The second says nothing new."""
    enclosing = {tuple(e["loc"][:n]) for e in errors for n in range(1, len(e["loc"]))}
    return [e for e in errors if tuple(e["loc"]) not in enclosing]


def _refused(status: int, title: str, type_: str, errors: list[dict[str, str]]) -> Problem:
    """A batch refused for its items: every item at fault by its pointer, the first one in the detail."""
    return Problem(
        status, title, f"{errors[0]['pointer']}: {errors[0]['detail']}", type_=type_, errors=errors
    )


# The events whose body says when they happened: two equal bodies are one event sent twice.
TIMED_BODIES = {OrderPaid, OrderRefunded, ProductFavorited, ProductViewed}


def _derived_id(merchant: str, model: type[Event], data: dict[str, Any]) -> UUID:
    """The id of an item sent without one. A body that carries its own time names it, so a retried batch
    is recognised; a profile update carries none, and the same values sent again later (a move back to
    an earlier city) are a new event, so it gets a fresh id and is never dropped (the request's
    `Idempotency-Key` makes its retry safe)."""
    if model in TIMED_BODIES:
        body = json.dumps(data, sort_keys=True)
        return uuid5(NAMESPACE_URL, f"meadow:ingest:{merchant}:{model.event_type}:{body}")
    return uuid4()


async def ingest(
    uow: SegmentsUnitOfWork,
    merchant: str,
    model: type[Event],
    ingestibles: list[Ingestible],
    items: list[dict[str, Any]],
) -> tuple[list[UUID], list[UUID]]:
    envelopes = [i.envelope for i in ingestibles]
    await _refuse_ids_of_other_merchants(uow, merchant, envelopes)
    digests = [_digest(i.event) for i in ingestibles]
    _refuse_ids_given_twice_with_other_bodies(envelopes, digests)
    refunds = [i.event for i in ingestibles if isinstance(i.event, OrderRefunded)]
    if refunds:
        await _refuse_refunds_of_other_customers(uow, merchant, refunds, items)
    first_of_id: dict[UUID, tuple[Envelope, bytes]] = {}
    for envelope, digest in zip(envelopes, digests, strict=True):
        first_of_id.setdefault(envelope.id, (envelope, digest))
    result = await uow.session.execute(
        text(
            """
            INSERT INTO ingested_events (merchant_id, event_id, body_digest)
            SELECT :merchant, u.event_id, u.digest
            FROM unnest(CAST(:ids AS uuid[]), CAST(:digests AS bytea[])) AS u(event_id, digest)
            ON CONFLICT DO NOTHING RETURNING event_id
            """
        ),
        {"merchant": merchant, "ids": list(first_of_id), "digests": [d for _, d in first_of_id.values()]},
    )
    fresh = {row[0] for row in result}
    await _refuse_ids_ingested_with_other_bodies(uow, merchant, envelopes, digests, fresh)
    unique = [e for e, _ in first_of_id.values()]
    accepted = [e for e in unique if e.id in fresh]
    uow.outbox.add_envelopes(accepted, model.topic)
    return [e.id for e in accepted], [e.id for e in unique if e.id not in fresh]


def _digest(event: Event) -> bytes:
    """Of the event's body alone (a retry may leave `time` out and have it filled in anew), without the
    fields left at their defaults, so a later contract's new optional field does not change it."""
    body = event.model_dump(mode="json", exclude_defaults=True)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()


def _refuse_ids_given_twice_with_other_bodies(envelopes: list[Envelope], digests: list[bytes]) -> None:
    first: dict[UUID, bytes] = {}
    errors = [
        {"pointer": _pointer("events", index, "id"), "detail": "an earlier item has this id and another body"}
        for index, (envelope, digest) in enumerate(zip(envelopes, digests, strict=True))
        if first.setdefault(envelope.id, digest) != digest
    ]
    if errors:
        raise _refused(409, "Event id in use", "conflict", errors)


async def _refuse_ids_ingested_with_other_bodies(
    uow: SegmentsUnitOfWork, merchant: str, envelopes: list[Envelope], digests: list[bytes], fresh: set[UUID]
) -> None:
    """An id ingested before is a retry only with the same body; with another, the second event would
    be dropped as a duplicate without a word. Rows from before digests were kept have none: a retry."""
    repeated = [e.id for e in envelopes if e.id not in fresh]
    if not repeated:
        return
    result = await uow.session.execute(
        text(
            "SELECT event_id, body_digest FROM ingested_events "
            "WHERE merchant_id = :merchant AND event_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"merchant": merchant, "ids": repeated},
    )
    stored: dict[UUID, bytes | None] = {row[0]: row[1] for row in result}
    errors = [
        {
            "pointer": _pointer("events", index, "id"),
            "detail": "this id was ingested before with another body",
        }
        for index, (envelope, digest) in enumerate(zip(envelopes, digests, strict=True))
        if envelope.id not in fresh and stored.get(envelope.id) not in (None, digest)
    ]
    if errors:
        raise _refused(409, "Event id in use", "conflict", errors)


async def _refuse_refunds_of_other_customers(
    uow: SegmentsUnitOfWork, merchant: str, refunds: list[OrderRefunded], items: list[dict[str, Any]]
) -> None:
    """The consumer would dead-letter a refund of another customer's order: refused here instead (a
    batch is of one event type, so refunds and items are index for index)."""
    owners = await uow.facts.customers_of_orders(merchant, [r.order_id for r in refunds])
    errors = [
        {
            "pointer": _pointer(*_data_path(items[index], index), "customer_id"),
            "detail": f"order {refund.order_id!r} is another customer's",
        }
        for index, refund in enumerate(refunds)
        if owners.get(refund.order_id, refund.customer_id) != refund.customer_id
    ]
    if errors:
        raise _refused(422, "Events are not valid", "validation-error", errors)


async def _refuse_ids_of_other_merchants(
    uow: SegmentsUnitOfWork, merchant: str, envelopes: list[Envelope]
) -> None:
    """An event id names one event everywhere (the outbox and every consumer's inbox key on it alone):
    one that another merchant's event already has would collide, or be dropped as a duplicate."""
    taken = set(
        (
            await uow.session.execute(
                text(
                    "SELECT event_id FROM ingested_events "
                    "WHERE event_id = ANY(CAST(:ids AS uuid[])) AND merchant_id <> :merchant"
                ),
                {"merchant": merchant, "ids": [e.id for e in envelopes]},
            )
        ).scalars()
    )
    if taken:
        errors = [
            {
                "pointer": _pointer("events", index, "id"),
                "detail": "this event id is another merchant's event",
            }
            for index, envelope in enumerate(envelopes)
            if envelope.id in taken
        ]
        raise _refused(409, "Event id in use", "conflict", errors)
