"""Take records from a consumer without waiting for a full batch."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, Message

from fleetlink.errors import FleetlinkError


def take(consumer: Consumer, max_messages: int, timeout: float) -> list[Message]:
    """Wait up to ``timeout`` for the first record, then take what is already fetched.

    ``Consumer.consume(n, timeout)`` of confluent-kafka 2.12 returns only when ``n`` records are
    there or the whole timeout has passed: at low rates every call would add ``timeout`` of
    latency to each command.
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    if max_messages <= 1:
        return [first]
    return [first, *consumer.consume(num_messages=max_messages - 1, timeout=0)]


class FatalConsumerError(FleetlinkError):
    """The consumer can do nothing more (e.g. fenced: another member took its static id)."""


def usable(messages: list[Message]) -> list[Message]:
    """The records among ``messages``; a fatal error ends the caller (its process restarts)."""
    for message in messages:
        error = message.error()
        if error is not None and is_fatal(error):
            raise FatalConsumerError(f"Kafka consumer: {error.str()}")
    return [message for message in messages if message.error() is None]


def is_fatal(error: KafkaError) -> bool:
    """librdkafka returns a consumer's fatal error (fenced by a member with the same static id,
    say) as a record with the code ``_FATAL``, whose ``fatal()`` says False."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL
