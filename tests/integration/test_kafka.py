"""Produce and consume through the real Kafka broker of the local stack."""

import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fleetlink.contracts import MqttTopic, Telemetry
from fleetlink.contracts.codec import decode, encode
from tests.support.stack import consume

VINS = [f"WVWZZZ1JZXW{n:06d}" for n in range(50)]


def test_kafka_produce_then_consume_keyed_records(bootstrap_servers: str) -> None:
    topic = f"test.telemetry.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result(30)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "zstd",
        }
    )
    delivered: list[str] = []

    def on_delivery(error: object, message: object) -> None:
        assert error is None, error
        delivered.append("ok")

    sent = {}
    for seq in range(1000):
        vin = VINS[seq % len(VINS)]
        telemetry = Telemetry(ts=1_764_000_000_000 + seq, seq=seq, signals={"Vehicle.Speed": seq})
        sent[(vin, seq)] = telemetry
        producer.produce(
            topic,
            key=vin,
            value=encode(telemetry),
            headers={"mqtt_topic": MqttTopic.telemetry(vin)},
            on_delivery=on_delivery,
        )
    assert producer.flush(30) == 0
    assert len(delivered) == 1000

    records = consume(bootstrap_servers, topic, expected=1000)
    received = {}
    partition_of_vin: dict[str, int] = {}
    for record in records:
        vin = record.key().decode()
        telemetry = decode(Telemetry, record.value())
        received[(vin, telemetry.seq)] = telemetry
        assert dict(record.headers())["mqtt_topic"] == MqttTopic.telemetry(vin).encode()
        # The VIN key keeps every vehicle on one partition, so its messages stay in order.
        assert partition_of_vin.setdefault(vin, record.partition()) == record.partition()
    assert received == sent
    print(f"produced and consumed {len(records)} records through Kafka at {bootstrap_servers}")
