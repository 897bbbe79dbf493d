"""Stream-app benchmark: the apps' throughput per instance (hazards, fleet tracking) and the
hazards app's hazard latency.

Starts a local stack (Kafka 4.1 KRaft + Mosquitto 2.0, mutual TLS) and measures, in one run:

1. Throughput (``--events`` per run): ``fleet.events`` of a run's own topic set is pre-filled
   with a realistic mix of events as the gateway writes them (key VIN, provenance headers;
   mostly parking gaps, DTCs and harsh accelerations, plus harsh braking, ABS/ESC, hazard
   lights and a few crashes, from many VINs, hazard reports clustered at hotspots), with
   ``--telemetry`` records on ``fleet.telemetry`` too in the ``passes`` mode (the app reads
   telemetry for cars passing a hazard when ``clear_after_passes`` > 0). Then one
   ``fleetlink app run hazards`` process starts and the time from its consumer group's
   assignment until the group has committed to the end of its inputs (and of its repartition
   topic) gives records/s. Mode ``no-passes`` sets ``clear_after_passes = 0`` (events only).
   Mode ``fleet`` runs fleet tracking (``fleetlink app run fleet``) over the same events and
   ``--telemetry`` records: every telemetry record is a car's state, every harsh event a count.
   Mode ``fleet-fences`` does the same with ``--fences`` geofences for every car (circles and
   squares of 100 m to 2 km over the area, a third with a dwell time) drawn before it starts.
   Baseline in the same run: a plain confluent-kafka consumer reads the same records to the end
   and decodes every value (msgspec JSON).
   The records are pre-filled with event times of the fill, and the app's ticks bring its clock
   to wall time: ``apps.grace_s`` is raised to 3600 s for this part, so every report counts (as
   it would live) instead of being dropped as late.

2. Latency (``--hazards`` per run): the gateway (``fleetlink gateway``: 1 worker, whose warnings
   thread publishes hazards), the hazards app and ``--vehicles`` simulated cars (``fleetlink
   simulate --mode kinematic``, telemetry every ``--interval`` s, their own events) run in the
   background. For each hazard, at a spot of its own far from the simulated fleet, K-1 cars (MQTT
   clients with car certificates) publish a harsh braking event, and ``--report-gap`` s later the
   K-th car publishes its own; latency runs from that K-th publish to the warning arriving at an
   approaching car (a client with a car certificate subscribed to ``geo/{cell}/warnings/+`` of
   the cells around the spot, as the agent does). Hazards start every ``--hazard-gap`` s (open
   loop). Baseline in the same run, interleaved with the hazards: bare MQTT publish -> receive
   (QoS 1) from a publisher to the same subscriber on the same broker. ``--latency-variants``
   runs the same app with other ``apps.poll_timeout_s`` values (``poll-1.0``: Quix's default).

Apps settings: ``--commit-interval`` (1 s) and ``--tick-interval`` (0.25 s), the defaults.

    .venv/bin/python bench/stream_apps.py --events 30000 --telemetry 15000 --hazards 30 \\
        --vehicles 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import exit_cleanly_on_sigterm, percentile
from _stream_common import PARTITIONS, ROOT, Latency, Throughput, console, rounded
from _stream_latency import latency_part
from _stream_throughput import Filler, baseline_read, delete_run_topics, throughput_run
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.runner import stop_children
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import stack_on_free_ports

# --- report --------------------------------------------------------------------------------------


def median_throughput(results: list[Throughput]) -> list[dict[str, Any]]:
    medians = []
    for mode in dict.fromkeys(r.mode for r in results):
        runs = [asdict(r) for r in results if r.mode == mode]
        row: dict[str, Any] = {"mode": mode, "runs": len(runs)}
        for name, value in runs[0].items():
            if isinstance(value, int | float) and name != "run":
                row[name] = statistics.median(run[name] for run in runs)
        medians.append(row)
    return medians


def median_latency(results: list[Latency]) -> list[dict[str, Any]]:
    """Per variant, the medians over its runs (and percentiles of all its runs pooled)."""
    variants = dict.fromkeys(r.variant for r in results)
    return [median_variant([r for r in results if r.variant == v]) for v in variants]


def median_variant(results: list[Latency]) -> dict[str, Any]:
    rows = [asdict(r) for r in results]
    names = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mqtt_p50_ms", "mqtt_p90_ms")
    names += ("mqtt_p99_ms", "mqtt_max_ms")
    medians: dict[str, Any] = {name: statistics.median(row[name] for row in rows) for name in names}
    pooled = [v for r in results for v in r.hazard_ms]
    pooled_mqtt = [v for r in results for v in r.mqtt_ms]
    medians |= {
        "variant": results[0].variant,
        "runs": len(results),
        "hazards": sum(r.hazards for r in results),
        "warned": sum(r.warned for r in results),
        "mqtt_sent": sum(r.mqtt_sent for r in results),
        "mqtt_received": sum(r.mqtt_received for r in results),
        "pooled_p50_ms": rounded(percentile(pooled, 0.5)),
        "pooled_p99_ms": rounded(percentile(pooled, 0.99)),
        "pooled_mqtt_p50_ms": rounded(percentile(pooled_mqtt, 0.5)),
        "pooled_mqtt_p99_ms": rounded(percentile(pooled_mqtt, 0.99)),
        "legs_p50_ms": {
            leg: statistics.median(r.legs_p50_ms[leg] for r in results)
            for leg in results[0].legs_p50_ms
        },
        "legs_p99_ms": {
            leg: statistics.median(r.legs_p99_ms[leg] for r in results)
            for leg in results[0].legs_p99_ms
        },
        "cpu_by_process": {
            role: rounded(statistics.median(r.cpu_by_process.get(role, 0.0) for r in results))
            for role in results[0].cpu_by_process
        },
    }
    return medians


def show(
    throughput: list[dict[str, Any]], latency: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    if throughput:
        table = Table(title=f"stream app throughput, medians, {meta['cpus']} cores, {meta['date']}")
        columns = ("mode", "runs", "records", "app_rate", "baseline_rate", "ratio")
        columns += ("app_us_per_record", "baseline_us_per_record", "app_s", "app_startup_s")
        for column in columns:
            table.add_column(column, justify="right")
        for row in throughput:
            table.add_row(
                *(f"{row[c]:,.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns)
            )
        console.print(table)
    if latency:
        table = Table(title="hazard latency (K-th report published -> warning at a car), medians")
        for column in ("path", "p50 ms", "p90 ms", "p99 ms", "max ms", "received"):
            table.add_column(column, justify="right")
        for row in latency:
            table.add_row(
                f"hazard, app {row['variant']}",
                *(str(row[n]) for n in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                f"{row['warned']} / {row['hazards']}",
            )
            table.add_row(
                "  bare MQTT (QoS 1), same runs",
                *(
                    str(row[n])
                    for n in ("mqtt_p50_ms", "mqtt_p90_ms", "mqtt_p99_ms", "mqtt_max_ms")
                ),
                f"{row['mqtt_received']} / {row['mqtt_sent']}",
            )
        console.print(table)
        for row in latency:
            console.print(
                f"{row['variant']}: pooled hazard p50/p99 {row['pooled_p50_ms']}/"
                f"{row['pooled_p99_ms']} ms, bare MQTT {row['pooled_mqtt_p50_ms']}/"
                f"{row['pooled_mqtt_p99_ms']} ms; legs p50 {row['legs_p50_ms']} p99 "
                f"{row['legs_p99_ms']}; CPU-s per run {row['cpu_by_process']}"
            )


def plot(
    throughput: list[dict[str, Any]],
    latency_runs: list[Latency],
    path: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    if throughput:
        modes = [row["mode"] for row in throughput]
        x = range(len(modes))
        axes[0].bar([i - 0.2 for i in x], [r["baseline_rate"] for r in throughput], 0.4,
                    label="plain consumer + JSON decode (baseline)")  # fmt: skip
        axes[0].bar([i + 0.2 for i in x], [r["app_rate"] for r in throughput], 0.4,
                    label="hazards app, 1 instance")  # fmt: skip
        for i, row in enumerate(throughput):
            label = f"{row['ratio']:.2%} of baseline"
            axes[0].annotate(label, (i + 0.2, row["app_rate"]), ha="center", va="bottom")
        axes[0].set_xticks(list(x), modes)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("records/s at saturation (median)")
        axes[0].legend(fontsize=8)
        axes[0].set_title("throughput per instance")
    if latency_runs:
        curves = [(sorted(v for r in latency_runs for v in r.mqtt_ms), "bare MQTT (QoS 1)")]
        for variant in dict.fromkeys(r.variant for r in latency_runs):
            values = sorted(v for r in latency_runs if r.variant == variant for v in r.hazard_ms)
            curves.append((values, f"hazard warning, app {variant}"))
        for values, label in curves:
            if values:
                axes[1].plot(
                    values, [(i + 1) / len(values) for i in range(len(values))], label=label
                )
        axes[1].axvline(1000, color="grey", linestyle="--", label="goal p99 1 s")
        axes[1].axvline(500, color="grey", linestyle=":", label="aim 500 ms")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("ms from the K-th car's publish (all runs pooled)")
        axes[1].set_ylabel("share of hazards")
        axes[1].legend(fontsize=7, loc="lower right")
        axes[1].set_title("latency, CDF")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--parts", default="throughput,latency")
    parser.add_argument("--events", type=int, default=30_000, help="events per throughput run")
    parser.add_argument(
        "--telemetry", type=int, default=15_000, help="telemetry records per 'passes' run"
    )
    parser.add_argument("--modes", default="passes,no-passes", help="throughput modes")
    parser.add_argument("--fences", type=int, default=1000, help="geofences ('fleet-fences')")
    parser.add_argument("--hazards", type=int, default=30, help="hazards per latency run")
    parser.add_argument("--hazard-gap", type=float, default=1.0, help="s between hazards")
    parser.add_argument(
        "--report-gap", type=float, default=1.0, help="s from the first K-1 reports to the K-th"
    )
    parser.add_argument("--wait", type=float, default=15.0, help="s to wait for late warnings")
    parser.add_argument("--vehicles", type=int, default=1000, help="simulated cars (latency)")
    parser.add_argument("--simulators", type=int, default=1, help="simulator processes")
    parser.add_argument("--interval", type=float, default=5.0, help="telemetry, s per car")
    parser.add_argument("--warmup", type=float, default=10.0, help="s before the latency runs")
    parser.add_argument(
        "--latency-variants",
        default="default,poll-1.0",
        help="the app as shipped; with apps.poll_timeout_s = S (poll-S; 1.0: Quix's default)",
    )
    parser.add_argument("--commit-interval", type=float, default=1.0, help="apps, s")
    parser.add_argument("--tick-interval", type=float, default=0.25, help="apps, s")
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians shown")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stream-apps.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "BENCHMARKS-stream-apps.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parts = args.parts.split(",")
    modes = args.modes.split(",")
    throughput: list[Throughput] = []
    latency: list[Latency] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleetlink-apps-") as tmp:
        workdir = Path(tmp)
        settings = load_settings(
            stack=stack_on_free_ports(workdir / "stack") | {"kafka_heap_mb": 1024},
            gateway={"metrics_port": 0},
            apps={
                "state_dir": workdir / "apps",
                "commit_interval_s": args.commit_interval,
                "tick_interval_s": args.tick_interval,
                "metrics_port": 0,
            },
        )
        stack = LocalStack(settings.stack)
        children: list[subprocess.Popen[bytes]] = []
        supervisors: list[Supervisor] = []
        try:
            with console.status("starting the stack"):
                stack.up()
            if "throughput" in parts:
                with console.status("warming Kafka up"):
                    warm_up(settings)
                for run in range(args.repeat):
                    for mode in modes:
                        with console.status(f"throughput run {run + 1}: {mode}"):
                            throughput.append(
                                throughput_run(settings, workdir, mode, run, args, children)
                            )
            if "latency" in parts:
                latency = latency_part(settings, workdir, args, children, supervisors)
        finally:
            stop_children(children)
            for supervisor in supervisors:
                supervisor.stop(drain=True)
            stack.down()
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "minutes": rounded((time.monotonic() - began) / 60),
        "args": {k: str(v) for k, v in vars(args).items()},
        "apps": {
            "commit_interval_s": args.commit_interval,
            "tick_interval_s": args.tick_interval,
            "grace_s": "3600 (throughput), 10 (latency)",
        },
    }
    medians = median_throughput(throughput)
    latency_medians = median_latency(latency)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                **meta,
                "throughput_medians": medians,
                "latency_medians": latency_medians,
                "throughput_runs": [asdict(r) for r in throughput],
                "latency_runs": [asdict(r) for r in latency],
            },
            indent=2,
        )
    )
    show(medians, latency_medians, meta)
    title = f"hazards app, {meta['cpus']} cores, {meta['date']}, medians of {args.repeat}"
    plot(medians, latency, args.plot, title)
    console.print(f"wrote {args.out} and {args.plot} in {meta['minutes']} min")


def warm_up(settings: Settings) -> None:
    """A small fill and read first: Kafka's JIT compiler takes a core in its first minute."""
    run_id = f"warm{uuid.uuid4().hex[:6]}"
    topics = settings.topics.model_copy(
        update={"prefix": settings.topic_map().prefixed(run_id).prefix}
    )
    warm = settings.model_copy(update={"topics": topics})
    kafka = KafkaClients.of(warm)
    ensure_topics(kafka, warm.topic_map(), partitions=PARTITIONS, only=(KafkaTopic.EVENTS,))
    producer = kafka.producer(linger_ms=20)
    Filler(seed=99).events(producer, warm.topic_map()[KafkaTopic.EVENTS], 30_000)
    baseline_read(kafka, [warm.topic_map()[KafkaTopic.EVENTS]], 30_000)
    delete_run_topics(kafka, run_id)


if __name__ == "__main__":
    main()
