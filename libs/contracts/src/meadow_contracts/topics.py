"""Kafka topic names: one per producing context, each with a dead-letter twin."""

from enum import StrEnum


class Topic(StrEnum):
    COMMERCE_ORDERS = "commerce.orders"
    COMMERCE_CUSTOMERS = "commerce.customers"
    MEMBERSHIP = "membership"
    CONTENT = "content"
    REWARDS = "rewards"
    SEGMENTS = "segments"

    @property
    def dlq(self) -> str:
        return dlq_topic(self.value)


DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


ALL_TOPICS: tuple[str, ...] = tuple(t.value for t in Topic) + tuple(t.dlq for t in Topic)
