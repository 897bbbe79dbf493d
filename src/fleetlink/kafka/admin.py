"""Create the platform's Kafka topics as the contract declares them (idempotent)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

import msgspec
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic

from fleetlink.contracts.topics import KAFKA_TOPICS, KafkaTopicSpec
from fleetlink.errors import FleetlinkError

_quiet = logging.getLogger("fleetlink.kafka.admin")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class TopicInfo(msgspec.Struct, frozen=True):
    name: str
    partitions: int
    replication_factor: int
    cleanup_policy: str
    min_insync_replicas: str


def admin_client(client_config: Mapping[str, str]) -> AdminClient:
    return AdminClient({**client_config, "logger": _quiet})


def topic_settings(spec: KafkaTopicSpec) -> dict[str, str]:
    """Per-topic configs: compacted topics keep the latest record per key forever."""
    return {"cleanup.policy": "compact"} if spec.compacted else {"cleanup.policy": "delete"}


def ensure_topics(
    client_config: Mapping[str, str],
    *,
    partitions: int,
    replication_factor: int | None = None,
    specs: Iterable[KafkaTopicSpec] = KAFKA_TOPICS,
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    ``replication_factor=None`` takes the cluster's ``default.replication.factor``.
    """
    admin = admin_client(client_config)
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise FleetlinkError(f"Kafka did not answer: {exc.args[0]}") from None
    wanted = [
        NewTopic(
            str(spec.topic),
            num_partitions=partitions,
            replication_factor=-1 if replication_factor is None else replication_factor,
            config=topic_settings(spec),
        )
        for spec in specs
        if str(spec.topic) not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() != "TOPIC_ALREADY_EXISTS":  # a concurrent creator won the race
                raise FleetlinkError(f"creating topic {name} failed: {error.str()}") from None
        else:
            created.append(name)
    return created


def describe_topics(
    client_config: Mapping[str, str],
    specs: Iterable[KafkaTopicSpec] = KAFKA_TOPICS,
    timeout: float = 30.0,
) -> list[TopicInfo]:
    """Partitions, replication and the configs that matter, for the contract's topics that exist."""
    admin = admin_client(client_config)
    metadata = admin.list_topics(timeout=timeout)
    names = [str(spec.topic) for spec in specs if str(spec.topic) in metadata.topics]
    if not names:
        return []
    configs = topic_configs(admin, names, timeout)
    infos = []
    for name in names:
        partitions = metadata.topics[name].partitions
        infos.append(
            TopicInfo(
                name=name,
                partitions=len(partitions),
                replication_factor=min(len(p.replicas) for p in partitions.values()),
                cleanup_policy=configs[name]["cleanup.policy"].value,
                min_insync_replicas=configs[name]["min.insync.replicas"].value,
            )
        )
    return infos


def topic_configs(
    admin: AdminClient, names: Iterable[str], timeout: float = 30.0
) -> dict[str, dict[str, ConfigEntry]]:
    """Each topic's configs; waits for a topic the answering broker does not know yet.

    A topic just created is in the controller's metadata before every broker has it, and
    ``describe_configs`` goes to any broker.
    """
    deadline = time.monotonic() + timeout
    configs: dict[str, dict[str, ConfigEntry]] = {}
    pending = list(names)
    while pending:
        futures = admin.describe_configs([ConfigResource("topic", name) for name in pending])
        pending = []
        for resource, future in futures.items():
            try:
                configs[resource.name] = future.result(max(deadline - time.monotonic(), 0.1))
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
                if time.monotonic() >= deadline:
                    raise FleetlinkError(f"no broker knows topic {resource.name}") from None
                pending.append(resource.name)
        if pending:
            time.sleep(0.2)
    return configs
