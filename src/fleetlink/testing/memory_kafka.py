"""Kafka in memory, for hermetic tests of the API and the read model: topics with partitions,
records keyed to a partition, a sink and sources that behave as the real adapters do (the
contract suite ``tests/integration/test_kafka_seams.py`` runs against both)."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetlink.adapters.kafka.delivery import Delivered, KafkaUnavailableError
from fleetlink.adapters.kafka.seams import PARTITION_EOF, Backbone, SourceRecord


@dataclass(frozen=True)
class MemoryRecord:
    """One record, with the accessors of confluent-kafka's ``Message``."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _headers: list[tuple[str, bytes]] = field(default_factory=list)
    _error: _EndOfPartition | None = None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._headers)

    def error(self) -> _EndOfPartition | None:
        return self._error


class _EndOfPartition:
    def code(self) -> int:
        return PARTITION_EOF

    def str(self) -> str:
        return "end of partition"


class MemoryKafka:
    """Topics in memory. ``available = False`` makes every write fail as Kafka being away does."""

    def __init__(self, partitions: int = 3) -> None:
        self._partitions = partitions
        self._topics: dict[str, list[list[MemoryRecord]]] = {}
        self._lock = threading.Condition()
        self.available = True

    def create(self, *topics: str) -> None:
        with self._lock:
            for topic in topics:
                self._topics.setdefault(topic, [[] for _ in range(self._partitions)])

    def append(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Delivered:
        with self._lock:
            if not self.available:
                raise KafkaUnavailableError("Kafka (in memory) is away")
            # a first write creates the topic, as Kafka's auto.create.topics.enable does
            partitions = self._topics.setdefault(topic, [[] for _ in range(self._partitions)])
            # the same key always lands in the same partition, as with Kafka's partitioner
            index = zlib.crc32(key) % len(partitions) if key is not None else 0
            log = partitions[index]
            record = MemoryRecord(topic, index, len(log), key, value, list(headers))
            log.append(record)
            self._lock.notify_all()
            return Delivered(topic, index, record.offset())

    def records(self, topic: str) -> list[MemoryRecord]:
        with self._lock:
            return [record for log in self._topics.get(topic, []) for record in log]

    def sink(self) -> MemorySink:
        return MemorySink(self)

    def backbone(self) -> Backbone:
        """The seams of a process (``create_app(settings, kafka.backbone())``) on these topics."""
        return Backbone(self.sink, self.source, lambda: self.available)

    def source(self) -> MemorySource:
        return MemorySource(self)

    def _read(
        self, positions: dict[tuple[str, int], int], at_end: set[tuple[str, int]], limit: int
    ) -> list[SourceRecord]:
        taken: list[SourceRecord] = []
        for (topic, index), position in positions.items():
            log = self._topics[topic][index]
            fresh = log[position : position + max(0, limit - len(taken))]
            taken.extend(fresh)
            positions[(topic, index)] = position + len(fresh)
            caught_up = positions[(topic, index)] == len(log)
            if fresh:
                at_end.discard((topic, index))
            if caught_up and (topic, index) not in at_end and len(taken) < limit:
                at_end.add((topic, index))
                taken.append(
                    MemoryRecord(topic, index, len(log), None, None, [], _EndOfPartition())
                )
        return taken


class MemorySink:
    """A ``RecordSink``: a write is durable at once (or fails while Kafka is away)."""

    def __init__(self, kafka: MemoryKafka) -> None:
        self._kafka = kafka

    async def produce(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Delivered:
        return self._kafka.append(topic, value, key, headers)

    def close(self, timeout: float = 5.0) -> None:
        return None


class MemorySource:
    """A ``RecordSource`` over the topics of a ``MemoryKafka``."""

    def __init__(self, kafka: MemoryKafka) -> None:
        self._kafka = kafka
        self._positions: dict[tuple[str, int], int] = {}
        self._at_end: set[tuple[str, int]] = set()

    def start(self, topics: Sequence[str], timeout: float = 2.0) -> list[tuple[str, int]] | None:
        with self._kafka._lock:
            if not self._kafka.available or any(t not in self._kafka._topics for t in topics):
                return None
            self._positions = {
                (topic, index): 0
                for topic in topics
                for index in range(len(self._kafka._topics[topic]))
            }
            self._at_end = set()
            return list(self._positions)

    def take(self, max_records: int, timeout: float) -> list[SourceRecord]:
        with self._kafka._lock:
            taken = self._kafka._read(self._positions, self._at_end, max_records)
            if not taken:
                self._kafka._lock.wait(timeout)
                taken = self._kafka._read(self._positions, self._at_end, max_records)
            return taken

    def close(self) -> None:
        self._positions = {}
