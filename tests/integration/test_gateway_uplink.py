"""The uplink gateway against the real stack: volume, headers, dead letters."""

from __future__ import annotations

import base64
import os
import time
from collections import Counter
from pathlib import Path

import msgspec
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.contracts import MqttTopic
from fleetlink.contracts import headers as h
from fleetlink.settings import Settings
from fleetlink.sim.flood import FloodPlan, flood, split_plans, vins_for
from fleetlink.stack import LocalStack
from tests.support.gateway import (
    REQUIRED_HEADERS,
    gateway_config,
    header,
    published_ids,
    supervised_gateway,
    wait_for_ids,
)
from tests.support.polling import eventually
from tests.support.stack import TEST_PROXY, flood_brokers, mqtt_client


def test_100k_messages_from_1000_vins_reach_kafka_keyed_with_headers(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=2)
    brokers = flood_brokers(stack_config, 4)
    vins = vins_for(1000)
    valid_plans = split_plans(brokers[:3], vins, messages_per_vin=100)
    bad_plan = FloodPlan(
        broker=brokers[3], vins=vins_for(5, "BAD"), messages_per_vin=100, malformed_every=1
    )
    with supervised_gateway(config, workers=2):
        results = flood([*valid_plans, bad_plan], timeout=300)
        published = published_ids(results[:-1])
        assert len(published) == 100_000
        arrival = wait_for_ids(settings.kafka_bootstrap_servers(), topics.telemetry, published)

    missing = published - arrival.ids
    assert not missing, f"{len(missing)} of {len(published)} messages are not in Kafka"
    print(
        f"100,000 published from 1,000 VINs; {len(arrival.ids)} distinct in {topics.telemetry}, "
        f"{arrival.duplicates} duplicates"
    )
    for record in arrival.records:
        vin = record.key().decode()
        assert header(record, h.MESSAGE_ID).decode().startswith(vin + "-")
        assert header(record, h.MQTT_TOPIC) == f"vehicles/{vin}/telemetry".encode()
        for name in REQUIRED_HEADERS:
            assert header(record, name) is not None, name
        body = msgspec.json.decode(record.value())
        assert header(record, h.EVENT_TIME) == str(body["ts"]).encode()

    letters = read_topic(KafkaClients.of(settings), topics.dlq)
    reasons = Counter(header(r, h.DLQ_REASON).decode() for r in letters)
    expected = Counter(results[-1].malformed)
    assert sum(expected.values()) == 500
    # the same messages, possibly more than once (at-least-once), never fewer
    by_id = {header(r, h.MESSAGE_ID): r for r in letters}
    distinct = Counter(header(r, h.DLQ_REASON).decode() for r in by_id.values())
    assert distinct == expected, (distinct, expected)
    assert set(reasons) == set(expected)
    assert all(r.value() for r in letters)  # raw bytes kept
    print(f"dead letters by reason: {dict(distinct)}")


def test_backlog_is_flagged_late_and_fresh_data_is_not(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    """A vehicle flushing its tunnel backlog (old ts, resent) beside another sending live data."""
    config, settings, topics = gateway_config(tmp_path, stack_config)
    tunnel, live = "WVWZZZ1JZXW000101", "WVWZZZ1JZXW000102"
    now = time.time_ns() // 1_000_000
    with (
        supervised_gateway(config, workers=1),
        mqtt_client(stack_config, f"{TEST_PROXY}-0") as (client, _),
    ):
        infos = []
        for seq in range(2000):
            backlog = {"ts": now - 600_000 + seq, "seq": seq, "signals": {}, "resent": True}
            infos.append(
                client.publish(MqttTopic.telemetry(tunnel), msgspec.json.encode(backlog), qos=1)
            )
            if seq % 10 == 0:
                fresh = {"ts": time.time_ns() // 1_000_000, "seq": seq, "signals": {}}
                infos.append(
                    client.publish(MqttTopic.telemetry(live), msgspec.json.encode(fresh), qos=1)
                )
        for info in infos:
            info.wait_for_publish(30)
        expected = {f"{tunnel}-{seq}-{now - 600_000 + seq}" for seq in range(2000)}
        arrival = wait_for_ids(settings.kafka_bootstrap_servers(), topics.telemetry, expected)
    assert expected <= arrival.ids
    late = [r for r in arrival.records if header(r, h.LATE) == b"1"]
    assert {r.key().decode() for r in late} == {tunnel}
    assert len({header(r, h.MESSAGE_ID) for r in late}) == 2000
    fresh_records = [r for r in arrival.records if r.key().decode() == live]
    assert len(fresh_records) >= 200
    assert all(header(r, h.LATE) is None for r in fresh_records)


def test_a_record_kafka_refuses_becomes_a_dead_letter(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    """Valid for the gateway, too large for the topic (max.message.bytes): DLQ, acked, not lost."""
    config, settings, topics = gateway_config(tmp_path, stack_config)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers()})
    limit = ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", topics.events, incremental_configs=[limit])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)

    def limit_in_force() -> bool:  # the broker applies a topic's new config a moment later
        [described] = admin.describe_configs([ConfigResource("topic", topics.events)]).values()
        return described.result(10)["max.message.bytes"].value == "2000"

    eventually(limit_in_force, 30, "the topic's new size limit", interval=0.2)
    vin = "WVWZZZ1JZXW000103"
    now = time.time_ns() // 1_000_000
    noise = base64.b64encode(os.urandom(4000)).decode()  # lz4 cannot shrink it under the limit
    big = msgspec.json.encode({"ts": now, "seq": 1, "data": {"blob": noise}})
    small = msgspec.json.encode({"ts": now, "seq": 2, "data": {}})
    with (
        supervised_gateway(config, workers=1),
        mqtt_client(stack_config, vin) as (client, _),
    ):
        client.publish(MqttTopic.event(vin, "dtc"), big, qos=1).wait_for_publish(10)
        time.sleep(1)  # its own Kafka batch: a refused batch takes its neighbours with it
        client.publish(MqttTopic.event(vin, "dtc"), small, qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 30
        letters: list = []  # type: ignore[type-arg]
        while not letters and time.monotonic() < deadline:
            letters = read_topic(KafkaClients.of(settings), topics.dlq)
            time.sleep(0.5)
        events = read_topic(KafkaClients.of(settings), topics.events)
    assert [header(r, h.DLQ_REASON) for r in letters] == [b"kafka-rejected"]
    assert letters[0].value() == big
    assert [r.value() for r in events] == [small]
