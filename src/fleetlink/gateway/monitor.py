"""Read a worker's counters from its /metrics endpoint (for the live status views)."""

from __future__ import annotations

import urllib.request

import msgspec
from prometheus_client.parser import text_string_to_metric_families


class WorkerStats(msgspec.Struct, frozen=True):
    received: float = 0
    produced: float = 0
    dlq: float = 0
    acked: float = 0
    inflight: float = 0
    connected: bool = False
    kafka_up: bool = False


def scrape(port: int, timeout: float = 0.5) -> WorkerStats | None:
    """The worker's totals, or None when its endpoint does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return WorkerStats(
        received=totals.get("fleetlink_gateway_received_total", 0),
        produced=totals.get("fleetlink_gateway_produced_total", 0),
        dlq=totals.get("fleetlink_gateway_dlq_total", 0),
        acked=totals.get("fleetlink_gateway_acked_total", 0),
        inflight=totals.get("fleetlink_gateway_inflight", 0),
        connected=totals.get("fleetlink_gateway_mqtt_connected", 0) > 0,
        kafka_up=totals.get("fleetlink_gateway_kafka_up", 0) > 0,
    )
