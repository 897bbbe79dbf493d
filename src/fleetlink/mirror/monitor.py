"""The replication monitor of one side: how far its cluster trails the other one, and records the
other side deleted before MirrorMaker 2 copied them.

It runs beside the MM2 process that writes into its cluster (``site``) and reads, locally, the
beats MM2 copied (``<source>.heartbeats``) and MM2's offsets topic (what it has copied from each
source partition); over the link, when it answers, the source's first and last offsets. It
keeps Prometheus gauges, and writes to ``fleet.replication-alerts`` when the lag passes its bound,
when it is back, and when records expired before they crossed (MM2 itself skips them silently).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec
from prometheus_client import CollectorRegistry, Counter, Gauge

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts.replication import ReplicationAlert, ReplicationAlertKind
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.mirror import HEARTBEATS, remote_heartbeats
from fleetlink.mirror.guard import Expired, LagAlarm, RetentionGuard, SourcePartition
from fleetlink.settings import Settings

_SOURCE_CONNECTOR = "MirrorSourceConnector"
_SOURCE_TIMEOUT_S = 1.0  # an unreachable source costs a check no more than this


def parse_offset(
    key: bytes | None, value: bytes | None, source: str
) -> tuple[SourcePartition, int] | None:
    """One record of MM2's offsets topic: the source partition and the last offset copied from
    it; None for anything else (another connector, another source, a tombstone)."""
    try:
        connector, partition = json.loads(key or b"")
        offset = json.loads(value or b"")["offset"]
        if connector != _SOURCE_CONNECTOR or partition["cluster"] != source:
            return None
        if str(partition["topic"]).endswith(HEARTBEATS):
            return None  # MM2's own beats: the lag probe, not data
        return SourcePartition(str(partition["topic"]), int(partition["partition"])), int(offset)
    except (ValueError, TypeError, KeyError):
        return None


class ReplicationMonitor:
    """Watches the flow into ``settings.site``'s cluster."""

    def __init__(
        self, settings: Settings, log: logging.Logger, registry: CollectorRegistry | None = None
    ) -> None:
        self.target = settings.here
        self.source = self.target.other
        self.flow = f"{self.source.value}->{self.target.value}"
        self.settings = settings
        self.log = log
        self.local = KafkaClients.of(settings)
        self.remote = KafkaClients.of(settings.remote_settings(self.source))
        self.alerts_topic = settings.topic_map()[KafkaTopic.REPLICATION_ALERTS]
        self.offsets_topic = settings.replication.offsets_topic.format(source=self.source.value)
        self.heartbeats = remote_heartbeats(self.source)
        self.guard = RetentionGuard()
        self.alarm = LagAlarm(settings.replication.lag_alert_s)
        self.newest_beat_ms: int | None = None
        self.lag_s: float | None = None
        self.pending: int | None = None
        self.expired: list[Expired] = []
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._lag = Gauge(
            "fleetlink_replication_lag_seconds",
            "Age of the newest heartbeat copied from the other side",
            ["flow"],
            registry=r,
        )
        self._pending = Gauge(
            "fleetlink_replication_pending_records",
            "Records at the source MM2 has not copied yet (as far as it has stored)",
            ["flow"],
            registry=r,
        )
        self._expired = Counter(
            "fleetlink_replication_expired_records",
            "Records deleted at the source before they crossed (lost)",
            ["flow", "topic"],
            registry=r,
        )
        self._reader = self.local.reader("replication-monitor")
        self._assigned: set[str] = set()
        self._producer = self.local.producer()
        self._source_admin = self.remote.admin()

    # one check --------------------------------------------------------------------------------

    def check(self, now: float | None = None) -> list[ReplicationAlert]:
        """Read what is new locally, ask the source, judge; the alerts written."""
        now = time.time() if now is None else now
        self._read_local()
        self.lag_s = (
            None if self.newest_beat_ms is None else max(0.0, now - self.newest_beat_ms / 1000)
        )
        alerts = []
        change = self.alarm.observe(self.lag_s, now)
        if change is not None:
            since = self.alarm.raised_since if change == "raised" else None
            alerts.append(
                ReplicationAlert(
                    flow=self.flow,
                    kind=ReplicationAlertKind.LAG,
                    state=change,
                    ts=int(now * 1000),
                    lag_s=round(self.lag_s or 0.0, 3),
                    since=None if since is None else int(since * 1000),
                )
            )
        firsts, ends = self._source_offsets(self.guard.partitions())
        if ends:
            self.pending = self.guard.pending(ends)
            self._pending.labels(self.flow).set(self.pending)
        for gone in self.guard.check(firsts):
            self.expired.append(gone)
            self._expired.labels(self.flow, gone.topic).inc(gone.count)
            alerts.append(
                ReplicationAlert(
                    flow=self.flow,
                    kind=ReplicationAlertKind.EXPIRED,
                    state="lost",
                    ts=int(now * 1000),
                    topic=gone.topic,
                    partition=gone.partition,
                    first=gone.first,
                    last=gone.last,
                    count=gone.count,
                )
            )
        if self.lag_s is not None:
            self._lag.labels(self.flow).set(self.lag_s)
        self._write(alerts)
        return alerts

    def _read_local(self) -> None:
        self._assign([self.offsets_topic, self.heartbeats])
        while records := self._reader.consume(num_messages=1000, timeout=0.05):
            for record in records:
                if record.error() is not None:
                    continue
                if record.topic() == self.heartbeats:
                    _, stamp = record.timestamp()
                    self.newest_beat_ms = max(self.newest_beat_ms or 0, stamp)
                else:
                    parsed = parse_offset(record.key(), record.value(), self.source.value)
                    if parsed is not None:
                        self.guard.copied(*parsed)

    def _assign(self, topics: Iterable[str]) -> None:
        """Follow each topic from its start once it exists (MM2 makes them when it starts)."""
        missing = [topic for topic in topics if topic not in self._assigned]
        if not missing:
            return
        try:
            listed = self._reader.list_topics(timeout=_SOURCE_TIMEOUT_S).topics
        except KafkaException:
            return
        fresh = []
        for topic in missing:
            metadata = listed.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                continue
            fresh += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
            self._assigned.add(topic)
        if fresh:
            self._reader.incremental_assign(fresh)

    def _source_offsets(
        self, partitions: list[SourcePartition]
    ) -> tuple[dict[SourcePartition, int], dict[SourcePartition, int]]:
        """First and end offsets at the source; empty when it does not answer in time."""
        if not partitions:
            return {}, {}

        def ask(spec: Any) -> dict[SourcePartition, int]:
            request = {TopicPartition(p.topic, p.partition): spec for p in partitions}
            futures = self._source_admin.list_offsets(request, request_timeout=_SOURCE_TIMEOUT_S)
            return {
                SourcePartition(tp.topic, tp.partition): future.result(_SOURCE_TIMEOUT_S).offset
                for tp, future in futures.items()
            }

        try:
            return ask(OffsetSpec.earliest()), ask(OffsetSpec.latest())
        except (KafkaException, TimeoutError, ValueError):
            return {}, {}

    def _write(self, alerts: list[ReplicationAlert]) -> None:
        for alert in alerts:
            level = logging.INFO if alert.state == "cleared" else logging.ERROR
            self.log.log(level, f"replication {alert.kind} {alert.state}", extra=_fields(alert))
            self._producer.produce(
                self.alerts_topic, key=self.flow.encode(), value=msgspec.json.encode(alert)
            )
        if alerts:
            self._producer.flush(10)

    # process ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.log.info("replication monitor started", extra={"flow": self.flow})
        try:
            while not stop.is_set():
                started = time.monotonic()
                self.check()
                stop.wait(
                    max(0.0, self.settings.replication.check_s - (time.monotonic() - started))
                )
        finally:
            self.close()

    def close(self) -> None:
        self._reader.close()
        self._producer.flush(10)


def _fields(alert: ReplicationAlert) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(alert).items() if v is not None}
