"""Read a whole topic as it is now: from the beginning to the end of every partition."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, Message

from fleetlink.adapters.kafka.clients import KafkaClients, assign_from_start
from fleetlink.adapters.kafka.consume import take
from fleetlink.errors import FleetlinkError


def read_topic(clients: KafkaClients, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every record now in ``topic`` (a fresh consumer, no group offsets committed)."""
    consumer = clients.reader()
    try:
        if not assign_from_start(consumer, [topic]):
            raise FleetlinkError(f"Kafka does not list the partitions of {topic}")
        partitions = len(consumer.assignment())
        at_end: set[int] = set()
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise FleetlinkError(f"reading {topic} did not reach its end in {timeout} s")
            for message in take(consumer, 5000, 0.5):
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
