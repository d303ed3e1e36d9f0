"""Meadow's event contracts: the envelope, every event model and the topic names."""

from .envelope import Envelope, Event, new_event_id, utc_now
from .events import *  # noqa: F403 - the models are this package's public surface
from .events import EVENT_MODELS
from .registry import MODELS_BY_TYPE, UnknownEventType, decode, model_for
from .topics import ALL_TOPICS, Topic, dlq_topic

__all__ = [
    "ALL_TOPICS", "EVENT_MODELS", "MODELS_BY_TYPE", "Envelope", "Event", "Topic", "UnknownEventType",
    "decode", "dlq_topic", "model_for", "new_event_id", "utc_now",
]  # fmt: skip
