"""Command round-trip benchmark: POST to ``succeeded`` seen by the client, with a live fleet.

Starts a local stack, the gateway (supervised workers), the tracker and the API as processes,
and ``--vehicles`` simulated cars in ``--simulators`` processes, telemetry every ``--interval``
s: ``fleetlink load-fleet`` (cars on one event loop, answering with the agent's own command code;
a test in ``tests/integration/test_commands.py`` proves they answer as the agent does), or with
``--fleet agents`` the full in-vehicle agents (``fleetlink simulate``), which cost the machine
about twice the CPU the platform is measured on. Then, for each rate in ``--rates``, sends
``flash`` commands to random online cars for ``--seconds`` on a fixed schedule (open loop: a
slow answer does not slow the sender) and measures, per command, from just before the POST to
the moment its ``succeeded`` transition arrives on the API's Server-Sent Events stream.

First ``--warmup`` seconds of commands are sent unmeasured: Kafka's JIT compiler otherwise
takes a good part of the 2 cores during the first minute.

Baseline, measured in the same run with the same cars: the bare MQTT round trip, a client that
publishes the (signed) command straight to ``vehicles/{vin}/commands/{id}`` and waits for the
car's answer, without Kafka, the gateway, the tracker or the API. Everything runs secured as
by default (mutual TLS, signed commands, bearer tokens); the API's per-client rate limit is
raised for the benchmark's one client.

    .venv/bin/python bench/commands.py --vehicles 5000 --rates 100,500 --seconds 30 --repeat 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import msgspec
from _bare_commands import run_mqtt
from _common import cpu_seconds, exit_cleanly_on_sigterm, percentile
from rich.console import Console
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.runner import stop_children
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.contracts import headers as h
from fleetlink.contracts.models import CommandResponse, ResponseStatus
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings, dump_toml, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block, stack_on_free_ports

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ["BMA", "BMB", "BMC", "BMD"]


@dataclass
class Result:
    path: str  # "platform" (REST -> Kafka -> car -> tracker -> SSE) or "mqtt" (baseline)
    rate: float
    sent: int
    succeeded: int
    other: int  # ended otherwise, or no answer in time
    achieved_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    post_p50_ms: float  # POST until 202 (the record is in Kafka)
    post_p99_ms: float
    # "queued" to "sent": API -> fleet.commands -> downlink -> the broker's PUBACK
    downlink_p50_ms: float
    downlink_p99_ms: float
    # "sent" to the car's answer (its "ts"): broker -> car, which checks and runs it
    car_p50_ms: float
    car_p99_ms: float
    # the car's answer to the gateway receiving it (header fl.ingest_time): car -> broker -> gateway
    uplink_p50_ms: float
    uplink_p99_ms: float
    # the gateway receiving it to the tracker's "succeeded": Kafka ack, tracker
    tracker_p50_ms: float
    tracker_p99_ms: float
    # from the tracker writing "succeeded" to the client reading it (status topic, API, SSE)
    last_leg_p50_ms: float
    last_leg_p99_ms: float
    cpu_s: float  # all fleetlink processes, the simulators, Kafka and Mosquitto
    cpu_by_process: dict[str, float]  # the same, by process (this benchmark's client too)


class TransitionStream:
    """The API's SSE stream of all transitions; records when each command ended.

    Plain ``http.client``: this process sends hundreds of requests a second beside everything
    else on 2 cores, and must not be what the benchmark measures.
    """

    def __init__(self, host: str, port: int, auth: dict[str, str]) -> None:
        self._auth = auth
        self.ended: dict[str, tuple[str, float]] = {}
        self.steps: dict[str, dict[str, float]] = {}  # command id -> state -> its ts (epoch ms)
        self.lag_ms: dict[str, float] = {}  # the tracker's transition to the client
        self.ready = threading.Event()
        self._address = (host, port)
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        connection = http.client.HTTPConnection(*self._address, timeout=None)
        connection.request("GET", "/v1/commands/events", headers=self._auth)
        response = connection.getresponse()
        for raw in response:
            if raw.startswith(b"event: ready"):
                self.ready.set()
            elif raw.startswith(b'data: {"'):
                step = json.loads(raw[6:])
                command_id, state = step["command_id"], step["state"]
                self.steps.setdefault(command_id, {})[state] = step["ts"]
                if state not in _NOT_FINAL:
                    self.ended.setdefault(command_id, (state, time.monotonic()))
                    self.lag_ms[command_id] = time.time() * 1000 - step["ts"]


_NOT_FINAL = ("queued", "sent", "delivered")


def add_answer_times(steps: dict[str, dict[str, float]], settings: Settings) -> None:
    """Add when each car answered (its "ts") and when the gateway received the answer."""
    topic = settings.topic_map()[KafkaTopic.COMMAND_RESPONSES]
    for record in read_topic(KafkaClients.of(settings), topic):
        command_id = (record.key() or b"").decode()
        ingested = header_value(record.headers(), h.INGEST_TIME)
        if command_id not in steps or ingested is None:
            continue
        answer = msgspec.json.decode(record.value() or b"{}", type=CommandResponse)
        if answer.status == ResponseStatus.SUCCEEDED:
            steps[command_id].update(answered=answer.ts, ingested=int(ingested))


def leg_ms(steps: dict[str, dict[str, float]], start: str, end: str) -> dict[str, float]:
    """Per command, the time between two of its transitions, where both were seen."""
    return {c: s[end] - s[start] for c, s in steps.items() if start in s and end in s}


def run_platform(
    host: str,
    port: int,
    auth: dict[str, str],
    vins: list[str],
    rate: float,
    seconds: float,
    senders: int = 24,
) -> tuple[dict[str, float], list[float], float]:
    """POST on a fixed schedule from ``senders`` threads, each with a kept-alive connection;
    returns start times by command id, POST latencies (ms) and the sending span."""
    rng = random.Random(int(rate))
    started: dict[str, float] = {}
    post_ms: list[float] = []
    first = time.monotonic() + 0.5
    due = [first + index / rate for index in range(int(rate * seconds))]
    targets = [rng.choice(vins) for _ in due]
    body = json.dumps({"name": "flash"}).encode()
    headers = {"content-type": "application/json", **auth}
    next_index = iter(range(len(due)))
    lock = threading.Lock()

    def sender() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            delay = due[index] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            begin = due[index]  # from when it should have gone: a late sender counts too
            connection.request("POST", f"/v1/vehicles/{targets[index]}/commands", body, headers)
            response = connection.getresponse()
            answer = response.read()
            post_ms.append((time.monotonic() - begin) * 1000)
            if response.status == 202:
                started[json.loads(answer)["command_id"]] = begin

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started, post_ms, time.monotonic() - first


def summarise(
    path: str,
    rate: float,
    started: dict[str, float],
    ended: dict[str, tuple[str, float]],
    span: float,
    post_ms: list[float],
    cpu: dict[str, float],
    last_leg: dict[str, float] | None = None,
    steps: dict[str, dict[str, float]] | None = None,
) -> Result:
    def leg(times: dict[str, float] | None) -> list[float]:
        return [times[c] for c in started if times and c in times]

    legs = leg(last_leg)
    downlink = leg(leg_ms(steps or {}, "queued", "sent"))
    car = leg(leg_ms(steps or {}, "sent", "answered"))
    uplink = leg(leg_ms(steps or {}, "answered", "ingested"))
    tracker = leg(leg_ms(steps or {}, "ingested", "succeeded"))
    latencies = [
        (ended[c][1] - t) * 1000
        for c, t in started.items()
        if c in ended and ended[c][0] == "succeeded"
    ]
    return Result(
        path=path,
        rate=rate,
        sent=len(started),
        succeeded=len(latencies),
        other=len(started) - len(latencies),
        achieved_rate=round(len(started) / span, 1),
        p50_ms=round(percentile(latencies, 0.5), 1),
        p90_ms=round(percentile(latencies, 0.9), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies, default=float("nan")), 1),
        post_p50_ms=round(percentile(post_ms, 0.5), 1) if post_ms else float("nan"),
        post_p99_ms=round(percentile(post_ms, 0.99), 1) if post_ms else float("nan"),
        downlink_p50_ms=round(percentile(downlink, 0.5), 1),
        downlink_p99_ms=round(percentile(downlink, 0.99), 1),
        car_p50_ms=round(percentile(car, 0.5), 1),
        car_p99_ms=round(percentile(car, 0.99), 1),
        uplink_p50_ms=round(percentile(uplink, 0.5), 1),
        uplink_p99_ms=round(percentile(uplink, 0.99), 1),
        tracker_p50_ms=round(percentile(tracker, 0.5), 1),
        tracker_p99_ms=round(percentile(tracker, 0.99), 1),
        last_leg_p50_ms=round(percentile(legs, 0.5), 1),
        last_leg_p99_ms=round(percentile(legs, 0.99), 1),
        cpu_s=round(sum(v for k, v in cpu.items() if k != "client"), 1),
        cpu_by_process={k: round(v, 1) for k, v in cpu.items()},
    )


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=5000)
    parser.add_argument("--simulators", type=int, default=2, help="simulator processes")
    parser.add_argument(
        "--fleet",
        choices=("load", "agents"),
        default="load",
        help="load: fleetlink load-fleet (light); agents: fleetlink simulate (the full agent)",
    )
    parser.add_argument("--interval", type=float, default=10.0, help="telemetry, s per car")
    parser.add_argument("--rates", default="100,500", help="commands per second, comma separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="per rate")
    parser.add_argument("--repeat", type=int, default=3, help="runs per rate; medians shown")
    parser.add_argument(
        "--warmup", type=float, default=20.0, help="s of commands first (Kafka's JIT warms up)"
    )
    parser.add_argument("--workers", type=int, default=1, help="gateway workers")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "commands.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "BENCHMARKS-commands.png")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="fleetlink-cmd-") as tmp:
        api_port = free_port_block(1)
        settings = load_settings(
            stack=stack_on_free_ports(Path(tmp) / "stack"),
            api={"port": api_port, "client_rate_per_s": 100_000, "client_burst": 100_000},
            gateway={"metrics_port": 0, "workers": args.workers},
        )
        config = Path(tmp) / "fleetlink.toml"
        config.write_text(dump_toml(settings))
        api_url = f"http://127.0.0.1:{api_port}"
        stack = LocalStack(settings.stack)
        UserRegistry(settings.users_file()).put(User("bench", UserRole.FLEET_ADMIN))
        children: list[subprocess.Popen[bytes]] = []
        supervisor = Supervisor.of_workers(
            lambda index: worker_argv(config, index, drain_on_exit=True),
            args.workers,
            backoff_s=0.5,
            stop_timeout_s=60,
            log=logging.getLogger("bench"),
        )

        roles: dict[str, list[int]] = {"client": [os.getpid()]}

        def child(*argv: str) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "fleetlink", "--config", str(config), *argv]
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            children.append(process)
            roles.setdefault(argv[0], []).append(process.pid)
            return process

        def cpu_now() -> dict[str, float]:
            return {role: cpu_seconds(pids) for role, pids in roles.items()}

        def cpu_since(before: dict[str, float]) -> dict[str, float]:
            now = cpu_now()
            return {role: now[role] - before.get(role, 0.0) for role in now}

        try:
            with console.status("starting the stack, gateway, tracker and API"):
                state = stack.up()
                ensure_worker_identities(settings, range(args.workers))
                key = signing_key(settings, SigningPurpose.API_TOKENS)
                auth = {
                    "Authorization": f"Bearer {issue_token(key, 'bench', 'fleet-admin', 86400)}"
                }
                ensure_topics(KafkaClients.of(settings), settings.topic_map(), partitions=6)
                supervisor.start()
                child("tracker")
                child("api")
            per_simulator = args.vehicles // args.simulators
            for index in range(args.simulators):
                fleet = ["simulate", "--quiet", "--mode", "kinematic"]
                if args.fleet == "load":
                    fleet = ["load-fleet"]
                child(
                    *fleet,
                    "--vehicles", str(per_simulator), "--interval", str(args.interval),
                    "--duration", "100000", "--seed", str(index + 1),
                    "--vin-prefix", PREFIXES[index], "--connect-rate", "500",
                )  # fmt: skip
            vins = wait_for_fleet(api_url, auth, per_simulator * args.simulators)
            roles["gateway"] = [h.pid for h in supervisor.handles if h.pid]
            for process in state.processes:
                roles["kafka" if process.name.startswith("kafka") else process.name] = [process.pid]
            stream = TransitionStream("127.0.0.1", api_port, auth)
            stream.ready.wait(10)
            with console.status(f"warming up for {args.warmup:.0f} s"):
                run_platform("127.0.0.1", api_port, auth, vins, rates[0], args.warmup)
            for rate in [r for _ in range(args.repeat) for r in rates]:
                time.sleep(3)
                before = cpu_now()
                started, ended, span = run_mqtt(settings, vins, rate, args.seconds)
                results.append(summarise("mqtt", rate, started, ended, span, [], cpu_since(before)))
                console.print(results[-1])
                time.sleep(3)
                before = cpu_now()
                started_p, post_ms, span = run_platform(
                    "127.0.0.1", api_port, auth, vins, rate, args.seconds
                )
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not set(started_p) <= set(stream.ended):
                    time.sleep(0.2)
                cpu = cpu_since(before)
                add_answer_times(stream.steps, settings)
                results.append(
                    summarise(
                        "platform",
                        rate,
                        started_p,
                        stream.ended,
                        span,
                        post_ms,
                        cpu,
                        stream.lag_ms,
                        stream.steps,
                    )
                )
                console.print(results[-1])
        finally:
            stop_children(children)
            supervisor.stop(drain=True)
            stack.down()
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    medians = median_results(results)
    args.out.write_text(
        json.dumps(
            {
                **meta,
                "medians": [asdict(r) for r in medians],
                "runs": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    show(medians, meta)
    title = f"command round trip, medians of {args.repeat}, {meta['cpus']} cores, {meta['date']}"
    plot(medians, args.plot, title)
    console.print(f"wrote {args.out} and {args.plot}")


def wait_for_fleet(
    api_url: str, auth: dict[str, str], expected: int, timeout: float = 240
) -> list[str]:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api_url, timeout=5, headers=auth) as client:
        while True:
            try:
                reply = client.get("/v1/vehicles", params={"online": True, "limit": 10_000})
                vins = [row["vin"] for row in reply.json()["vehicles"]]
            except (httpx.HTTPError, KeyError, ValueError):
                vins = []
            console.print(f"online: {len(vins):,} of {expected:,}", end="\r")
            if len(vins) >= expected:
                console.print()
                return vins
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(vins)} of {expected} cars came online")
            time.sleep(2)


def median_results(results: list[Result]) -> list[Result]:
    """Per path and rate, the median of every figure over the runs."""
    medians = []
    for key in sorted({(r.path, r.rate) for r in results}, key=lambda k: (k[1], k[0])):
        runs = [r for r in results if (r.path, r.rate) == key]
        numbers = {
            name: statistics.median(getattr(r, name) for r in runs)
            for name, value in asdict(runs[0]).items()
            if isinstance(value, int | float) and name != "rate"
        }
        cpu = {
            role: round(statistics.median(r.cpu_by_process.get(role, 0.0) for r in runs), 1)
            for role in runs[0].cpu_by_process
        }
        medians.append(Result(path=key[0], rate=key[1], cpu_by_process=cpu, **numbers))
    return medians


def show(results: list[Result], meta: dict[str, object]) -> None:
    title = f"command round trip, medians, {meta['cpus']} cores, {meta['date']}"
    table = Table(title=title)
    columns = ("path", "rate", "sent", "succeeded", "other", "achieved_rate", "p50_ms")
    columns += ("p90_ms", "p99_ms", "max_ms", "post_p99_ms", "downlink_p99_ms")
    columns += ("car_p99_ms", "uplink_p99_ms", "tracker_p99_ms", "last_leg_p99_ms", "cpu_s")
    for column in columns:
        table.add_column(column, justify="right")
    for result in results:
        row = asdict(result)
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)


def plot(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = sorted({r.rate for r in results})
    fig, axis = plt.subplots(figsize=(8, 4.2))
    width = 0.2
    for offset, (label, metric) in enumerate(
        (("p50", "p50_ms"), ("p99", "p99_ms")),
    ):
        for shift, path_name in enumerate(("mqtt", "platform")):
            values = [
                next(getattr(r, metric) for r in results if r.rate == rate and r.path == path_name)
                for rate in rates
            ]
            position = [i + (offset * 2 + shift - 1.5) * width for i in range(len(rates))]
            axis.bar(position, values, width, label=f"{path_name} {label}")
    axis.axhline(100, color="grey", linestyle="--", label="target p99 100 ms")
    axis.set_yscale("log")  # 2 ms and 14 s on one chart
    axis.set_xticks(range(len(rates)), [f"{r:.0f} cmd/s" for r in rates])
    axis.set_ylabel("ms, POST to succeeded seen by the client")
    axis.set_title(title)
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
