"""Run real gateway workers against the real stack, each test on Kafka topics of its own."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.dedup import Deduplicator, message_id
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.runner import stop_children
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.contracts import headers as h
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings, dump_toml, load_settings
from fleetlink.sim.flood import FloodResult
from fleetlink.stack.ports import free_port_block
from fleetlink.testing.isolated import RUNNING_TOPICS, isolated_gateway_settings


@dataclass
class GatewayTopics:
    telemetry: str
    events: str
    presence: str
    responses: str
    dlq: str
    commands: str
    status: str


def gateway_config(
    tmp_path: Path,
    stack: Settings,
    *,
    workers: int = 1,
    mqtt: dict[str, object] | None = None,
) -> tuple[Path, Settings, GatewayTopics]:
    """A config file for a gateway with its own share group, client ids and Kafka topics
    (``mqtt``: settings of the ``[mqtt]`` section to change)."""
    run = f"t{uuid.uuid4().hex[:8]}"
    isolated = isolated_gateway_settings(
        stack, run, workers=workers, metrics_port=free_port_block(8)
    )
    gateway = isolated.gateway.model_copy(update={"drain_timeout_s": 20, "restart_backoff_s": 0.2})
    settings = isolated.model_copy(
        update={"gateway": gateway, "mqtt": isolated.mqtt.model_copy(update=mqtt or {})}
    )
    config = tmp_path / f"gateway-{run}.toml"
    config.write_text(dump_toml(settings))
    create_topics(settings)
    names = settings.topic_map()
    topics = GatewayTopics(
        telemetry=names[KafkaTopic.TELEMETRY],
        events=names[KafkaTopic.EVENTS],
        presence=names[KafkaTopic.PRESENCE],
        responses=names[KafkaTopic.COMMAND_RESPONSES],
        dlq=names[KafkaTopic.DLQ],
        commands=names[KafkaTopic.COMMANDS],
        status=names[KafkaTopic.COMMAND_STATUS],
    )
    return config, settings, topics


def create_topics(settings: Settings) -> list[str]:
    """The running platform's topics under ``settings``' names, as the contract declares them."""
    return ensure_topics(
        KafkaClients.of(settings), settings.topic_map(), partitions=6, only=RUNNING_TOPICS
    )


@contextmanager
def keep_running(supervisor: Supervisor, *, drain: bool = False) -> Iterator[Supervisor]:
    """Start the supervisor's processes and check them every 0.2 s (restarting what exits);
    on exit stop them all (``drain``: gateway workers leave their group) and make sure none is
    left."""
    stop = threading.Event()

    def keep_checking() -> None:
        while not stop.wait(0.2):
            supervisor.check()

    supervisor.start()
    checker = threading.Thread(target=keep_checking, daemon=True)
    checker.start()
    try:
        yield supervisor
    finally:
        stop.set()
        checker.join(5)
        supervisor.stop(drain=drain)
        assert all(not handle.running for handle in supervisor.handles)


@contextmanager
def supervised_gateway(config: Path, workers: int) -> Iterator[Supervisor]:
    """Workers under the real supervisor, checked every 0.2 s; drained and gone on exit."""
    settings = load_settings(config)
    ensure_worker_identities(settings, range(workers))
    supervisor = Supervisor.of_workers(
        lambda index: worker_argv(config, index, drain_on_exit=True),
        workers,
        backoff_s=settings.gateway.restart_backoff_s,
        stop_timeout_s=40,
        log=logging.getLogger("test.supervisor"),
    )
    with keep_running(supervisor, drain=True):
        wait_ready(settings, range(workers))
        yield supervisor


def start_worker(
    config: Path, index: int, *, drain_on_exit: bool = True
) -> subprocess.Popen[bytes]:
    """One worker without a supervisor (for tests that decide themselves when it comes back)."""
    ensure_worker_identities(load_settings(config), [index])
    return subprocess.Popen(worker_argv(config, index, drain_on_exit=drain_on_exit))


def wait_ready(settings: Settings, indexes: Iterable[int], timeout: float = 30) -> None:
    """Until every worker's /readyz says 200: connected, subscribed, Kafka reachable."""
    deadline = time.monotonic() + timeout
    for index in indexes:
        url = f"http://127.0.0.1:{settings.gateway.metrics_port + index}/readyz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"worker {index} not ready in {timeout} s"
            time.sleep(0.1)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    stop_children([worker], timeout=40)


@dataclass
class Arrival:
    ids: set[str]
    duplicates: int
    records: list  # type: ignore[type-arg]


def wait_for_ids(bootstrap: str, topic: str, expected: set[str], timeout: float = 120) -> Arrival:
    """Read ``topic`` until every expected id is in it (or time runs out); count duplicates."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_topic(KafkaClients.at(bootstrap), topic)
        dedup = Deduplicator(capacity=10_000_000)
        seen: set[str] = set()
        for record in records:
            record_id = message_id(record.headers())
            assert record_id is not None, "record without fl.msg_id"
            if dedup.first_time(record_id):
                seen.add(record_id)
        if expected <= seen or time.monotonic() > deadline:
            return Arrival(ids=seen, duplicates=dedup.duplicates, records=records)
        time.sleep(2)


def published_ids(results: list[FloodResult]) -> set[str]:
    ids: set[str] = set()
    for result in results:
        ids.update(result.ids)
    return ids


def header(record: object, name: str) -> bytes | None:
    return header_value(record.headers(), name)  # type: ignore[attr-defined]


REQUIRED_HEADERS = (h.MESSAGE_ID, h.MQTT_TOPIC, h.QOS, h.EVENT_TIME, h.INGEST_TIME, h.CONTENT_TYPE)
