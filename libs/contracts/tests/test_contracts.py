from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from meadow_contracts import EVENT_MODELS, Envelope, OrderPaid, Topic, UnknownEventType, decode
from meadow_contracts.events import OrderLine
from meadow_contracts.registry import decode_envelope
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


def test_decode_envelope_parses_envelope_and_typed_data_in_one_pass() -> None:
    envelope = Envelope.wrap(_order(), source="test", merchant_id="m1", subject="c1")
    decoded = decode_envelope(envelope.to_bytes())
    assert isinstance(decoded, Envelope)
    assert decoded.data == _order()
    assert (decoded.id, decoded.type, decoded.time, decoded.key) == (
        envelope.id, envelope.type, envelope.time, envelope.key,
    )  # fmt: skip
    assert decoded.to_bytes() == envelope.to_bytes(), "re-encoding gives back the same message"


def test_decode_envelope_picks_the_model_of_every_event_type() -> None:
    for model in EVENT_MODELS:
        assert any(f.is_required() for f in model.model_fields.values()), "empty data must be refusable"
        raw = Envelope(type=model.event_type, source="t", merchant_id="m1", subject="c", data={}).to_bytes()
        with pytest.raises(ValidationError) as refused:
            decode_envelope(raw)
        locations = [error["loc"] for error in refused.value.errors()]
        assert all(loc[:2] == (model.event_type, "data") for loc in locations), locations


def test_decode_envelope_skips_unknown_types_but_refuses_malformed_envelopes() -> None:
    unknown = Envelope(
        type="commerce.orders.order_teleported.v1", source="t", merchant_id="m1", subject="c", data={}
    )
    with pytest.raises(UnknownEventType):
        decode_envelope(unknown.to_bytes())
    without_merchant = unknown.to_bytes().replace(b'"merchant_id":"m1",', b"")
    for malformed in (without_merchant, b'{"type": 5}', b"{}", b"not json"):
        with pytest.raises(ValidationError):
            decode_envelope(malformed)
    missing_customer = _order().model_dump(mode="json", exclude={"customer_id"})
    invalid = Envelope(
        type=OrderPaid.event_type, source="t", merchant_id="m1", subject="c", data=missing_customer
    )
    with pytest.raises(ValidationError, match="customer_id"):
        decode_envelope(invalid.to_bytes())
