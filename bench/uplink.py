"""Uplink benchmark: QoS 1 telemetry from MQTT publish to Kafka ack, against baselines.

Scenarios, all in one run on one local stack (Kafka 4.1 KRaft + Mosquitto 2.0):

- raw:      the same load generator, a plain paho subscriber that only acknowledges (the limit
            of MQTT delivery to one Python client on this machine);
- naive:    the common blog bridge: paho auto-ack, ``produce`` per message (acknowledges the
            broker before Kafka has the record, so a crash loses data);
- gateway:  fleetlink with 1 and with 2 workers (PUBACK only after the Kafka ack);
- gateway-1-confirm: 1 worker, the publishers stamp every message (fl-boot / fl-seq) as cars
            that keep messages until confirmed do, so the worker also sends the confirmations
            on vehicles/{vin}/delivered (counted from its metrics: downlink messages per
            uplink message).

For each: saturation throughput (N messages as fast as the generator sends them, counted at the
sink, zero-loss check by message id), CPU-seconds of the consumer side per message, and latency
p50/p99 at a fixed offered rate (publish time in the payload vs Kafka LogAppendTime, or vs the
subscriber's receive time for raw). Prints a table, writes JSON and a PNG plot.

    .venv/bin/python bench/uplink.py --messages 200000 --rate 4000 --duration 15
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec
from _common import cpu_seconds, exit_cleanly_on_sigterm, percentile
from confluent_kafka.admin import NewTopic
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.dedup import message_id
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.security.pki import Role
from fleetlink.settings import dump_toml, load_settings
from fleetlink.sim.flood import FloodBroker, flood, split_plans, vins_for
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from fleetlink.testing.isolated import isolated_gateway_settings

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    scenario: str
    messages: int
    delivered: int
    distinct: int
    throughput: float
    cpu_seconds: float
    msgs_per_cpu_second: float
    us_per_message: float
    latency_rate: float
    p50_ms: float
    p99_ms: float
    lost: int
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)


# --- sinks ---------------------------------------------------------------------------------------


RAW_SUBSCRIBER = r"""
import sys, time, json, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, out, expected = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ca, cert, key = sys.argv[4:7]
latencies, first, last, count = [], None, None, 0
done = threading.Event()
def on_message(client, userdata, message):
    global first, last, count
    now = time.time_ns() // 1_000_000
    first = first or now
    last = now
    count += 1
    payload = message.payload
    latencies.append(now - int(payload[6:payload.index(b",")]))
    if count >= expected:
        done.set()
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
client.on_message = on_message
client.on_connect = lambda c, *a: c.subscribe("vehicles/+/telemetry", qos=1)
client.connect("127.0.0.1", port)
client.loop_start()
print("ready", flush=True)
for line in sys.stdin:
    expected = int(line)
    count, first, last, latencies[:] = 0, None, None, []
    done.clear()
    done.wait(600)
    with open(out, "w") as f:
        json.dump({"count": count, "first": first, "last": last, "latencies": latencies}, f)
    print("done", flush=True)
"""

NAIVE_BRIDGE = r"""
import sys
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from confluent_kafka import Producer
port, bootstrap, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ca, cert, key = sys.argv[4:7]
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
def on_message(client, userdata, message):
    producer.produce(topic, message.payload, key=message.topic.split("/")[1])
    producer.poll(0)
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", protocol=mqtt.MQTTv5)
client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
client.on_message = on_message
client.on_connect = lambda c, *a: c.subscribe("vehicles/+/telemetry", qos=1)
client.connect("127.0.0.1", port)
print("ready", flush=True)
try:
    client.loop_forever()
finally:
    producer.flush(30)
