"""`--brokers 3`: a replicated cluster that keeps accepting acks=all writes with a broker gone."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fleetlink.adapters import runner
from fleetlink.adapters.kafka.admin import topic_configs
from fleetlink.stack import LocalStack
from tests.support.stack import consume, stack_settings


def produce(bootstrap: str, topic: str, values: list[str]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
        }
    )
    failures: list[object] = []
    for value in values:
        producer.produce(
            topic, key=value, value=value, on_delivery=lambda e, _m: e and failures.append(e)
        )
    assert producer.flush(45) == 0
    assert not failures, failures


def test_three_brokers_replicate_and_survive_losing_one(tmp_path: Path) -> None:
    stack = LocalStack(stack_settings(tmp_path / "state", brokers=3).stack)
    started = []
    try:
        state = stack.up()
        started = state.processes
        bootstrap = stack.bootstrap_servers()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert len(admin.list_topics(timeout=10).brokers) == 3

        topic = f"test.rf3.{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])[
            topic
        ].result(30)
        deadline = time.monotonic() + 30
        while topic not in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
            time.sleep(0.2)
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
        assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions)
        configs = topic_configs(admin, [topic])
        assert configs[topic]["min.insync.replicas"].value == "2"

        produce(bootstrap, topic, [f"before-{n}" for n in range(100)])
        stack.kill("kafka-3", signal.SIGKILL)  # kill -9 one broker
        killed = next(r for r in state.processes if r.name == "kafka-3")
        assert runner.wait_for_exit([killed], timeout=10)
        produce(bootstrap, topic, [f"after-{n}" for n in range(100)])  # ISR 2 >= min 2

        values = {r.value().decode() for r in consume(bootstrap, topic, expected=200)}
        assert values == {f"before-{n}" for n in range(100)} | {f"after-{n}" for n in range(100)}
    finally:
        stack.down()
    assert not any(runner.is_running(record) for record in started)
