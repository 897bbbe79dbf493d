"""The API's cost per command: accepted commands per second and API CPU per command, beside the
same API answering an authenticated read of one command (token, rights, a dict lookup, JSON),
in the same run.

One ``fleetlink api`` process (``--processes N``: N on one port) on the local stack (Kafka,
no cars needed: the bench writes the cars' presence itself), a closed-loop load of
``--connections`` kept-alive HTTP connections from ``--clients`` processes. Each POST is the
full path: token check, the caller's rights, the catalogue, the Ed25519 signature, the audit
record and the command in Kafka (``acks=all``) before the 202.

    .venv/bin/python bench/api_commands.py --seconds 15 --repeat 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import cpu_seconds, exit_cleanly_on_sigterm, percentile, with_children
from rich.console import Console
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.runner import stop_children
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Presence, PresenceStatus
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import dump_toml, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block, stack_on_free_ports

console = Console(width=110)
VINS = [f"WVWZZZ1JZXB{n:06d}" for n in range(1000)]


def load(
    port: int, auth: str, kind: str, seconds: float, connections: int, queue: multiprocessing.Queue
) -> None:
    """One client process: ``connections`` threads, each a kept-alive connection, closed loop."""
    body = json.dumps({"name": "flash"}).encode()
    headers = {"content-type": "application/json", "Authorization": auth}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.monotonic() + seconds

    def sender(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            begin = time.monotonic()
            if kind == "command":
                vin = rng.choice(VINS)
                connection.request("POST", f"/v1/vehicles/{vin}/commands", body, headers)
            else:
                connection.request("GET", f"/v1/commands/{kind}", headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append((time.monotonic() - begin) * 1000)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    threads = [
        threading.Thread(target=sender, args=(os.getpid() * 100 + n,)) for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((latencies, statuses))


def run(
    port: int, auth: str, kind: str, args: argparse.Namespace, api_pid: int
) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    per_client = max(1, args.connections // args.clients)
    clients = [
        multiprocessing.Process(
            target=load, args=(port, auth, kind, args.seconds, per_client, queue)
        )
        for _ in range(args.clients)
    ]
    api_pids = with_children(api_pid)  # with --processes: the supervisor and its processes
    cpu_before = cpu_seconds(api_pids)
    started = time.monotonic()
    for client in clients:
        client.start()
    results = [queue.get(timeout=args.seconds + 60) for _ in clients]
    span = time.monotonic() - started
    for client in clients:
        client.join()
    cpu = cpu_seconds(api_pids) - cpu_before
    latencies = [value for result in results for value in result[0]]
    statuses: dict[int, int] = {}
    for _lat, counts in results:
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    good = statuses.get(202 if kind == "command" else 200, 0)
    return {
        "per_s": good / span,
        "requests": len(latencies),
        "refused": len(latencies) - good,
        "api_cpu_s": cpu,
        "api_ms_per_request": cpu / max(1, len(latencies)) * 1000,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
    }


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians shown")
    parser.add_argument("--connections", type=int, default=32, help="kept-alive connections")
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--processes", type=int, default=1, help="API processes on the port")
    parser.add_argument("--out", type=Path, default=Path("bench/results/api_commands.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetlink-api-") as tmp:
        api_port = free_port_block(1)
        settings = load_settings(
            stack=stack_on_free_ports(Path(tmp) / "stack"),
            api={"port": api_port, "client_rate_per_s": 1_000_000, "client_burst": 1_000_000},
        )
        config = Path(tmp) / "fleetlink.toml"
        config.write_text(dump_toml(settings))
        stack = LocalStack(settings.stack)
        UserRegistry(settings.users_file()).put(User("bench", UserRole.FLEET_ADMIN))
        children: list[subprocess.Popen[bytes]] = []
        try:
            with console.status("starting the stack and the API"):
                stack.up()
                kafka = KafkaClients.of(settings)
                ensure_topics(kafka, settings.topic_map(), partitions=6)
                presence = settings.routed_topic(KafkaTopic.PRESENCE)
                producer = kafka.producer()
                now = int(time.time() * 1000)
                for vin in VINS:
                    status = Presence(status=PresenceStatus.ONLINE, ts=now)
                    producer.produce(presence, encode(status), vin.encode())
                producer.flush(30)
                key = signing_key(settings, SigningPurpose.API_TOKENS)
                auth = f"Bearer {issue_token(key, 'bench', 'fleet-admin', 86400)}"
                command = [sys.executable, "-m", "fleetlink", "--config", str(config), "api"]
                command += ["--processes", str(args.processes)]
                api = subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                children.append(api)
                first = wait_until_ready(api_port, auth)
                all_ready(api_port)
            run(
                api_port,
                auth,
                "command",
                argparse.Namespace(**{**vars(args), "seconds": 5}),
                api.pid,
            )
            rows: dict[str, list[dict[str, float]]] = {"baseline": [], "command": []}
            for index in range(args.repeat):
                for kind in ("baseline", "command"):
                    with console.status(f"run {index + 1}: {kind}"):
                        target = first if kind == "baseline" else kind
                        rows[kind].append(run(api_port, auth, target, args, api.pid))
                    console.print(kind, rows[kind][-1])
        finally:
            stop_children(children)
            stack.down()
    medians = {
        kind: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for kind, runs in rows.items()
    }
    table = Table(title=f"API cost per command: medians of {args.repeat}, {os.cpu_count()} cores")
    for column in ("request", "per s", "API ms CPU / request", "p50 ms", "p99 ms", "refused"):
        table.add_column(column, justify="right")
    for kind, label in (("baseline", "GET one command"), ("command", "POST a command")):
        m = medians[kind]
        table.add_row(
            label, f"{m['per_s']:,.0f}", f"{m['api_ms_per_request']:.2f}",
            f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}", f"{m['refused']:.0f}",
        )  # fmt: skip
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"args": vars(args) | {"out": str(args.out)}, "runs": rows, "medians": medians},
            indent=1,
        )
    )
    console.print(f"wrote {args.out}")


def all_ready(port: int, timeout: float = 90) -> None:
    """Every API process answers ready: ten new connections in a row (the kernel spreads
    them over the processes)."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 10:
        if time.monotonic() > deadline:
            raise SystemExit("the API processes did not all become ready")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            streak = streak + 1 if connection.getresponse().status == 200 else 0
        except OSError:
            streak = 0
        finally:
            connection.close()
        if streak == 0:
            time.sleep(0.5)


def wait_until_ready(port: int, auth: str) -> str:
    """The id of the first command the API accepted."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            headers = {"content-type": "application/json", "Authorization": auth}
            path = f"/v1/vehicles/{VINS[0]}/commands"
            connection.request("POST", path, b'{"name": "flash"}', headers)
            response = connection.getresponse()
            if response.status == 202:
                return str(json.loads(response.read())["command_id"])
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the API did not accept a command within 90 s")


if __name__ == "__main__":
    main()