"""


class Bench:
    def __init__(self, workdir: Path, processes: int) -> None:
        first = free_port_block(3)
        self.settings = load_settings(
            stack={
                "state_dir": workdir / "stack",
                "kafka_port": first,
                "controller_port": first + 1,
                "mqtt_port": first + 2,
                "kafka_heap_mb": 1024,
            }
        )
        self.stack = LocalStack(self.settings.stack)
        self.workdir = workdir
        self.port = self.settings.stack.mqtt_port
        self.bootstrap = self.settings.kafka_bootstrap_servers()
        self.processes = processes

    def publishers(self) -> list[FloodBroker]:
        """One proxy identity per publisher process (the broker allows one session each)."""
        names = [f"bench-publisher-{n}" for n in range(self.processes)]
        self.stack.access.ensure_services(names, Role.PROXY)
        return [FloodBroker.of(self.settings, name) for name in names]

    def monitor_files(self, name: str) -> list[str]:
        """CA, certificate and key of a read-only identity, for the sink subprocesses."""
        self.stack.access.ensure_services([name], Role.MONITOR)
        identity = self.stack.pki.identity(name)
        return [str(self.stack.pki.ca_file), str(identity.cert_file), str(identity.key_file)]

    def topic(self, name: str) -> str:
        topic = f"bench.{name}.{uuid.uuid4().hex[:6]}"
        admin = KafkaClients.at(self.bootstrap).admin()
        new = NewTopic(topic, 6, config={"message.timestamp.type": "LogAppendTime"})
        admin.create_topics([new])[topic].result(30)
        return topic

    def warm_up(self) -> None:
        """A few seconds of traffic first: producers fetch metadata and idempotence ids."""
        self.load("WRM", 3000, rate=1000)
        time.sleep(2)

    def load(
        self, prefix: str, messages: int, rate: float = 0.0, *, stamp: bool = False
    ) -> tuple[set[str], float]:
        vins = vins_for(1000, prefix)
        per_vin = max(1, messages // len(vins))
        plans = split_plans(self.publishers(), vins, per_vin, rate_per_s=rate, stamp=stamp)
        results = flood(plans, timeout=900)
        ids: set[str] = set()
        for result in results:
            ids.update(result.ids)
        elapsed = max(r.finished for r in results) - min(r.started for r in results)
        return ids, elapsed

    # Kafka sinks: count, ids and LogAppendTime latency -----------------------------------------

    def kafka_sink(
        self, topic: str, published: set[str], by_header: bool, timeout: float = 300
    ) -> tuple[int, set[str], list[float], float]:
        deadline = time.monotonic() + timeout
        while True:
            records = read_topic(KafkaClients.at(self.bootstrap), topic, timeout=120)
            ids = set()
            matched = 0
            latencies = []
            stamps = []
            for record in records:
                value = record.value()
                if by_header:
                    record_id = message_id(record.headers()) or ""
                else:
                    body = msgspec.json.decode(value)
                    record_id = f"{record.key().decode()}-{body['seq']}-{body['ts']}"
                if record_id not in published:
                    continue  # warm-up traffic
                ids.add(record_id)
                matched += 1
                stamp = record.timestamp()[1]
                stamps.append(stamp)
                latencies.append(stamp - int(value[6 : value.index(b",")]))
            if published <= ids or time.monotonic() > deadline:
                span = (max(stamps) - min(stamps)) / 1000 if stamps else float("nan")
                return matched, ids, latencies, span
            time.sleep(1)


def run_raw(bench: Bench, args: argparse.Namespace) -> Result:
    out = bench.workdir / "raw.json"
    subscriber = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RAW_SUBSCRIBER,
            str(bench.port),
            str(out),
            "0",
            *bench.monitor_files("bench-raw"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert subscriber.stdin
    assert subscriber.stdout
    assert subscriber.stdout.readline().strip() == "ready"
    time.sleep(1)
    try:

        def measure(prefix: str, messages: int, rate: float) -> tuple[dict, float, int]:  # type: ignore[type-arg]
            expected = max(1, messages // 1000) * 1000
            subscriber.stdin.write(f"{expected}\n")  # type: ignore[union-attr]
            subscriber.stdin.flush()  # type: ignore[union-attr]
            before = cpu_seconds([subscriber.pid])
            published, _ = bench.load(prefix, messages, rate)
            assert subscriber.stdout.readline().strip() == "done"  # type: ignore[union-attr]
            cpu = cpu_seconds([subscriber.pid]) - before
            return json.loads(out.read_text()), cpu, len(published)

        saturation, cpu, published = measure("SRW", args.messages, 0.0)
        fixed, _cpu, _n = measure("LRW", int(args.rate * args.duration), args.rate)
    finally:
        subscriber.terminate()
        subscriber.wait(10)
    span = (saturation["last"] - saturation["first"]) / 1000
    return Result(
        scenario="raw",
        messages=published,
        delivered=saturation["count"],
        distinct=saturation["count"],
        throughput=saturation["count"] / span,
        cpu_seconds=cpu,
        msgs_per_cpu_second=saturation["count"] / cpu,
        us_per_message=cpu / saturation["count"] * 1e6,
        latency_rate=args.rate,
        p50_ms=percentile(fixed["latencies"], 0.5),
        p99_ms=percentile(fixed["latencies"], 0.99),
        lost=published - saturation["count"],
        notes="MQTT only: no Kafka",
    )


def run_naive(bench: Bench, args: argparse.Namespace) -> Result:
    topics = [bench.topic("naive"), bench.topic("naive-lat")]
    results = []
    for topic in topics:
        bridge = subprocess.Popen(
            [
                sys.executable,
                "-c",
                NAIVE_BRIDGE,
                str(bench.port),
                bench.bootstrap,
                topic,
                *bench.monitor_files("bench-naive"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert bridge.stdout is not None
        assert bridge.stdout.readline().strip() == "ready"
        results.append(bridge)
        time.sleep(1)
        bench.warm_up()
        if topic == topics[0]:
            before = cpu_seconds([bridge.pid])
            published, _ = bench.load("SNV", args.messages)
            delivered, ids, _lat, span = bench.kafka_sink(topic, published, by_header=False)
            cpu = cpu_seconds([bridge.pid]) - before
        else:
            fixed, _ = bench.load("LNV", int(args.rate * args.duration), rate=args.rate)
            _n, _ids, latencies, _span = bench.kafka_sink(topic, fixed, by_header=False)
        bridge.terminate()
        bridge.wait(30)
    return Result(
        scenario="naive",
        messages=len(published),
        delivered=delivered,
        distinct=len(ids & published),
        throughput=len(published) / span,
        cpu_seconds=cpu,
        msgs_per_cpu_second=len(published) / cpu,
        us_per_message=cpu / len(published) * 1e6,
        latency_rate=args.rate,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        lost=len(published - ids),
        notes="acks the broker before Kafka has the record",
    )


def scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """Counters of one worker's /metrics (``name`` without the ``_total`` suffix)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        metric, _, value = line.partition(" ")
        if metric.endswith("_total") and metric[: -len("_total")] in found:
            found[metric[: -len("_total")]] += float(value)
    return found


