"""The contract's Kafka topics, and `fleetlink demo` as the README runs it."""

from __future__ import annotations

import os
from pathlib import Path

from fleetlink.adapters.kafka.admin import describe_topics, ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts.topics import KAFKA_TOPICS, KafkaTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from tests.support.stack import processes_using, run_cli, stack_env, stack_settings


def test_ensure_topics_creates_the_contract_once(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    client = KafkaClients.of(stack_config)
    created = ensure_topics(client, partitions=4)
    assert sorted(created) == sorted(str(spec.topic) for spec in KAFKA_TOPICS)
    assert ensure_topics(client, partitions=4) == []  # idempotent

    infos = {info.name: info for info in describe_topics(client)}
    assert infos[KafkaTopic.ENTITLEMENTS].cleanup_policy == "compact"
    assert set(infos) == set(created)
    assert infos[KafkaTopic.PRESENCE].cleanup_policy == "compact"
    assert infos[KafkaTopic.COMMAND_STATUS].cleanup_policy == "compact"
    assert infos[KafkaTopic.TELEMETRY].cleanup_policy == "delete"
    assert all(info.partitions == 4 for info in infos.values())


def test_demo_brings_up_the_stack_and_topics_then_cleans_up(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path / "state")
    env = {
        **os.environ,
        **stack_env(settings),
        "FLEETLINK_GATEWAY__METRICS_PORT": str(free_port_block(1)),
        "FLEETLINK_API__PORT": str(free_port_block(1)),
    }
    result = run_cli("demo", "--duration", "16", "--vehicles", "20", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fleet.telemetry" in result.stdout
    assert "kafka-1" in result.stdout
    assert "fleetlink gateway" in result.stdout  # the gateway's live table
    worker_log = result.stderr + result.stdout
    assert '"msg": "subscribed"' in worker_log  # a worker connected and took its subscriptions
    assert '"msg": "gateway worker stopped"' in worker_log  # and stopped cleanly at the end
    assert "Demo ended; stopped 2 process(es)." in result.stdout
    assert "remote commands" in result.stdout
    assert "HTTP 202" in result.stdout  # the demo courier sent a command through the REST API
    assert "succeeded" in result.stdout  # and the tracker saw a car carry one out
    logs = sorted(p.name for p in (tmp_path / "state" / "logs").iterdir())
    assert logs == ["api.log", "kafka-1.log", "mosquitto.log", "simulate.log", "tracker.log"]
    # the simulated fleet ran and stopped cleanly: its summary is the last thing it wrote
    fleet_log = (tmp_path / "state" / "logs" / "simulate.log").read_text()
    assert '"vehicles": 20' in fleet_log
    assert not (tmp_path / "state" / "stack.json").exists()
    assert "Traceback" not in result.stderr
    assert processes_using(tmp_path / "state") == []
