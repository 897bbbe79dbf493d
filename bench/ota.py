"""OTA: the time to roll a version out to 1,000 cars with the default groups.

Starts a local stack, the gateway, the tracker, the API and the campaign orchestrator as
processes, ``--vehicles`` simulated cars of one model standing parked (the night a fleet is
updated) and, apart, one more car: the baseline. Publishes an image of ``--image-kib`` KiB.

Each run publishes a new version and rolls it out twice:

1. Baseline: a campaign of the one car alone, same image size, same install time: the floor of
   one update end to end (order -> command -> download -> verify -> install -> report).
2. The fleet: a campaign with the defaults (groups 1 %, 10 %, 50 %, the rest; success 95 %,
   errors 10 %; ``--rate`` orders a minute, 1000 by default), approved by a second admin.

Figures per run: approval to finished, each group's start to its last car's end, time to apply
per car (order to ``succeeded``), and the floor the rate limit and the baseline set together:
every order sent at the rate, then one update (cars / rate + one car alone). The groups cost
the difference: a group opens only once 95 % of the one before has succeeded.

    .venv/bin/python bench/ota.py --vehicles 1000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import exit_cleanly_on_sigterm, percentile
from _purchases import keep_checking, online, token
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.supervisor import Program, Supervisor
from fleetlink.campaigns.images import ImageRepository
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.security.keys import image_signer
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, dump_toml, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block, stack_on_free_ports

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
IMAGE, MODEL = "fl-sedan-os", "fl-sedan"
FLEET, ALONE = "FLT", "BAS"


def publish(settings: Settings, version: str, size: int) -> None:
    ImageRepository(settings.image_dir()).publish(
        os.urandom(size), name=IMAGE, version=version, target=MODEL, signer=image_signer(settings)
    )


def roll_out(
    client: httpx.Client,
    approver: dict[str, str],
    prefix: str,
    version: str,
    cars: int,
    rate: int,
    progress: Progress,
) -> dict[str, Any]:
    """Create, approve and follow one campaign to its end; its figures."""
    body = {"name": f"{prefix} {version}", "image": IMAGE, "version": version}
    body |= {"segment": {"vin_prefix": prefix}, "rate_per_min": rate}
    reply = client.post("/v1/campaigns", json=body)
    assert reply.status_code == 202, reply.text
    campaign_id = reply.json()["campaign_id"]
    approved = client.post(f"/v1/campaigns/{campaign_id}/approve", headers=approver)
    assert approved.status_code == 202, approved.text
    started = time.monotonic()
    task = progress.add_task(f"{prefix} -> {version}", total=cars)
    while True:
        campaign = client.get(f"/v1/campaigns/{campaign_id}").json()
        summary = campaign.get("summary") or {}
        ended = sum(n for state, n in (summary.get("counts") or {}).items() if state not in _OPEN)
        progress.update(task, completed=ended)
        if campaign["state"] in ("finished", "aborted", "paused"):
            break
        if time.monotonic() - started > 900:
            raise SystemExit(f"campaign {campaign_id} did not end: {campaign['state']}")
        time.sleep(0.5)
    wall_s = time.monotonic() - started
    progress.remove_task(task)
    listed = client.get(f"/v1/campaigns/{campaign_id}/vehicles", params={"limit": 10_000})
    vehicles = listed.json()["vehicles"]
    applied = [v["apply_ms"] / 1000 for v in vehicles if v.get("apply_ms") is not None]
    groups = []
    for group in campaign["groups"]:
        members = [v for v in vehicles if v["group"] == group["index"]]
        last = max((v.get("finished_at") or 0) for v in members)
        groups.append(
            {
                "cars": group["size"],
                "open_to_end_s": round((last - group["started_at"]) / 1000, 2),
            }
        )
    return {
        "campaign_id": campaign_id,
        "state": campaign["state"],
        "targets": len(vehicles),
        "succeeded": summary["counts"].get("succeeded", 0),
        "failures": summary.get("failures", {}),
        "create_to_end_s": round((campaign["ended_at"] - campaign["created_at"]) / 1000, 2)
        if campaign.get("ended_at")
        else None,
        "wall_s": round(wall_s, 2),
        "groups": groups,
        "apply_p50_s": round(percentile(applied, 0.5), 2),
        "apply_p95_s": round(percentile(applied, 0.95), 2),
        "apply_max_s": round(max(applied, default=float("nan")), 2),
    }


_OPEN = {"queued", "notified", "downloading", "downloaded", "installing"}


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-kib", type=int, default=256)
    parser.add_argument("--install-s", type=float, default=2.0, help="each car's install time")
    parser.add_argument("--rate", type=int, default=1000, help="orders a minute (the default)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ota.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetlink-ota-") as tmp:
        api_port = free_port_block(1)
        settings = load_settings(
            stack=stack_on_free_ports(Path(tmp) / "stack"),
            api={"port": api_port, "client_rate_per_s": 100_000, "client_burst": 100_000},
            gateway={"metrics_port": 0, "workers": 1},
            campaigns={"image_dir": str(Path(tmp) / "images"), "tick_s": 0.25},
        )
        config = Path(tmp) / "fleetlink.toml"
        config.write_text(dump_toml(settings))
        stack = LocalStack(settings.stack)
        fleetlink = [sys.executable, "-m", "fleetlink", "--config", str(config)]
        logs = Path(tmp) / "logs"
        logs.mkdir()
        log = logging.getLogger("bench")

        def program(name: str, *argv: str) -> Program:
            return Program(name, [*fleetlink, *argv], log=logs / f"{name}.log")

        def cars(name: str, count: int, prefix: str) -> Program:
            return program(
                name, "simulate", "--quiet", "--mode", "kinematic", "--stationary",
                "--model", MODEL, "--vehicles", str(count), "--vin-prefix", prefix,
                "--interval", "10", "--duration", "100000", "--connect-rate", "200",
                "--ota-install-s", str(args.install_s), "--ota-park-wait-s", "0.5",
            )  # fmt: skip

        services = Supervisor(
            [
                program("tracker", "tracker"),
                program("api", "api"),
                program("campaigns", "campaigns", "run"),
                cars("fleet", args.vehicles, FLEET),
                cars("alone", 1, ALONE),
            ],
            backoff_s=0.2,
            stop_timeout_s=30,
            log=log,
        )
        workers = Supervisor.of_workers(
            lambda index: worker_argv(config, index, drain_on_exit=True),
            1,
            backoff_s=0.5,
            stop_timeout_s=60,
            log=log,
        )
        done = threading.Event()
        runs: list[dict[str, Any]] = []
        try:
            with console.status("starting the stack, the platform and the fleet"):
                stack.up()
                ensure_worker_identities(settings, range(1))
                ensure_topics(KafkaClients.of(settings), settings.topic_map(), partitions=6)
                workers.start()
                services.start()
                threading.Thread(
                    target=keep_checking, args=(done, services, workers), daemon=True
                ).start()
                admin = token(settings, "bench-admin", UserRole.FLEET_ADMIN)
                approver = token(settings, "bench-approver", UserRole.FLEET_ADMIN)
                client = httpx.Client(
                    base_url=f"http://127.0.0.1:{api_port}", headers=admin, timeout=30
                )
                deadline = time.monotonic() + 300
                while len(online(client, FLEET)) < args.vehicles or not online(client, ALONE):
                    if time.monotonic() > deadline:
                        raise SystemExit("the fleet did not come online")
                    time.sleep(2)
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console) as progress:
                for run in range(args.runs):
                    version = f"2026.{48 + run}"
                    publish(settings, version, args.image_kib * 1024)
                    alone = roll_out(client, approver, ALONE, version, 1, args.rate, progress)
                    fleet = roll_out(
                        client, approver, FLEET, version, args.vehicles, args.rate, progress
                    )
                    one_update_s = alone["apply_max_s"]
                    # no rollout beats sending every order at the rate, then one update
                    floor_s = fleet["targets"] / (args.rate / 60) + one_update_s
                    runs.append(
                        {
                            "version": version,
                            "baseline_one_car_s": one_update_s,
                            "floor_s": round(floor_s, 2),
                            "fleet": fleet,
                            "ratio_to_floor": round(fleet["wall_s"] / floor_s, 2),
                        }
                    )
                    console.print(
                        f"run {run + 1}: {fleet['succeeded']}/{fleet['targets']} cars in "
                        f"{fleet['wall_s']} s (floor {floor_s:.1f} s; one car alone "
                        f"{one_update_s} s)"
                    )
        finally:
            done.set()
            services.stop()
            workers.stop(drain=True)
            stack.down()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "median_wall_s": statistics.median(r["fleet"]["wall_s"] for r in runs),
        "median_floor_s": statistics.median(r["floor_s"] for r in runs),
        "median_ratio_to_floor": statistics.median(r["ratio_to_floor"] for r in runs),
        "median_one_car_s": statistics.median(r["baseline_one_car_s"] for r in runs),
        "median_apply_p50_s": statistics.median(r["fleet"]["apply_p50_s"] for r in runs),
        "median_apply_p95_s": statistics.median(r["fleet"]["apply_p95_s"] for r in runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    table = Table(title=f"OTA to {args.vehicles} cars, {result['cpus']} cores, {result['date']}")
    for column in ("run", "cars updated", "wall s", "floor s", "ratio", "one car s",
                   "apply p50 s", "apply p95 s", "groups: open to end s"):  # fmt: skip
        table.add_column(column, justify="right")
    for index, run in enumerate(runs, 1):
        fleet = run["fleet"]
        table.add_row(
            str(index),
            f"{fleet['succeeded']}/{fleet['targets']}",
            str(fleet["wall_s"]),
            str(run["floor_s"]),
            str(run["ratio_to_floor"]),
            str(run["baseline_one_car_s"]),
            str(fleet["apply_p50_s"]),
            str(fleet["apply_p95_s"]),
            ", ".join(f"{g['cars']}: {g['open_to_end_s']}" for g in fleet["groups"]),
        )
    console.print(table)
    console.print(f"wrote {args.out}")
    ok = all(r["fleet"]["succeeded"] == r["fleet"]["targets"] == args.vehicles for r in runs)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
