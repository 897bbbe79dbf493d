"""Prometheus metrics every stream app exposes (``/metrics`` of its instance)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.settings import Settings


def app_group(settings: Settings, app: str) -> str:
    """The consumer group of an app (its instances share it), in the settings' topic prefix."""
    return f"{settings.topic_map().prefix}.{settings.apps.group_prefix}-{app}".lstrip(".")


class AppMetrics:
    def __init__(self, app: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.processed = Counter(
            "fleetlink_app_processed", "Records processed", ["app", "input"], registry=r
        )
        self.late = Counter("fleetlink_app_late", "Records too late to count", ["app"], registry=r)
        self.duplicates = Counter(
            "fleetlink_app_duplicates", "Records seen before (fl.msg_id)", ["app"], registry=r
        )
        self.dead_letters = Counter(
            "fleetlink_app_dead_letters", "Records sent to the DLQ", ["app", "reason"], registry=r
        )
        self.outputs = Counter(
            "fleetlink_app_outputs", "Records written", ["app", "kind"], registry=r
        )
        self.lag = Gauge(
            "fleetlink_app_lag", "Records behind the end of the inputs", ["app"], registry=r
        )
        self.app = app

    def count(self, counter: Counter, *label: str) -> None:
        counter.labels(self.app, *label).inc()


_MARKERS_PEEK_S = 2.0
_MARKERS_AT_MOST = 2  # a commit or abort marker per transaction left behind the last record


class LagProbe:
    """The consumer group's lag (end offsets minus committed) over its inputs and the
    repartition topics Quix Streams made for it, in a thread.

    An app that writes exactly once leaves a transaction's marker behind the last record of
    each repartition partition: an offset no consumer ever reads, so a group that has read
    everything stays one behind its end. A partition only that far behind is peeked at: when
    nothing readable is left, it is not behind.
    """

    def __init__(
        self, kafka: KafkaClients, group: str, topics: Iterable[str], metrics: AppMetrics
    ) -> None:
        self._group = group
        self._consumer = kafka.consumer(group, extra={"enable.partition.eof": False})
        self._peeker = kafka.reader("lag-peek")  # never commits: the group's offsets stay
        self._topics = list(topics)
        self._metrics = metrics
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """For a probe measured directly, never started as a thread."""
        self._consumer.close()
        self._peeker.close()

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            try:
                self._metrics.lag.labels(self._metrics.app).set(self.measure())
            except KafkaException:
                continue
        self.close()

    def measure(self) -> int:
        cluster = self._consumer.list_topics(timeout=5).topics
        repartition = f"repartition__{self._group}--"
        partitions = [
            TopicPartition(topic, partition)
            for topic, metadata in cluster.items()
            if topic in self._topics or topic.startswith(repartition)
            for partition in metadata.partitions
        ]
        lag = 0
        for committed in self._consumer.committed(partitions, timeout=5):
            _, high = self._consumer.get_watermark_offsets(committed, timeout=5, cached=False)
            behind = high - max(committed.offset, 0)
            if 0 < behind <= _MARKERS_AT_MOST and committed.offset >= 0:
                behind = 0 if self._markers_only(committed) else behind
            lag += behind
        return lag

    def _markers_only(self, committed: TopicPartition) -> bool:
        """Whether nothing a read_committed consumer could read is left after ``committed``."""
        self._peeker.assign([committed])
        try:
            deadline = time.monotonic() + _MARKERS_PEEK_S
            while time.monotonic() < deadline:
                message = self._peeker.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is None:
                    return False
                if error.code() == KafkaError._PARTITION_EOF:
                    return True
            return False
        finally:
            self._peeker.unassign()


def assigned_members(kafka: KafkaClients, group: str) -> int | None:
    """How many members of the consumer group hold partitions; None while Kafka cannot say
    (no group yet, its coordinator loading, no answer within 10 s)."""
    admin = kafka.admin()  # held until the answer came: a dropped client never answers
    try:
        described = admin.describe_consumer_groups([group])[group].result(10)
    except (KafkaException, TimeoutError):
        return None
    return len([m for m in described.members if m.assignment.topic_partitions])
