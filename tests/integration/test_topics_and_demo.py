"""The contract's Kafka topics, and `fleetlink demo` as the README runs it (after a `kill -9`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from fleetlink.adapters.kafka.admin import describe_topics, ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts.topics import KAFKA_TOPICS, KafkaTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from tests.support.polling import eventually
from tests.support.processes import descendants, kill_9_and_wait
from tests.support.stack import REPO, processes_using, run_cli, stack_env, stack_settings


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


def kill_9_a_running_demo(env: dict[str, str], api_port: int, state_dir: Path) -> None:
    """Start ``fleetlink demo``, ``kill -9`` it once it runs: none of its processes (workers,
    tracker, API, simulator, Kafka, Mosquitto) may outlive it; its stale stack stays behind."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "fleetlink", "demo", "--vehicles", "5"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wanted = ("kafka", "mosquitto", " worker ", " tracker", " api", " simulate ")

    def all_running() -> bool:
        lines = list(descendants(demo.pid).values())
        return all(any(name in line for line in lines) for name in wanted)

    def api_answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    try:
        eventually(all_running, 60, "every process of the demo", interval=0.5)
        eventually(api_answers, 30, "an answer from the demo's API", interval=0.5)
    finally:
        left = kill_9_and_wait(demo, descendants(demo.pid))
    assert left == []
    assert processes_using(state_dir) == []
    assert (state_dir / "stack.json").exists()  # the stale stack the next demo finds


def test_demo_brings_up_the_stack_and_topics_then_cleans_up(tmp_path: Path) -> None:
    """As ``make demo`` runs it, after an earlier demo was killed with ``kill -9``: nothing of
    that one is left, and this one recovers its stale stack."""
    settings = stack_settings(tmp_path / "state")
    api_port = free_port_block(1)
    env = {
        **os.environ,
        **stack_env(settings),
        "FLEETLINK_GATEWAY__METRICS_PORT": str(free_port_block(1)),
        "FLEETLINK_API__PORT": str(api_port),
        "FLEETLINK_PAYMENTS__SIMULATOR__PORT": str(free_port_block(1)),
        # a child whose parent died waits at most this for a Kafka that died with it
        "FLEETLINK_RUNTIME__STOP_GRACE_S": "3",
    }
    kill_9_a_running_demo(env, api_port, tmp_path / "state")
    # a slow machine needs about 17 s from Kafka up to the API answering (12 processes
    # starting), and CI's 2 cores more: at 24 s a courier's command was once still on its way
    result = run_cli("demo", "--duration", "32", "--vehicles", "20", env=env)
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
    assert "/ui/#code=" in result.stdout  # the dashboard link that logs in once
    assert "succeeded" in result.stdout  # and the tracker saw a car carry one out
    assert "fleet tracking" in result.stdout  # the demo's geofence row
    assert "features on demand" in result.stdout  # the demo's shop
    assert "OTA campaign" in result.stdout  # the demo's rollout
    logs = sorted(p.name for p in (tmp_path / "state" / "logs").iterdir())
    assert logs == [
        "api.log",
        "app-fleet.log",
        "app-hazards.log",
        "app-maintenance.log",
        "app-parking.log",
        "campaigns.log",
        "kafka-1.log",
        "mosquitto.log",
        "payments.log",
        "purchases.log",
        "simulate.log",
        "tracker.log",
    ]
    for app in ("hazards", "parking"):
        log = (tmp_path / "state" / "logs" / f"app-{app}.log").read_text()
        assert '"msg": "app started"' in log
    purchases_log = (tmp_path / "state" / "logs" / "purchases.log").read_text()
    assert '"msg": "purchase processor started"' in purchases_log
    campaigns_log = (tmp_path / "state" / "logs" / "campaigns.log").read_text()
    assert '"msg": "campaign orchestrator started"' in campaigns_log
    # the simulated fleet ran and stopped cleanly: its summary is the last thing it wrote
    fleet_log = (tmp_path / "state" / "logs" / "simulate.log").read_text()
    assert '"vehicles": 20' in fleet_log
    assert not (tmp_path / "state" / "stack.json").exists()
    assert "Traceback" not in result.stderr
    assert processes_using(tmp_path / "state") == []