def run_gateway(
    bench: Bench, workers: int, args: argparse.Namespace, *, confirm: bool = False
) -> Result:
    topics = []
    cpu_total = 0.0
    sat: dict[str, float] = {}
    counters = ("fleetlink_gateway_confirmations", "fleetlink_gateway_confirmed")
    confirmations: dict[str, float] = {}
    for phase in ("saturation", "latency"):
        topic = bench.topic(f"gw{workers}-{phase}")
        topics.append(topic)
        config = bench.workdir / f"gateway-{workers}-{phase}.toml"
        run = f"bench{workers}{phase[0]}{uuid.uuid4().hex[:4]}"
        metrics_port = free_port_block(8)
        isolated = isolated_gateway_settings(
            bench.settings,
            run,
            workers=workers,
            receive_maximum=args.receive_maximum,
            metrics_port=metrics_port,
        )
        telemetry = isolated.gateway.mappings[0].model_copy(update={"kafka_topic": topic})
        gateway = isolated.gateway.model_copy(update={"mappings": [telemetry]})
        config.write_text(dump_toml(isolated.model_copy(update={"gateway": gateway})))
        ensure_worker_identities(isolated, range(workers))
        supervisor = Supervisor.of_workers(
            lambda index, config=config: worker_argv(config, index, drain_on_exit=True),
            workers,
            backoff_s=0.5,
            stop_timeout_s=60,
            log=logging.getLogger("bench"),
        )
        supervisor.start()
        time.sleep(3)
        bench.warm_up()
        pids = [h.pid for h in supervisor.handles if h.pid]
        try:
            if phase == "saturation":
                before = cpu_seconds(pids)
                sent_before = [scrape(metrics_port + i, counters) for i in range(workers)]
                published, _ = bench.load(f"SG{workers}", args.messages, stamp=confirm)
                delivered, ids, _lat, span = bench.kafka_sink(topic, published, by_header=True)
                time.sleep(2 * bench.settings.gateway.confirm_interval_s)  # the last batch
                cpu_total = cpu_seconds(pids) - before
                for index, earlier in enumerate(sent_before):
                    now = scrape(metrics_port + index, counters)
                    for name in counters:
                        confirmations[name] = confirmations.get(name, 0.0) + now[name]
                        confirmations[name] -= earlier[name]
                sat = {
                    "messages": len(published),
                    "delivered": delivered,
                    "distinct": len(ids & published),
                    "throughput": len(published) / span,
                    "lost": len(published - ids),
                }
            else:
                before = cpu_seconds(pids)
                fixed, _ = bench.load(
                    f"LG{workers}", int(args.rate * args.duration), rate=args.rate, stamp=confirm
                )
                fixed_cpu = cpu_seconds(pids) - before
                _n, _ids, latencies, _span = bench.kafka_sink(topic, fixed, by_header=True)
        finally:
            supervisor.stop(drain=True)
    uplink = sat["messages"]
    return Result(
        scenario=f"gateway-{workers}w" + ("-confirm" if confirm else ""),
        messages=int(sat["messages"]),
        delivered=int(sat["delivered"]),
        distinct=int(sat["distinct"]),
        throughput=sat["throughput"],
        cpu_seconds=cpu_total,
        msgs_per_cpu_second=sat["messages"] / cpu_total,
        us_per_message=cpu_total / sat["messages"] * 1e6,
        latency_rate=args.rate,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        lost=int(sat["lost"]),
        notes="PUBACK after the Kafka ack (acks=all, idempotent)"
        + ("; stamped messages confirmed to the cars" if confirm else ""),
        extra={
            # the same offered load with and without confirmation: CPU per message compares
            "us_per_message_at_rate": fixed_cpu / max(1, len(fixed)) * 1e6,
            "downlink_per_uplink": confirmations.get(counters[0], 0.0) / uplink,
            "confirmed_share": confirmations.get(counters[1], 0.0) / uplink,
        },
    )


