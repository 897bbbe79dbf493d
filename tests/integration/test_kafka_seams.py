"""One contract for the Kafka seams, passed by the real adapters and by the in-memory fakes: a
hermetic test on the fakes cannot rely on behaviour Kafka lacks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka.admin import NewTopic

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.seams import (
    PARTITION_EOF,
    KafkaSource,
    RecordSink,
    RecordSource,
    SourceRecord,
)
from fleetlink.testing.memory_kafka import MemoryKafka
from tests.support.polling import eventually

PARTITIONS = 3


@dataclass
class Seams:
    sink: RecordSink
    new_source: Callable[[], RecordSource]
    new_topic: Callable[[], str]


@pytest.fixture(params=["memory", "kafka"])
def seams(request: pytest.FixtureRequest) -> Iterator[Seams]:
    if request.param == "memory":
        memory = MemoryKafka(partitions=PARTITIONS)

        def memory_topic() -> str:
            name = f"seams.{uuid.uuid4().hex[:8]}"
            memory.create(name)
            return name

        yield Seams(memory.sink(), memory.source, memory_topic)
        return
    bootstrap: str = request.getfixturevalue("bootstrap_servers")
    kafka = KafkaClients.at(bootstrap)
    admin = kafka.admin()  # held: a future outlives no client

    def kafka_topic() -> str:
        name = f"seams.{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, PARTITIONS)])[name].result(30)
        return name

    sink = kafka.deliveries(linger_ms=1, message_timeout_ms=5000)
    yield Seams(sink, lambda: KafkaSource(kafka.reader("seams")), kafka_topic)
    sink.close()


def write(sink: RecordSink, topic: str, records: list[tuple[bytes, bytes]]) -> list[int]:
    async def produce_all() -> list[int]:
        return [(await sink.produce(topic, value, key, [])).partition for key, value in records]

    return asyncio.run(produce_all())


def read_until_caught_up(source: RecordSource, partitions: int) -> list[SourceRecord]:
    """Records until every partition has said it is caught up."""
    records: list[SourceRecord] = []
    caught_up: set[int] = set()

    def more() -> bool:
        for record in source.take(500, 0.2):
            error = record.error()
            if error is None:
                records.append(record)
            elif error.code() == PARTITION_EOF:
                caught_up.add(record.partition() or 0)
        return len(caught_up) == partitions

    eventually(more, 30, "every partition caught up", interval=0.01)
    return records


def test_records_come_back_in_order_per_key_and_each_partition_reports_its_end(
    seams: Seams,
) -> None:
    topic = seams.new_topic()
    written = [(f"car-{n % 5}".encode(), f"{n}".encode()) for n in range(40)]
    partitions = write(seams.sink, topic, written)
    by_key = {key: part for (key, _), part in zip(written, partitions, strict=True)}
    assert all(by_key[key] == part for (key, _), part in zip(written, partitions, strict=True))
    source = seams.new_source()
    try:
        assigned = source.start([topic], timeout=10)
        assert assigned is not None
        assert sorted(assigned) == [(topic, p) for p in range(PARTITIONS)]
        records = read_until_caught_up(source, PARTITIONS)
    finally:
        source.close()
    assert len(records) == len(written)
    for key in by_key:
        values = [r.value() for r in records if r.key() == key]
        assert values == [value for k, value in written if k == key]  # per key, in order
    assert all(r.topic() == topic and r.partition() == by_key[r.key() or b""] for r in records)


def test_a_source_follows_what_comes_after_it_caught_up(seams: Seams) -> None:
    topic = seams.new_topic()
    source = seams.new_source()
    try:
        assert source.start([topic], timeout=10) is not None
        assert read_until_caught_up(source, PARTITIONS) == []  # an empty topic ends at once
        write(seams.sink, topic, [(b"car-1", b"late")])
        again = read_until_caught_up(source, 1)  # its partition is caught up once more
    finally:
        source.close()
    assert [r.value() for r in again] == [b"late"]


def test_a_topic_cannot_be_read_before_it_exists_and_a_write_creates_it(seams: Seams) -> None:
    """The local stack's broker creates a topic on its first write (Kafka's default), so the
    fake does too; ``topics ensure`` and the test fixtures create them with the right settings."""
    missing = f"seams.missing.{uuid.uuid4().hex[:8]}"
    source = seams.new_source()
    try:
        assert source.start([missing], timeout=3) is None
    finally:
        source.close()
    write(seams.sink, missing, [(b"k", b"v")])
    source = seams.new_source()
    try:
        assigned = source.start([missing], timeout=10)
        assert assigned is not None
        records = read_until_caught_up(source, len(assigned))
    finally:
        source.close()
    assert [r.value() for r in records] == [b"v"]


def test_many_records_awaited_at_once_each_get_their_own_acknowledgement(seams: Seams) -> None:
    """The sink hands a round of delivery reports to the event loop in one call: each of
    300 records awaited together must still resolve, to its own offset."""
    topic = seams.new_topic()

    async def produce_together() -> list[tuple[int, int]]:
        writes = (seams.sink.produce(topic, f"{n}".encode(), b"one-key", []) for n in range(300))
        delivered = await asyncio.wait_for(asyncio.gather(*writes), 30)
        return [(d.partition, d.offset) for d in delivered]

    positions = asyncio.run(produce_together())
    assert len(set(positions)) == 300
    assert len({partition for partition, _ in positions}) == 1  # one key: one partition
    offsets = [offset for _, offset in positions]
    assert offsets == sorted(offsets)  # in the order they were written
