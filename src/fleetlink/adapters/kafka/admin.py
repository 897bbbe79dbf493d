"""Create the platform's Kafka topics as the contract declares them (idempotent)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import msgspec
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts.topics import PRODUCTION_TOPICS, KafkaTopic, KafkaTopicSpec, TopicMap
from fleetlink.errors import FleetlinkError


class TopicInfo(msgspec.Struct, frozen=True):
    name: str
    partitions: int
    replication_factor: int
    cleanup_policy: str
    min_insync_replicas: str


def topic_settings(spec: KafkaTopicSpec) -> dict[str, str]:
    """Per-topic configs: compacted topics keep the latest record per key forever."""
    settings = {"cleanup.policy": str(spec.cleanup)}
    if spec.retention_ms is not None:
        settings["retention.ms"] = str(spec.retention_ms)
    return settings


def ensure_topics(
    clients: KafkaClients,
    topics: TopicMap = PRODUCTION_TOPICS,
    *,
    partitions: int,
    replication_factor: int | None = None,
    only: Iterable[KafkaTopic] = KafkaTopic,
    timeout: float = 30.0,
) -> list[str]:
    """Create the contract's topics (``only`` some) that do not exist yet, as the contract
    declares them; return the names created.

    ``replication_factor=None`` takes the cluster's ``default.replication.factor``.
    """
    admin = clients.admin()
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise FleetlinkError(f"Kafka did not answer: {exc.args[0]}") from None
    wanted = [
        NewTopic(
            name,
            num_partitions=spec.partitions or partitions,
            replication_factor=-1 if replication_factor is None else replication_factor,
            config=topic_settings(spec),
        )
        for name, spec in topics.items(only)
        if name not in existing
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
    clients: KafkaClients,
    topics: TopicMap = PRODUCTION_TOPICS,
    timeout: float = 30.0,
) -> list[TopicInfo]:
    """Partitions, replication and the configs that matter, for the contract's topics that exist."""
    admin = clients.admin()
    metadata = admin.list_topics(timeout=timeout)
    names = [name for name in topics.names() if name in metadata.topics]
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