def plot(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.scenario for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].bar(names, [r.throughput for r in results], color="#3b7dd8")
    axes[0].set_title("saturation throughput (msgs/s)")
    axes[1].bar(names, [r.msgs_per_cpu_second for r in results], color="#5aa55a")
    axes[1].set_title("messages per CPU-second of the consumer side")
    x = range(len(results))
    axes[2].bar([i - 0.2 for i in x], [r.p50_ms for r in results], width=0.4, label="p50")
    axes[2].bar([i + 0.2 for i in x], [r.p99_ms for r in results], width=0.4, label="p99")
    axes[2].set_xticks(list(x), names)
    axes[2].set_title(
        f"latency (ms) at {results[0].latency_rate:.0f} msgs/s\n"
        "publish -> Kafka append (raw: -> subscriber)"
    )
    axes[2].legend()
    for ax in axes:
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000, help="saturation run size")
    parser.add_argument("--rate", type=float, default=4000, help="offered rate of the latency run")
    parser.add_argument("--duration", type=float, default=15, help="seconds of the latency run")
    parser.add_argument("--publishers", type=int, default=3, help="load generator processes")
    parser.add_argument("--receive-maximum", type=int, default=2000)
    parser.add_argument("--scenarios", default="raw,naive,gateway-1,gateway-2")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the report shows medians")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "uplink.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "BENCHMARKS-uplink.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    wanted = args.scenarios.split(",")
    runs: list[list[Result]] = []
    with tempfile.TemporaryDirectory(prefix="fleetlink-bench-") as tmp:
        bench = Bench(Path(tmp), args.publishers)
        try:
            with console.status("starting the stack"):
                bench.stack.up()
            with Progress(console=console) as progress:
                task = progress.add_task("scenarios", total=len(wanted) * args.repeat)
                for round_ in range(args.repeat):
                    results: list[Result] = []
                    for name in wanted:
                        progress.update(task, description=f"run {round_ + 1}: {name}")
                        if name == "raw":
                            results.append(run_raw(bench, args))
                        elif name == "naive":
                            results.append(run_naive(bench, args))
                        elif name.startswith("gateway-"):
                            workers = int(name.split("-")[1])
                            confirm = name.endswith("-confirm")
                            results.append(run_gateway(bench, workers, args, confirm=confirm))
                        progress.advance(task)
                    runs.append(results)
        finally:
            bench.stack.down()
    medians = [median_result([run[i] for run in runs]) for i in range(len(wanted))]
    raw = next((r for r in medians if r.scenario == "raw"), None)
    title = (
        f"uplink benchmark: medians of {args.repeat} run(s), {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    table = Table(title=title)
    columns = ["scenario", "msgs/s", "% of raw", "msgs/CPU-s", "us CPU/msg", "p50 ms", "p99 ms"]
    for column in [*columns, "lost (all runs)", "dups", "us/msg at rate", "down/up", "confirmed"]:
        table.add_column(column, justify="right")
    for r in medians:
        share = f"{100 * r.throughput / raw.throughput:.0f}%" if raw else "-"
        table.add_row(
            r.scenario,
            f"{r.throughput:,.0f}",
            share,
            f"{r.msgs_per_cpu_second:,.0f}",
            f"{r.us_per_message:.0f}",
            f"{r.p50_ms:.0f}",
            f"{r.p99_ms:.0f}",
            str(r.lost),
            str(r.delivered - r.distinct),
            extra(r, "us_per_message_at_rate", "{:.0f}"),
            extra(r, "downlink_per_uplink", "{:.3f}"),
            extra(r, "confirmed_share", "{:.1%}"),
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "medians": [asdict(r) for r in medians],
        "runs": [[asdict(r) for r in run] for run in runs],
    }
    args.out.write_text(json.dumps(meta, indent=2))
    plot(medians, args.plot, f"fleetlink uplink, {os.cpu_count()} cores, {meta['date']}")
    console.print(f"wrote {args.out} and {args.plot}")


def extra(result: Result, key: str, spec: str) -> str:
    return spec.format(result.extra[key]) if key in result.extra else "-"


def median_result(results: list[Result]) -> Result:
    """Per-metric medians of repeated runs; losses add up over all runs."""
    first = results[0]

    def med(name: str) -> float:
        return statistics.median(getattr(r, name) for r in results)

    return Result(
        scenario=first.scenario,
        messages=first.messages,
        delivered=int(med("delivered")),
        distinct=int(med("distinct")),
        throughput=med("throughput"),
        cpu_seconds=med("cpu_seconds"),
        msgs_per_cpu_second=med("msgs_per_cpu_second"),
        us_per_message=med("us_per_message"),
        latency_rate=first.latency_rate,
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        lost=sum(r.lost for r in results),
        notes=first.notes,
        extra={
            key: statistics.median(r.extra.get(key, 0.0) for r in results) for key in first.extra
        },
    )


if __name__ == "__main__":
    main()
