"""Edge-cloud replication benchmark: MirrorMaker 2 lag each way, and catch-up after a cut link.

Starts an edge-cloud stack of its own (two KRaft clusters, two MM2 processes, the link proxy).
Per run:

1. **Lag.** For ``--seconds``, producers write at the fleet's rates: ``--up-rate`` records/s of
   300 bytes into the edge's ``fleet.telemetry`` (cars), ``--down-rate`` into the cloud's
   ``fleet.commands`` (operators). A consumer on the other side measures each record's arrival
   minus its produce timestamp (MM2 keeps the timestamp). Baseline, measured at the same time:
   the same records read on the cluster they were written to (the single-cluster latency).
2. **Catch-up.** The link is cut (``blackhole``) for ``--cut`` seconds while the cars go on;
   then healed. Catch-up is the time from the heal until the cloud holds every record written
   before the heal.

Results go to ``bench/results/edge-cloud.json``; medians over ``--runs``.

    .venv/bin/python bench/edge_cloud.py --runs 3 --seconds 30 --cut 60
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from _common import exit_cleanly_on_sigterm, percentile
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts.topics import PRODUCTION_TOPICS, KafkaTopic, Site
from fleetlink.settings import load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.link import LinkMode
from fleetlink.stack.ports import stack_on_free_ports

RESULTS = Path(__file__).parent / "results" / "edge-cloud.json"
PAYLOAD = b"x" * 300
console = Console()


class Writer:
    """Writes ``rate`` records/s into ``topic`` until stopped; remembers how many."""

    def __init__(self, bootstrap: str, topic: str, rate: float) -> None:
        self.producer: Producer = KafkaClients.at(bootstrap).producer(linger_ms=5)
        self.topic, self.rate = topic, rate
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self.thread.start()
        return self

    def _run(self) -> None:
        began = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - began) * self.rate)
            while self.sent < due:
                self.producer.produce(self.topic, key=f"VIN{self.sent % 1000:014d}", value=PAYLOAD)
                self.sent += 1
            self.producer.poll(0)
            time.sleep(0.002)
        self.producer.flush(60)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(90)
        return self.sent


class Reader:
    """Reads ``topic`` from now on; each record's arrival minus its produce timestamp (ms)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-{uuid.uuid4().hex}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.consumer.subscribe([topic])
        self.delays: list[float] = []
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Reader:
        self.thread.start()
        while not self.consumer.assignment():
            time.sleep(0.05)
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            for record in self.consumer.consume(1000, 0.1):
                if record.error() is None:
                    self.delays.append(time.time() * 1000 - record.timestamp()[1])
                    self.count += 1

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.consumer.close()

    def wait_for(self, count: int, timeout: float) -> float | None:
        began = time.monotonic()
        while self.count < count:
            if time.monotonic() - began > timeout:
                return None
            time.sleep(0.05)
        return time.monotonic() - began


def summary(delays: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(delays, 0.5), "p99_ms": percentile(delays, 0.99)}


def one_run(stack: LocalStack, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    topics = PRODUCTION_TOPICS.prefixed(f"bench{uuid.uuid4().hex[:6]}")
    edge, cloud = stack.bootstrap_servers(Site.EDGE), stack.bootstrap_servers(Site.CLOUD)
    for bootstrap in (edge, cloud):
        ensure_topics(KafkaClients.at(bootstrap), topics, partitions=args.partitions)
    up, down = topics[KafkaTopic.TELEMETRY], topics[KafkaTopic.COMMANDS]
    time.sleep(3)  # MM2 finds the new topics (refresh 1 s) and starts their tasks
    readers = {
        "edge->cloud": Reader(cloud, up).start(),
        "cloud->edge": Reader(edge, down).start(),
        "edge (single cluster)": Reader(edge, up).start(),
        "cloud (single cluster)": Reader(cloud, down).start(),
    }
    writers = [Writer(edge, up, args.up_rate).start(), Writer(cloud, down, args.down_rate).start()]
    task = progress.add_task("lag", total=args.seconds)
    for _ in range(int(args.seconds)):
        time.sleep(1)
        progress.advance(task)
    warmup = {name: int(len(r.delays) * 0.1) for name, r in readers.items()}
    result: dict[str, Any] = {}
    for name, reader in readers.items():
        delays = reader.delays[warmup[name] :]
        result[name] = summary(delays) | {"records": len(delays)}
    result["up_rate"] = readers["edge->cloud"].count / args.seconds

    # catch-up after a cut: the cars go on writing at the edge
    cloud_up = readers["edge->cloud"]
    stack.link.cut(LinkMode.BLACKHOLE)
    task = progress.add_task(f"link cut for {args.cut:.0f} s", total=args.cut)
    for _ in range(int(args.cut)):
        time.sleep(1)
        progress.advance(task)
    written_before_heal = writers[0].sent
    backlog = written_before_heal - cloud_up.count
    stack.link.heal()
    catch_up = cloud_up.wait_for(written_before_heal, timeout=300)
    for writer in writers:
        writer.finish()
    for reader in readers.values():
        reader.finish()
    result["catch_up_s"] = catch_up
    result["backlog"] = backlog
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--cut", type=float, default=60)
    parser.add_argument("--up-rate", type=float, default=2000)
    parser.add_argument("--down-rate", type=float, default=50)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    runs = []
    with tempfile.TemporaryDirectory(prefix="fleetlink-bench-ec-") as tmp:
        stack_settings = stack_on_free_ports(Path(tmp) / "stack", edge_cloud=True)
        stack_settings["mirror"] = {"refresh_topics_s": 1}
        stack = LocalStack(load_settings(stack=stack_settings).stack)
        try:
            with console.status("Starting two Kafka clusters and MirrorMaker 2"):
                began = time.monotonic()
                stack.up()
                started_s = time.monotonic() - began
            with Progress(console=console) as progress:
                for _ in range(args.runs):
                    runs.append(one_run(stack, args, progress))
        finally:
            stack.down()
    report(runs, args, started_s)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, started_s: float) -> None:
    def median(key: str, field: str | None = None) -> float:
        values = [run[key][field] if field else run[key] for run in runs]
        return statistics.median(v for v in values if v is not None)

    table = Table(title=f"Replication, median of {len(runs)} runs", title_justify="left")
    for column in ("path", "p50 ms", "p99 ms", "records"):
        table.add_column(column, justify="right" if column != "path" else "left")
    names = ("edge (single cluster)", "edge->cloud", "cloud (single cluster)", "cloud->edge")
    for name in names:
        table.add_row(
            name,
            f"{median(name, 'p50_ms'):.0f}",
            f"{median(name, 'p99_ms'):.0f}",
            f"{median(name, 'records'):.0f}",
        )
    console.print(table)
    base, mirrored = median(names[0], "p50_ms"), median(names[1], "p50_ms")
    console.print(
        f"edge->cloud p50 is {mirrored / base:.1f}x the single-cluster p50; "
        f"throughput {median('up_rate'):.0f} records/s at the cloud (asked {args.up_rate:.0f}); "
        f"after a {args.cut:.0f} s cut, a backlog of {median('backlog'):.0f} records caught up "
        f"in {median('catch_up_s'):.1f} s (median); stack started in {started_s:.0f} s"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"date": time.strftime("%Y-%m-%d"), "args": vars(args), "runs": runs}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
