"""Look up an event model by its type string and decode an envelope's data into it."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError, create_model

from .envelope import Envelope, Event
from .events import EVENT_MODELS

MODELS_BY_TYPE: dict[str, type[Event]] = {model.event_type: model for model in EVENT_MODELS}


class UnknownEventType(LookupError):
    pass


def model_for(event_type: str) -> type[Event]:
    try:
        return MODELS_BY_TYPE[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def decode(envelope: Envelope[Any]) -> Event:
    """Validate the envelope's data against its model; raises pydantic.ValidationError or UnknownEventType."""
    return model_for(envelope.type).model_validate(envelope.data)


def decode_envelope(raw: bytes) -> Envelope[Event]:
    """Parse and validate a message's envelope and its typed data in one pass over the JSON.

    About twice as fast as `Envelope.from_bytes` followed by `decode`, which builds the data as dicts
    first and validates them again. Raises UnknownEventType for a well-formed envelope of a type this
    build does not know, and pydantic.ValidationError for anything malformed.
    """
    try:
        envelope: Envelope[Event] = _typed_envelopes().validate_json(raw)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        if first["type"] != "union_tag_invalid" or first["loc"] != ():
            raise
        # A well-formed envelope of a type this build does not know is skipped, a malformed one is not.
        unknown = Envelope.model_validate(first["input"])
        raise UnknownEventType(unknown.type) from None
    return envelope


@cache
def _typed_envelopes() -> TypeAdapter[Envelope[Event]]:
    # One `Envelope[Model]` subclass per event type, told apart by the literal `type` field, so pydantic
    # picks the model from the tag instead of trying each.
    typed = tuple(
        create_model(
            f"{model.__name__}Envelope",
            __base__=Envelope[model],  # type: ignore[valid-type]
            type=(Literal[model.event_type], ...),  # type: ignore[arg-type]
        )
        for model in EVENT_MODELS
    )
    return TypeAdapter(Annotated[Union[typed], Field(discriminator="type")])  # type: ignore[arg-type]  # noqa: UP007
