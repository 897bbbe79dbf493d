"""Read a whole topic as it is now: from the beginning to the end of every partition."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from fleetlink.errors import FleetlinkError


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every record now in ``topic`` (a fresh consumer, no group offsets committed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"fleetlink-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
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
