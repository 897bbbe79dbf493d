"""The load fleet beside the full in-vehicle agent: CPU per car and per command, same run.

Starts a local stack with no fleetlink service (the cars' telemetry reaches the broker and stops
there), then, in turn, ``--vehicles`` cars as one ``fleetlink simulate`` process (the full agent
on aiomqtt, standing, kinematic mode; no delivery confirmation, as no gateway confirms) and as
one ``fleetlink load-fleet`` process, each car over mutual TLS with its own certificate. For each
fleet: connect every car; the fleet process's CPU over ``--seconds`` of telemetry every
``--interval`` s; then ``--rate`` signed commands per second straight over MQTT for ``--seconds``
(the bare round trip of ``bench/commands.py``): the CPU each command adds, and the round trip.

    .venv/bin/python bench/load_fleet.py --vehicles 2000 --interval 30 --rate 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from _bare_commands import run_mqtt
from _broker import BrokerStats
from _common import cpu_seconds, exit_cleanly_on_sigterm, percentile
from rich.console import Console
from rich.table import Table

from fleetlink.settings import dump_toml, load_settings
from fleetlink.sim.flood import vins_for
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import stack_on_free_ports

console = Console(width=130)
ROOT = Path(__file__).resolve().parents[1]
FLEETS = {"agents": "LBA", "load": "LBB"}


@dataclass
class Result:
    fleet: str
    vehicles: int
    connect_s: float  # from the process start until the broker counted every car
    idle_cores: float  # the fleet process's CPU while the cars only report
    us_per_car_s: float  # the same, per car and second of its life
    command_ms: float  # CPU the fleet process spends on each command, beyond idle
    sent: int
    answered: int
    round_trip_p50_ms: float
    round_trip_p99_ms: float
    rss_mb: float


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_fleet(kind: str, args: argparse.Namespace, config: Path, stats: BrokerStats) -> Result:
    prefix = FLEETS[kind]
    common = ["--vehicles", str(args.vehicles), "--interval", str(args.interval)]
    common += ["--duration", "100000", "--vin-prefix", prefix, "--connect-rate", "500"]
    command = [sys.executable, "-m", "fleetlink", "--config", str(config)]
    if kind == "agents":
        command += ["simulate", "--quiet", "--mode", "kinematic", "--stationary", "--no-confirm"]
    else:
        command += ["load-fleet"]
    while stats.connected > 1:  # the fleet before has left (the broker counts itself out)
        time.sleep(0.5)
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with console.status(f"{kind}: connecting {args.vehicles:,} cars"):
            while stats.connected - 1 < args.vehicles:  # minus the $SYS reader
                if process.poll() is not None or time.monotonic() - started > 300:
                    raise SystemExit(f"{kind}: only {stats.connected} connected")
                time.sleep(0.5)
        connect_s = time.monotonic() - started
        time.sleep(args.interval / 2 + 3)  # past the connect burst, into the steady state
        idle_before = cpu_seconds([process.pid])
        time.sleep(args.seconds)
        idle = cpu_seconds([process.pid]) - idle_before
        settings = load_settings(config)
        vins = vins_for(args.vehicles, prefix)
        loaded_before = cpu_seconds([process.pid])
        began = time.monotonic()
        started_at, ended, _span = run_mqtt(settings, vins, args.rate, args.seconds)
        loaded = cpu_seconds([process.pid]) - loaded_before
        loaded_span = time.monotonic() - began
        rss = rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    answered = [
        (ended[c][1] - t) * 1000
        for c, t in started_at.items()
        if c in ended and ended[c][0] == "succeeded"
    ]
    idle_cores = idle / args.seconds
    extra = loaded - idle_cores * loaded_span
    return Result(
        fleet=kind,
        vehicles=args.vehicles,
        connect_s=round(connect_s, 1),
        idle_cores=round(idle_cores, 3),
        us_per_car_s=round(idle_cores / args.vehicles * 1e6, 1),
        command_ms=round(extra / max(1, len(started_at)) * 1000, 2),
        sent=len(started_at),
        answered=len(answered),
        round_trip_p50_ms=round(percentile(answered, 0.5), 1),
        round_trip_p99_ms=round(percentile(answered, 0.99), 1),
        rss_mb=round(rss, 1),
    )


def medians(results: list[Result]) -> list[Result]:
    out = []
    for kind in FLEETS:
        runs = [r for r in results if r.fleet == kind]
        if not runs:
            continue
        numbers = {
            name: statistics.median(getattr(r, name) for r in runs)
            for name, value in asdict(runs[0]).items()
            if isinstance(value, int | float)
        }
        out.append(Result(fleet=kind, **numbers))
    return out


def show(results: list[Result], title: str) -> None:
    table = Table(title=title)
    for column in asdict(results[0]):
        table.add_column(column, justify="right")
    for result in results:
        table.add_row(*(str(v) for v in asdict(result).values()))
    console.print(table)


def plot(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = (
        ("us_per_car_s", "CPU per car, µs per second"),
        ("command_ms", "CPU per command, ms"),
        ("round_trip_p99_ms", "bare MQTT round trip p99, ms"),
    )
    fig, axes = plt.subplots(1, len(figures), figsize=(10, 3.6))
    for axis, (name, label) in zip(axes, figures, strict=True):
        values = [getattr(r, name) for r in results]
        axis.bar([r.fleet for r in results], values, color=["#9a9a9a", "#2a7ab9"][: len(values)])
        axis.set_title(label, fontsize=9)
        for index, value in enumerate(values):
            axis.annotate(f"{value:g}", (index, value), ha="center", va="bottom", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=30.0, help="telemetry, s per car")
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fleets", default="agents,load")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load-fleet.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "BENCHMARKS-load-fleet.png")
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="fleetlink-load-") as tmp:
        settings = load_settings(stack=stack_on_free_ports(Path(tmp) / "stack"))
        config = Path(tmp) / "fleetlink.toml"
        config.write_text(dump_toml(settings))
        stack = LocalStack(settings.stack)
        try:
            with console.status("starting the stack"):
                stack.up()
            stats = BrokerStats(stack, settings.stack.mqtt_port)
            for _ in range(args.repeat):
                for kind in args.fleets.split(","):
                    results.append(run_fleet(kind, args, config, stats))
                    console.print(results[-1])
            stats.close()
        finally:
            stack.down()
    meta = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    summary = medians(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                **meta,
                "args": {k: str(v) for k, v in vars(args).items()},
                "medians": [asdict(r) for r in summary],
                "runs": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    title = f"load fleet vs agents, medians of {args.repeat}, {meta['cpus']} cores, {meta['date']}"
    show(summary, title)
    plot(summary, args.plot, f"{args.vehicles:,} cars: {title}")
    console.print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
