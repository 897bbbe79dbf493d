"""The one Kafka client factory: every producer, consumer and admin client of fleetlink.

A ``KafkaClients`` is built from one named cluster profile of the settings (address, SASL and
TLS options), so a client never connects to a cluster without its credentials. It also gives the
connection settings that Quix Streams apps use for the same cluster.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from fleetlink.adapters.kafka.delivery import AsyncDeliveries
from fleetlink.settings import DEFAULT_CLUSTER, Settings

_CONNECTION = ("bootstrap.", "security.", "sasl.", "ssl.")
_quiet = logging.getLogger("fleetlink.kafka.admin")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class KafkaClients:
    """Kafka clients of one cluster, each configured the platform's way."""

    def __init__(self, config: Mapping[str, str], cluster: str = DEFAULT_CLUSTER) -> None:
        self.cluster = cluster
        self._config = dict(config)

    @classmethod
    def of(cls, settings: Settings, cluster: str = DEFAULT_CLUSTER) -> KafkaClients:
        """The clients of the cluster profile ``cluster`` (``default``: the ``kafka`` section)."""
        return cls(settings.kafka_client_config(cluster), cluster)

    @classmethod
    def at(cls, bootstrap_servers: str) -> KafkaClients:
        """A cluster without security at this address: the local stack in tests and benchmarks."""
        return cls({"bootstrap.servers": bootstrap_servers})

    @property
    def config(self) -> dict[str, str]:
        """The connection settings every client of this cluster starts from (a copy)."""
        return dict(self._config)

    # producers ---------------------------------------------------------------------------------

    def reliable_producer_config(
        self,
        *,
        linger_ms: int = 5,
        compression: str = "lz4",
        message_timeout_ms: int = 0,
        queue_max_messages: int = 100_000,
    ) -> dict[str, Any]:
        """Idempotent, ``acks=all``; ``message_timeout_ms=0`` retries until Kafka is back."""
        return self._config | {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "compression.type": compression,
            "message.timeout.ms": message_timeout_ms,
            "queue.buffering.max.messages": queue_max_messages,
            "socket.nagle.disable": True,
        }

    def producer(
        self,
        *,
        log: logging.Logger | None = None,
        extra: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Producer:
        """A reliable producer (``options`` of ``reliable_producer_config``), ``extra``
        librdkafka settings over it."""
        config = self.reliable_producer_config(**options) | dict(extra or {})
        if log is not None:
            config["logger"] = log
        return Producer(config)

    def deliveries(self, *, log: logging.Logger | None = None, **options: Any) -> AsyncDeliveries:
        """A reliable producer for asyncio code: ``await produce(...)`` returns after the ack."""
        config = self.reliable_producer_config(**options)
        if log is not None:
            config["logger"] = log
        return AsyncDeliveries(config)

    # consumers ---------------------------------------------------------------------------------

    def consumer(
        self,
        group_id: str,
        *,
        log: logging.Logger | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Consumer:
        """A consumer of ``group_id`` that commits by hand, ``extra`` librdkafka settings over
        it."""
        config: dict[str, Any] = self._config | {"group.id": group_id, "enable.auto.commit": False}
        config |= dict(extra or {})
        if log is not None:
            config["logger"] = log
        return Consumer(config)

    def reader(self, name: str = "reader", *, log: logging.Logger | None = None) -> Consumer:
        """A consumer of a group of its own that never commits: for reading whole topics by
        assignment (``assign_from_start``), it reports the end of each partition."""
        group = f"fleetlink-{name}-{uuid.uuid4().hex}"
        return self.consumer(group, log=log, extra={"enable.partition.eof": True})

    # admin and apps ----------------------------------------------------------------------------

    def admin(self) -> AdminClient:
        return AdminClient(self._config | {"logger": _quiet})

    def quix_connection(self) -> dict[str, str]:
        """librdkafka settings for Quix Streams' ``ConnectionConfig.from_librdkafka_dict``: the
        same cluster and credentials (Quix sets client and group ids itself)."""
        return {key: value for key, value in self._config.items() if key.startswith(_CONNECTION)}

    def quix_tuning(self) -> dict[str, str]:
        """The rest of the cluster's settings (socket options), which Quix takes as the
        consumer's and producer's extra config."""
        return {
            key: value
            for key, value in self._config.items()
            if not key.startswith(_CONNECTION) and key != "client.id"
        }


def assign_from_start(consumer: Consumer, topics: Iterable[str], timeout: float = 10.0) -> bool:
    """Assign every partition of ``topics`` from its first record; False while Kafka cannot say
    which partitions there are (unreachable, or a topic not created yet)."""
    assignment = []
    try:
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
            if metadata.error is not None or not metadata.partitions:
                return False
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
    except KafkaException:
        return False
    consumer.assign(assignment)
    return True
