"""Which events the rewards service handles, and with which handler."""

from meadow_contracts import Topic
from meadow_runtime.consumer import HandlerRegistry

CONSUMED_TOPICS: tuple[str, ...] = tuple(t.value for t in (Topic.COMMERCE_ORDERS, Topic.CONTENT, Topic.MEMBERSHIP,))

handlers = HandlerRegistry()
