"""Look up an event model by its type string and decode an envelope's data into it."""

from __future__ import annotations

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


def decode(envelope: Envelope) -> Event:
    """Validate the envelope's data against its model; raises pydantic.ValidationError or UnknownEventType."""
    return model_for(envelope.type).model_validate(envelope.data)
