"""Which events the membership service handles, and with which handler."""

from meadow_contracts import Topic
from meadow_runtime.consumer import HandlerRegistry

CONSUMED_TOPICS: tuple[str, ...] = tuple(t.value for t in (Topic.SEGMENTS, Topic.REWARDS,))

handlers = HandlerRegistry()
