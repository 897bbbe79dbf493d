"""No input stops the platform: on the real stack, with real processes.

Malformed MQTT messages go to the dead-letter topic and the next message flows; malformed Kafka
records in every topic a service reads are skipped and a command sent afterwards succeeds; an
input that kills its consumer (the test-only fault hook) gets the process restarted by its
supervisor and ends in the dead-letter topic as ``poison`` after the bounded attempts.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.runtime.watchdog import EXIT_THREAD_DIED
from fleetlink.contracts import headers as h
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.settings import Settings, dump_toml
from fleetlink.stack import LocalStack
from tests.support.commands import FINAL, command_platform
from tests.support.gateway import gateway_config, header, supervised_gateway
from tests.support.polling import eventually
from tests.support.stack import mqtt_client

MARK = "CRASH-ON-THIS"  # faults.crash_on: the thread handling an input holding it raises
LONE_SURROGATE = b"\xed\xa0\x80"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def telemetry(seq: int, **signals: object) -> bytes:
    return msgspec.json.encode({"ts": now_ms(), "seq": seq, "signals": signals})


def dead_letters(settings: Settings, topic: str) -> dict[str, list[bytes | None]]:
    """Payloads in the dead-letter topic, by reason."""
    found: dict[str, list[bytes | None]] = {}
    for record in read_topic(KafkaClients.of(settings), topic):
        reason = (header(record, h.DLQ_REASON) or b"?").decode()
        found.setdefault(reason, []).append(record.value())
    return found


def test_malformed_mqtt_messages_are_dead_letters_and_the_uplink_keeps_flowing(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config)
    vin = "PSNZZZ1JZXW000001"
    in_a_string = b'{"ts":1764000000000,"seq":1,"signals":{"Vehicle.X":"' + LONE_SURROGATE
    hostile = [
        ("invalid-utf8", in_a_string + b'"}}'),
        ("invalid-utf8", b"\xff\xfe{}"),
        ("empty", b""),
        ("not-json", b"{not json"),
        ("schema", b"[" * 5000),  # deep nesting: refused at its first level
        ("schema", b'{"ts":1e309,"seq":1,"signals":{}}'),
    ]
    with (
        supervised_gateway(config, workers=1) as supervisor,
        mqtt_client(stack_config, vin) as (client, _),
    ):
        for _reason, payload in hostile:
            client.publish(MqttTopic.telemetry(vin), payload, qos=1).wait_for_publish(10)
        client.publish(MqttTopic.telemetry(vin), telemetry(2), qos=1).wait_for_publish(10)

        def arrived() -> bool:
            return bool(read_topic(KafkaClients.of(settings), topics.telemetry))

        eventually(arrived, 30, "the valid message after the hostile ones")
        letters = dead_letters(settings, topics.dlq)
        assert supervisor.handles[0].restarts == 0  # nothing crashed
    for reason, payload in hostile:
        assert payload in letters.get(reason, []), (reason, sorted(letters))


def test_a_message_that_kills_the_worker_is_dead_lettered_as_poison_after_bounded_crashes(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config)
    runtime = settings.runtime.model_copy(update={"crash_on": MARK, "poison_after_crashes": 2})
    settings = settings.model_copy(update={"runtime": runtime})
    config.write_text(dump_toml(settings))
    vin = "PSNZZZ1JZXW000002"
    pill = telemetry(1, **{"Vehicle.Note": MARK})
    with (
        supervised_gateway(config, workers=1) as supervisor,
        mqtt_client(stack_config, vin) as (client, _),
    ):
        worker = supervisor.handles[0]
        first_pid = worker.pid
        client.publish(MqttTopic.telemetry(vin), pill, qos=1)
        crashed_at = time.monotonic()
        eventually(lambda: worker.pid != first_pid and worker.running, 10, "the first restart")
        restarted_in = time.monotonic() - crashed_at
        assert worker.last_exit == EXIT_THREAD_DIED  # the network thread died, the process left

        def poisoned() -> bool:
            return pill in dead_letters(settings, topics.dlq).get("poison", [])

        eventually(poisoned, 60, "the pill in the dead-letter topic")
        assert worker.restarts == 2  # the bound: it crashed twice, the third delivery is a letter
        client.publish(MqttTopic.telemetry(vin), telemetry(2), qos=1).wait_for_publish(10)
        eventually(
            lambda: bool(read_topic(KafkaClients.of(settings), topics.telemetry)),
            30,
            "the next message",
        )
        assert worker.restarts == 2
    print(f"first restart {restarted_in:.1f} s after the crash")


def test_bad_records_in_every_topic_a_service_reads_are_skipped_and_poison_is_bounded(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    runtime = {"crash_on": MARK, "poison_after_crashes": 2}
    with command_platform(tmp_path, stack_config, runtime=runtime) as platform:
        settings = platform.settings
        topics = settings.topic_map()
        vin = "PSNZZZ1JZXW000003"
        car = platform.start_car(vin)
        consumed = topics.names(
            (
                KafkaTopic.COMMANDS,
                KafkaTopic.COMMAND_DISPATCH,
                KafkaTopic.COMMAND_STATUS,
                KafkaTopic.GRANTS,
                KafkaTopic.AUDIT,
                KafkaTopic.PRESENCE,
                KafkaTopic.TELEMETRY,
                KafkaTopic.COMMAND_RESPONSES,
            )
        )
        wrong_shape = msgspec.json.encode({"ts": "yesterday", "status": 7, "command_id": []})
        bad: list[tuple[bytes | None, bytes | None]] = [
            (vin.encode(), b'{"command_id":"' + LONE_SURROGATE + b'","name":"honk"}'),
            (vin.encode(), b"this is not json"),
            (vin.encode(), wrong_shape),
            (vin.encode(), b""),
            (vin.encode(), None),  # a tombstone
            (None, b'{"status":"online","ts":1}'),  # no key
            (LONE_SURROGATE, b'{"status":"online","ts":1}'),  # a key that is not UTF-8
        ]
        producer = KafkaClients.of(settings).producer()
        for topic in consumed:
            for key, value in bad:
                producer.produce(topic, key=key, value=value)
        assert producer.flush(30) == 0
        time.sleep(2)  # let every consumer read them
        reply = platform.post(vin, name="flash")
        assert reply.status_code == 202, reply.text
        done = platform.wait_state(reply.json()["command_id"], FINAL, timeout=30)
        assert done["state"] == "succeeded"
        assert platform.supervisor.handles[0].restarts == 0
        assert all(handle.restarts == 0 for handle in platform.services.handles)

        # A command record that kills the downlink thread and the tracker each time they read it
        pill = msgspec.json.encode(
            {"command_id": "pill-1", "name": "flash", "issued_at": now_ms(), "actor": MARK}
            | {"expires_at": now_ms() + 600_000}
        )
        producer.produce(topics[KafkaTopic.COMMANDS], key=vin.encode(), value=pill)
        assert producer.flush(30) == 0

        def both_dead_lettered() -> bool:
            return len(dead_letters(settings, topics[KafkaTopic.DLQ]).get("poison", [])) >= 2

        eventually(both_dead_lettered, 80, "the pill dead-lettered by the downlink and the tracker")
        worker, tracker = platform.supervisor.handles[0], platform.service("tracker")
        assert worker.restarts == 2
        assert worker.last_exit == EXIT_THREAD_DIED
        assert tracker.restarts == 2
        assert tracker.last_exit == EXIT_THREAD_DIED
        platform.wait_api_ready()
        reply = platform.post(vin, name="honk")
        assert reply.status_code == 202, reply.text
        done = platform.wait_state(reply.json()["command_id"], FINAL, timeout=45)
        assert done["state"] == "succeeded"
        assert car.executor.executed == 2  # the pill never reached the car
        letters = [
            r
            for r in read_topic(KafkaClients.of(settings), topics[KafkaTopic.DLQ])
            if header(r, h.DLQ_REASON) == b"poison"
        ]
        assert {header(r, h.SOURCE_TOPIC) for r in letters} == {
            topics[KafkaTopic.COMMANDS].encode()
        }
        assert all(r.value() == pill for r in letters)
