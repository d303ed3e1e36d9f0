from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from meadow_contracts import EVENT_MODELS, Envelope, OrderPaid, Topic, UnknownEventType, decode
from meadow_contracts.events import OrderLine
from meadow_contracts.schema_export import SCHEMA_DIR, render_schemas


def test_committed_schemas_match_the_models() -> None:
    rendered = render_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert committed.keys() == rendered.keys(), "run `make contracts` and commit contracts/schemas"
    stale = [name for name, text in rendered.items() if committed[name] != text]
    assert not stale, f"schemas differ from the models, run `make contracts`: {stale}"


def test_every_event_type_is_versioned_and_belongs_to_its_topic() -> None:
    types = [model.event_type for model in EVENT_MODELS]
    assert len(types) == len(set(types))
    for model in EVENT_MODELS:
        assert model.event_type.startswith(model.topic + ".")
        assert model.event_type.rsplit(".", 1)[1].startswith("v")
        assert model.topic in {t.value for t in Topic}


def _order() -> OrderPaid:
    return OrderPaid(
        order_id="o1",
        customer_id="c1",
        lines=(
            OrderLine(line_id="l1", product_id="p1", category="milk_powder", quantity=2, amount_minor=19900),
        ),
        paid_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def test_envelope_round_trips_through_bytes_and_decodes_to_the_model() -> None:
    envelope = Envelope.wrap(_order(), source="test", merchant_id="m1", subject="c1")
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert decode(again) == _order()
    assert again.key == "m1:c1"
    assert again.id.version == 7


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        _order().order_id = "other"  # type: ignore[misc]


def test_invalid_data_and_unknown_types_are_refused() -> None:
    bad = Envelope(
        type=OrderPaid.event_type, source="t", merchant_id="m1", subject="c1", data={"order_id": "o1"}
    )
    with pytest.raises(ValidationError):
        decode(bad)
    unknown = Envelope(
        type="commerce.orders.order_teleported.v1", source="t", merchant_id="m1", subject="c", data={}
    )
    with pytest.raises(UnknownEventType):
        decode(unknown)
