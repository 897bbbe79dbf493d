"""Connection benchmark: how many simulated vehicles one machine holds on one Mosquitto.

Starts a local stack, then ``--processes`` simulator processes (``fleetlink simulate``, asyncio
agents on aiomqtt) that together connect ``--vehicles`` cars at ``--connect-rate`` per second,
each publishing QoS 1 telemetry every ``--interval`` seconds, and holds them for ``--hold``
seconds. Samples, every 2 s: connected clients (Mosquitto's ``$SYS/broker/clients/connected``),
messages the broker received, memory (RSS) and CPU of the simulators and of the broker.

    .venv/bin/python bench/connections.py --vehicles 19000 --processes 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from _broker import BrokerStats
from _common import cpu_seconds, exit_cleanly_on_sigterm
from rich.console import Console
from rich.table import Table

from fleetlink.settings import dump_toml, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import stack_on_free_ports

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ["CNA", "CNB", "CNC", "CND", "CNE", "CNF", "CNG", "CNH"]


@dataclass
class Sample:
    t: float
    connected: int
    received: int
    simulators_rss_mb: float
    broker_rss_mb: float
    simulators_cpu_s: float
    broker_cpu_s: float


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=19_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds with all connected")
    parser.add_argument("--connect-rate", type=float, default=1000.0, help="per second, in all")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "connections.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "BENCHMARKS-connections.png")
    args = parser.parse_args()
    per_process = args.vehicles // args.processes
    ramp = args.vehicles / args.connect_rate
    duration = ramp + args.hold + 10

    with tempfile.TemporaryDirectory(prefix="fleetlink-conn-") as tmp:
        settings = load_settings(stack=stack_on_free_ports(Path(tmp) / "stack"))
        config = Path(tmp) / "fleetlink.toml"
        config.write_text(dump_toml(settings))
        stack = LocalStack(settings.stack)
        simulators: list[subprocess.Popen[bytes]] = []
        samples: list[Sample] = []
        try:
            with console.status("starting the stack"):
                state = stack.up()
            broker_pid = next(p.pid for p in state.processes if p.name == "mosquitto")
            stats = BrokerStats(stack, settings.stack.mqtt_port)
            started = time.monotonic()
            for index in range(args.processes):
                summary = Path(tmp) / f"summary-{index}.json"
                simulators.append(
                    subprocess.Popen(
                        [
                            sys.executable, "-m", "fleetlink", "--config", str(config),
                            "simulate", "--quiet",
                            "--vehicles", str(per_process),
                            "--interval", str(args.interval),
                            "--duration", str(duration),
                            "--seed", str(index + 1),
                            "--vin-prefix", PREFIXES[index],
                            "--connect-rate", str(args.connect_rate / args.processes),
                            "--mode", "kinematic",
                            "--summary", str(summary),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )  # fmt: skip
            while any(p.poll() is None for p in simulators):
                time.sleep(2)
                samples.append(
                    Sample(
                        t=round(time.monotonic() - started, 1),
                        connected=stats.connected,
                        received=stats.received,
                        simulators_rss_mb=round(sum(rss_mb(p.pid) for p in simulators), 1),
                        broker_rss_mb=round(rss_mb(broker_pid), 1),
                        simulators_cpu_s=round(cpu_seconds([p.pid for p in simulators]), 1),
                        broker_cpu_s=round(cpu_seconds([broker_pid]), 1),
                    )
                )
                console.print(
                    f"t={samples[-1].t:6.1f}s connected={stats.connected:6d} "
                    f"simulators={samples[-1].simulators_rss_mb:7.1f} MB "
                    f"broker={samples[-1].broker_rss_mb:6.1f} MB"
                )
            stats.close()
            summaries = [
                json.loads((Path(tmp) / f"summary-{i}.json").read_text())
                for i in range(args.processes)
                if (Path(tmp) / f"summary-{i}.json").exists()
            ]
        finally:
            for process in simulators:
                if process.poll() is None:
                    process.kill()
            stack.down()

    target = per_process * args.processes
    peak = max(s.connected for s in samples) - 1  # minus the $SYS client itself
    reached = next((s.t for s in samples if s.connected - 1 >= target), None)
    held = [s for s in samples if s.connected - 1 >= 0.99 * target]
    at_peak = max(samples, key=lambda s: s.connected)
    rate = (
        (held[-1].received - held[0].received) / (held[-1].t - held[0].t) if len(held) > 1 else 0.0
    )
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "target": target,
        "peak_connected": peak,
        "seconds_to_all_connected": reached,
        "connect_rate_per_s": round(target / reached, 1) if reached else None,
        "held_seconds": round(held[-1].t - held[0].t, 1) if len(held) > 1 else 0,
        "messages_per_s_while_held": round(rate, 1),
        "expected_messages_per_s": round(target / args.interval, 1),
        "simulator_kib_per_vehicle": round(at_peak.simulators_rss_mb * 1024 / max(1, peak), 1),
        "broker_kib_per_connection": round(at_peak.broker_rss_mb * 1024 / max(1, peak), 1),
        "simulator_cpu_s": samples[-1].simulators_cpu_s,
        "broker_cpu_s": samples[-1].broker_cpu_s,
        "summaries": summaries,
        "samples": [asdict(s) for s in samples],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    table = Table(title=f"connections, {os.cpu_count()} cores, {result['date']}")
    for key in (
        "target",
        "peak_connected",
        "seconds_to_all_connected",
        "connect_rate_per_s",
        "held_seconds",
        "messages_per_s_while_held",
        "expected_messages_per_s",
        "simulator_kib_per_vehicle",
        "broker_kib_per_connection",
    ):
        table.add_row(key, str(result[key]))
    console.print(table)
    plot(samples, target, args.plot)
    console.print(f"wrote {args.out} and {args.plot}")


def plot(samples: list[Sample], target: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in samples]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    left.plot(t, [s.connected - 1 for s in samples], label="connected vehicles")
    left.axhline(target, color="grey", linestyle="--", label=f"target {target:,}")
    left.set_xlabel("s")
    left.legend()
    left.set_title("connected vehicles (Mosquitto $SYS)")
    right.plot(t, [s.simulators_rss_mb for s in samples], label="simulators RSS (MB)")
    right.plot(t, [s.broker_rss_mb for s in samples], label="Mosquitto RSS (MB)")
    right.set_xlabel("s")
    right.legend()
    right.set_title("memory")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
