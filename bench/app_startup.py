"""How long a stream app takes from its start to its first output: what a restart after a crash
costs, and what every app test waits for.

Starts a local stack, then ``--repeat`` times: a run's own topics (so Quix Streams creates its
internal ones, as at a first start) with one car's telemetry record already in them, ``fleetlink
app run fleet`` launched (the app with the most state: 24 changelog partitions on 6-partition
topics), and the seconds until its first vehicle state lands in ``fleet.vehicle-state``.
**Baseline, same run:** the same with ``apps.fetch_wait_s`` = 0.5 (librdkafka's
``fetch.wait.max.ms`` default): on every assignment Quix Streams asks each changelog partition's
offsets one at a time, each answer queued behind a fetch waiting at the broker.

    .venv/bin/python bench/app_startup.py --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import exit_cleanly_on_sigterm
from _quality import ROOT, console, on_a_stack, run_settings, save

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.polling import wait_until
from fleetlink.adapters.runner import stop_children
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Telemetry
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.settings import Settings

FLEET_TOPICS = (
    KafkaTopic.PRESENCE,
    KafkaTopic.VEHICLE_STATE,
    KafkaTopic.TRIPS,
    KafkaTopic.GEOFENCES,
    KafkaTopic.GEOFENCE_EVENTS,
)
VIN = "BNCH0000000000001"


def one_start(base: Settings, tmp: Path, fetch_wait_s: float) -> float:
    """Seconds from launching the fleet app to its first vehicle state."""
    apps = base.apps.model_copy(update={"fetch_wait_s": fetch_wait_s})
    settings, config = run_settings(base.model_copy(update={"apps": apps}), tmp, FLEET_TOPICS)
    kafka = KafkaClients.of(settings)
    topics = settings.topic_map()
    now = time.time_ns() // 1_000_000
    telemetry = Telemetry(ts=now, seq=1, signals={"Vehicle.Speed": 30.0})
    producer = kafka.producer(linger_ms=0)
    producer.produce(
        topics[KafkaTopic.TELEMETRY],
        encode(telemetry),
        VIN.encode(),
        headers=[
            (h.MESSAGE_ID, f"{VIN}-{now}".encode()),
            (h.MQTT_TOPIC, MqttTopic.telemetry(VIN).encode()),
        ],
    )
    producer.flush(10)
    log = (tmp / f"startup-{fetch_wait_s}-{now}.log").open("ab")
    argv = [sys.executable, "-m", "fleetlink", "--config", str(config), "app", "run", "fleet"]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        states = topics[KafkaTopic.VEHICLE_STATE]
        if not wait_until(lambda: bool(read_topic(kafka, states, timeout=2)), 120, interval=0.1):
            raise SystemExit(f"no vehicle state in 120 s (see {log.name})")
        return round(time.monotonic() - started, 2)
    finally:
        stop_children([process])
        log.close()


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []

    def runs(base: Settings, tmp: Path) -> None:
        for run in range(args.repeat):
            for wait_s in (0.05, 0.5):
                rows.append({"run": run, "fetch_wait_s": wait_s, "s": one_start(base, tmp, wait_s)})
                console.print(rows[-1])

    on_a_stack("fleetlink-st-", runs)
    summary = {
        f"fetch_wait_{w}": statistics.median(r["s"] for r in rows if r["fetch_wait_s"] == w)
        for w in (0.05, 0.5)
    }
    save(args, summary, rows)


if __name__ == "__main__":
    main()
