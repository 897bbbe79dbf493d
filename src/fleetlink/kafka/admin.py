"""Create the platform's Kafka topics as the contract declares them (idempotent)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import msgspec
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

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
    futures = admin.describe_configs([ConfigResource("topic", name) for name in names])
    configs = {resource.name: future.result(timeout) for resource, future in futures.items()}
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
