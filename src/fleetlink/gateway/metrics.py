"""Prometheus metrics of one gateway worker (served by ``adapters.runtime.health``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60)


class GatewayMetrics:
    """Counters per mapping rule; label children are cached (this is the hot path)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "fleetlink_gateway_received", "Messages received", ["mapping"], registry=r
        )
        self.produced = Counter(
            "fleetlink_gateway_produced", "Records Kafka acknowledged", ["mapping"], registry=r
        )
        self.acked = Counter("fleetlink_gateway_acked", "PUBACKs sent to the broker", registry=r)
        self.dlq = Counter(
            "fleetlink_gateway_dlq", "Dead letters by reason", ["reason"], registry=r
        )
        self.skipped = Counter(
            "fleetlink_gateway_skipped",
            "Kafka records the downlink could not read, by topic and reason",
            ["topic", "reason"],
            registry=r,
        )
        self.late = Counter(
            "fleetlink_gateway_late", "Messages flagged late", ["mapping"], registry=r
        )
        self.kafka_errors = Counter(
            "fleetlink_gateway_kafka_errors",
            "Failed Kafka deliveries by error",
            ["error"],
            registry=r,
        )
        self.inflight = Gauge(
            "fleetlink_gateway_inflight", "Messages received, not yet acknowledged", registry=r
        )
        self.mqtt_connected = Gauge(
            "fleetlink_gateway_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.kafka_up = Gauge(
            "fleetlink_gateway_kafka_up", "0 after Kafka reported all brokers down", registry=r
        )
        self.delivery_seconds = Histogram(
            "fleetlink_gateway_kafka_delivery_seconds",
            "From MQTT receipt to the Kafka delivery report",
            ["mapping"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.confirmations = Counter(
            "fleetlink_gateway_confirmations",
            "Delivered messages sent to cars (vehicles/{vin}/delivered)",
            registry=r,
        )
        self.confirmed = Counter(
            "fleetlink_gateway_confirmed",
            "Uplink messages confirmed to their car as durably in Kafka",
            registry=r,
        )
        self.confirm_seconds = Histogram(
            "fleetlink_gateway_confirm_seconds",
            "From MQTT receipt to the confirmation sent to the car (oldest of a batch)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.sessions_lost = Counter(
            "fleetlink_gateway_sessions_lost",
            "Reconnects where the broker no longer had this worker's session",
            registry=r,
        )
        self._children: dict[tuple[str, str], Any] = {}

    def child(self, metric: str, label: str) -> Any:
        key = (metric, label)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = getattr(self, metric).labels(label)
        return found


class Tally:
    """Per-message counts as plain ints (the hot path), added to a Prometheus counter on flush.

    Written by one thread; ``flush`` may run in another: ``list(dict.items())`` is one atomic
    snapshot under the GIL, and only the difference since the last flush is added.
    """

    def __init__(self, counter: Counter) -> None:
        self.counts: dict[str, int] = {}
        self._counter = counter
        self._flushed: dict[str, int] = {}

    def add(self, label: str, count: int = 1) -> None:
        counts = self.counts
        counts[label] = counts.get(label, 0) + count

    def flush(self) -> None:
        for label, total in list(self.counts.items()):
            delta = total - self._flushed.get(label, 0)
            if delta:
                child = self._counter.labels(label) if label else self._counter
                child.inc(delta)
                self._flushed[label] = total
