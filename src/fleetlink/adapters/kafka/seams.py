"""What the API and the read model need from Kafka, as two small interfaces: a record sink
(write, learn when it is durable) and a record source (read topics from their beginning, hear
when each partition is caught up, then follow).

The real adapters are ``AsyncDeliveries`` and ``KafkaSource``; ``fleetlink.testing.memory_kafka``
holds in-memory ones for hermetic tests. One contract test suite
(``tests/integration/test_kafka_seams.py``) runs against both, so a hermetic test cannot lean on
behaviour Kafka lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from confluent_kafka import Consumer, KafkaError

from fleetlink.adapters.kafka.clients import assign_from_start
from fleetlink.adapters.kafka.consume import take
from fleetlink.adapters.kafka.delivery import Delivered


class RecordError(Protocol):
    def code(self) -> int: ...
    def str(self) -> str: ...


class SourceRecord(Protocol):
    """A record as read (confluent-kafka's ``Message`` has these methods)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes]] | None: ...
    def error(self) -> RecordError | None: ...


PARTITION_EOF: Final[int] = KafkaError._PARTITION_EOF  # "this partition is caught up"


class RecordSink(Protocol):
    async def produce(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Delivered:
        """Write one record; returns once it is durable, raises ``KafkaUnavailableError``."""
        ...

    def close(self, timeout: float = 5.0) -> None: ...


class RecordSource(Protocol):
    def start(self, topics: Sequence[str], timeout: float = 2.0) -> list[tuple[str, int]] | None:
        """Read every partition of ``topics`` from its first record; the partitions, or None
        while the topics cannot be listed (Kafka away, a topic not created yet)."""
        ...

    def take(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """Records in partition order; an ``error()`` with code ``PARTITION_EOF`` each time a
        partition is caught up."""
        ...

    def close(self) -> None: ...


class KafkaSource:
    """A ``RecordSource`` over a consumer of a group of its own that never commits."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def start(self, topics: Sequence[str], timeout: float = 2.0) -> list[tuple[str, int]] | None:
        if not assign_from_start(self._consumer, topics, timeout=timeout):
            return None
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    def take(self, max_records: int, timeout: float) -> list[SourceRecord]:
        return list(take(self._consumer, max_records, timeout))

    def close(self) -> None:
        self._consumer.close()


@dataclass(frozen=True)
class Backbone:
    """A process's Kafka through the seams: where it writes, where it reads, whether it answers."""

    sink: Callable[[], RecordSink]
    source: Callable[[], RecordSource]
    reachable: Callable[[], bool]
