"""Read a whole topic as it is now: from the beginning to the end of every partition."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from fleetlink.errors import FleetlinkError


def reader_config(client: str | Mapping[str, str]) -> dict[str, Any]:
    """A whole-topic reader's consumer settings: over ``client``, the settings' Kafka client
    configuration (credentials and TLS included), or a bare bootstrap address (tests)."""
    base = {"bootstrap.servers": client} if isinstance(client, str) else dict(client)
    return base | {
        "group.id": f"fleetlink-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }


def read_topic(client: str | Mapping[str, str], topic: str, timeout: float = 60.0) -> list[Message]:
    """Every record now in ``topic`` (a fresh consumer, no group offsets committed)."""
    consumer = Consumer(reader_config(client))
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise FleetlinkError(f"reading {topic} did not reach its end in {timeout} s")
            for message in consumer.consume(num_messages=5000, timeout=0.5):
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise FleetlinkError(f"reading {topic} failed: {error.str()}")
        return records
    finally:
        consumer.close()
