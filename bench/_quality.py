"""What the quality benchmarks share (hazards, parking, trips against the simulator's truth):
a local stack on free ports, each run on topics (kept forever) and state of its own, one app
process per run in simulated-clock mode, and the results file."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from rich.console import Console

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.polling import wait_until
from fleetlink.adapters.runner import stop_children, tail
from fleetlink.apps.runtime.metrics import app_group, assigned_members
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings, dump_toml, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import stack_on_free_ports

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
APP_TOPICS = (KafkaTopic.EVENTS, KafkaTopic.TELEMETRY, KafkaTopic.TICKS, KafkaTopic.DLQ)


def run_settings(
    base: Settings, tmp: Path, topics: tuple[KafkaTopic, ...] = ()
) -> tuple[Settings, Path]:
    """Settings of one run: topics and state of its own, simulated clock (``APP_TOPICS`` and
    ``topics`` created with 6 partitions)."""
    run = f"q{uuid.uuid4().hex[:8]}"
    prefixed = base.topics.model_copy(update={"prefix": base.topic_map().prefixed(run).prefix})
    apps = base.apps.model_copy(
        update={"simulated_clock": True, "state_dir": tmp / run, "metrics_port": 0}
    )
    settings = base.model_copy(update={"topics": prefixed, "apps": apps})
    config = tmp / f"{run}.toml"
    config.write_text(dump_toml(settings))
    kafka = KafkaClients.of(settings)
    names = ensure_topics(kafka, settings.topic_map(), partitions=6, only=(*APP_TOPICS, *topics))
    keep_forever(kafka, names)
    return settings, config


def keep_forever(kafka: KafkaClients, topics: list[str]) -> None:
    """No retention on a run's topics: a run of simulated months writes records stamped months
    ago, and the broker would delete them (by their timestamps) before the app reads them."""
    forever = [ConfigEntry("retention.ms", "-1", incremental_operation=AlterConfigOpType.SET)]
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=forever) for t in topics]
    admin = kafka.admin()  # held until the answers came: a dropped client never answers
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)


def wait_assigned(settings: Settings, log: Path, app: str, timeout_s: float = 60) -> None:
    kafka, group = KafkaClients.of(settings), app_group(settings, app)
    if not wait_until(lambda: bool(assigned_members(kafka, group)), timeout_s, interval=0.5):
        lines = "\n".join(tail(log, 20))
        raise SystemExit(f"the {app} app was not assigned its partitions:\n{lines}")


@contextmanager
def app_running(settings: Settings, config: Path, app: str, label: str) -> Iterator[None]:
    """``fleetlink app run APP`` on the run's settings, assigned its partitions; an exit
    before the run is over fails the benchmark."""
    log_path = config.parent / f"app-{label}.log"
    log = log_path.open("ab")
    argv = [sys.executable, "-m", "fleetlink", "--config", str(config), "app", "run", app]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_assigned(settings, log_path, app)
        yield
        if process.poll() is not None:
            raise SystemExit(f"the {app} app exited with {process.returncode}")
    finally:
        stop_children([process])
        log.close()


def on_a_stack(prefix: str, runs: Callable[[Settings, Path], None]) -> None:
    """A local stack on free ports for ``runs(base settings, scratch directory)``."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        tmp = Path(name)
        base = load_settings(stack=stack_on_free_ports(tmp / "stack"))
        stack = LocalStack(base.stack)
        try:
            with console.status("starting the stack"):
                stack.up()
            runs(base, tmp)
        finally:
            stack.down()


def per_seed(
    args: argparse.Namespace,
    prefix: str,
    one: Callable[[Settings, Path, int], dict[str, Any]],
    hidden: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """One row per seed of ``args.seeds`` from ``one(base settings, scratch, seed)``, all on
    one stack; each shown as it comes (without the ``hidden`` keys)."""
    rows: list[dict[str, Any]] = []

    def runs(base: Settings, tmp: Path) -> None:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(one(base, tmp, seed))
            console.print({k: v for k, v in rows[-1].items() if k not in hidden})

    on_a_stack(prefix, runs)
    return rows


def medians(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float | None]:
    """The median of each key over the rows that have it."""

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(values), 4) if values else None

    return {key: median(key) for key in keys}


def save(args: argparse.Namespace, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The summary and every row to ``args.out``, with the date, the machine and the command."""
    console.print(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    meta["args"] = {k: str(v) for k, v in vars(args).items()}
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
