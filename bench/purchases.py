"""Features on demand under chaos: the ledger check, purchases per second, webhook to feature on.

Starts a local stack, the gateway, the tracker, the API, the payment provider simulator (chaos
on: duplicated, reordered, late webhooks, the API unreachable for it at first, some declines)
and the purchase processor, all as processes under a supervisor that restarts what dies, and
``--vehicles`` simulated cars (a mixed fleet: models, firmware, a few lacking hardware).

1. Baseline: ``flash`` commands to other cars at ``--command-rate`` for ``--seconds``, round
   trip POST -> ``succeeded`` (polled), with no purchase going on.
2. Burst: ``--purchases`` purchases as fast as eight owners' clients get answers (each retried
   with its idempotency key on any failure): purchases per second.
3. Load: once the burst's purchases have ended, the same commands again while purchases go on
   at ``--load-rate`` a second: the commands' p99 beside the baseline's (a purchase must not
   stall other cars' commands), and once more after, alone.
4. Chaos: another ``--purchases`` purchases at ``--chaos-rate`` a second while the API and the
   purchase processor are killed (SIGKILL) at random every ``--kill-every`` s on average.

Then it waits until every purchase has ended and checks the ledger against Kafka: charges at the
provider = completed + refunded purchases, no purchase charged twice, each purchase in exactly
one terminal state, refunds at the provider = refunded purchases, distinct activation commands =
entitlements turned on. Webhook to feature on: from the API receiving the provider's
``payment_intent.succeeded`` (``received_at``) to the purchase's ``completed`` step.

    .venv/bin/python bench/purchases.py --vehicles 1000 --purchases 200
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from _common import exit_cleanly_on_sigterm, percentile
from _purchases import TERMINAL, Commands, Load, Shop, keep_checking, killer, online, settle, token
from rich.console import Console
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.supervisor import Program, Supervisor
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.contracts.codec import decode
from fleetlink.contracts.models import Command, CommandName
from fleetlink.contracts.purchases import Entitlement, PaymentRecord, ProviderEvent, Purchase
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, dump_toml, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block, stack_on_free_ports

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
CHAOS = {
    "confirm_delay_s": 0.3,
    "duplicate_p": 0.2,
    "reorder_p": 0.3,
    "max_delay_s": 2.0,
    "down_for_s": 5.0,
    "decline_p": 0.05,
    "retry_first_s": 0.5,
    "retry_factor": 1.5,
    "max_attempts": 40,
}


def ledger_check(
    settings: Settings, provider: dict[str, Any], found: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    kafka = KafkaClients.of(settings)
    topics = settings.topic_map()
    ours = set(found)
    charges = Counter(c["purchase_id"] for c in provider["charges"] if c["purchase_id"] in ours)
    refunds = Counter(r["purchase_id"] for r in provider["refunds"] if r["purchase_id"] in ours)
    states = Counter(p["state"] for p in found.values())
    # a free trial is entitled and turned on without a charge (its first charge is a renewal)
    trials = {pid for pid, p in found.items() if p.get("trial")}
    paid = Counter(p["state"] for pid, p in found.items() if pid not in trials)
    terminal_steps = [
        sum(step["state"] in TERMINAL for step in p["history"]) for p in found.values()
    ]
    turned_on = {
        (e.key, e.version)
        for e in (
            decode(Entitlement, r.value())
            for r in read_topic(kafka, topics[KafkaTopic.ENTITLEMENTS])
        )
        if e.active
    }
    activations = {
        c.command_id
        for c in (
            decode(Command, r.value())
            for r in read_topic(kafka, topics[KafkaTopic.COMMANDS])
            if b'"feature.activate"' in (r.value() or b"")
        )
        if c.name is CommandName.FEATURE_ACTIVATE
    }
    purchases = {}
    for record in read_topic(kafka, topics[KafkaTopic.PURCHASES]):
        purchase = decode(Purchase, record.value())
        purchases[purchase.purchase_id] = purchase
    received: dict[str, int] = {}
    for record in read_topic(kafka, topics[KafkaTopic.PAYMENTS]):
        event = decode(PaymentRecord, record.value())  # type: ignore[arg-type]
        if isinstance(event, ProviderEvent) and event.type == "payment_intent.succeeded":
            received.setdefault(event.purchase_id, event.received_at)
    to_active = [
        next(s.ts for s in p.history if s.state == "completed") - received[p.purchase_id]
        for p in purchases.values()
        if p.state == "completed" and p.purchase_id in received
    ]
    return {
        "purchases": len(found),
        "states": dict(states),
        "charges": sum(charges.values()),
        "charged_twice": sum(1 for n in charges.values() if n > 1),
        "completed_plus_refunded": paid["completed"] + paid["refunded"],
        "trials": len(trials),
        "trials_charged": sum(charges[pid] for pid in trials),
        "refunds": sum(refunds.values()),
        "one_terminal_state_each": all(n == 1 for n in terminal_steps),
        "activation_commands": len(activations),
        "entitlements_on": len(turned_on),
        "webhook_to_active_p50_ms": round(percentile(to_active, 0.5), 0),
        "webhook_to_active_p99_ms": round(percentile(to_active, 0.99), 0),
        "webhooks": provider["webhooks"],
    }


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=1000, help="half buy, half get commands")
    parser.add_argument("--purchases", type=int, default=200, help="in the burst, and under chaos")
    parser.add_argument("--command-rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="baseline commands")
    parser.add_argument("--kill-every", type=float, default=6.0)
    parser.add_argument("--chaos-rate", type=float, default=5.0, help="purchases/s under kills")
    parser.add_argument("--load-rate", type=float, default=5.0, help="purchases/s beside commands")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "purchases.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetlink-fod-") as tmp:
        api_port, sim_port = free_port_block(1), free_port_block(1)
        settings = load_settings(
            stack=stack_on_free_ports(Path(tmp) / "stack"),
            api={"port": api_port, "client_rate_per_s": 100_000, "client_burst": 100_000},
            gateway={"metrics_port": 0, "workers": 1},
            payments={"simulator": {"port": sim_port, **CHAOS}},
            purchases={
                "activation_ttl_s": 30,
                "provider_retry_s": 0.5,
                "transaction_timeout_s": 10,
            },
        )
        config = Path(tmp) / "fleetlink.toml"
        config.write_text(dump_toml(settings))
        api_url = f"http://127.0.0.1:{api_port}"
        stack = LocalStack(settings.stack)
        fleetlink = [sys.executable, "-m", "fleetlink", "--config", str(config)]
        log = logging.getLogger("bench")
        logs = Path(tmp) / "logs"
        logs.mkdir()

        def program(name: str, *argv: str) -> Program:
            return Program(name, [*fleetlink, *argv], log=logs / f"{name}.log")

        half = args.vehicles // 2
        services = Supervisor(
            [
                program("tracker", "tracker"),
                program("api", "api"),
                program("payments", "payments", "simulate"),
                program("purchases", "purchases", "run"),
                program("buyers", "simulate", "--quiet", "--mode", "kinematic", "--vehicles",
                        str(half), "--vin-prefix", "FEA", "--interval", "5",
                        "--duration", "100000"),
                program("others", "simulate", "--quiet", "--mode", "kinematic", "--vehicles",
                        str(args.vehicles - half), "--vin-prefix", "CMB", "--interval", "5",
                        "--duration", "100000", "--seed", "2"),
            ],
            backoff_s=0.2,
            stop_timeout_s=30,
            log=log,
        )  # fmt: skip
        workers = Supervisor.of_workers(
            lambda index: worker_argv(config, index, drain_on_exit=True),
            1,
            backoff_s=0.5,
            stop_timeout_s=60,
            log=log,
        )
        stop = threading.Event()
        done = threading.Event()
        kills: Counter[str] = Counter()
        result: dict[str, Any] = {}
        try:
            with console.status("starting the stack and the platform"):
                stack.up()
                ensure_worker_identities(settings, range(1))
                ensure_topics(KafkaClients.of(settings), settings.topic_map(), partitions=6)
                admin = token(settings, "bench", UserRole.FLEET_ADMIN)
                workers.start()
                services.start()
            checker = threading.Thread(
                target=keep_checking, args=(done, services, workers), daemon=True
            )
            checker.start()
            client = httpx.Client(base_url=api_url, headers=admin, timeout=10)
            deadline = time.monotonic() + 240
            while (
                len(online(client, "FEA")) < half
                or len(online(client, "CMB")) < args.vehicles - half
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("the fleet did not come online")
                time.sleep(2)
            buyers, others = online(client, "FEA"), online(client, "CMB")
            owner = token(settings, "bench-owner", UserRole.OWNER, buyers)
            commands = Commands(client, others, args.command_rate)
            with console.status("warming up, then the baseline: commands alone"):
                commands.run(5)  # Kafka's JIT compiler takes the first seconds
                load = Load(services)
                baseline = list(commands.run(args.seconds))
                baseline_cores = load.cores()
            shop = Shop(api_url, owner, buyers, seed=1)
            with console.status(f"burst: {args.purchases} purchases as fast as answered"):
                span = shop.buy(args.purchases)
            burst = len(shop.purchases)
            with console.status("the burst's purchases ending (activations, refunds)"):
                settle(client, list(shop.purchases), timeout=120)
            loaded: list[float] = []
            runner = threading.Thread(target=lambda: loaded.extend(commands.run(args.seconds)))
            runner.start()
            paced = int(args.load_rate * args.seconds)
            with console.status(f"load: {paced} purchases at {args.load_rate}/s beside commands"):
                load = Load(services)
                shop.buy(paced, rate=args.load_rate)
                runner.join()
                loaded_cores = load.cores()
            with console.status("the baseline again: commands alone"):
                time.sleep(5)
                after = list(commands.run(args.seconds))
            with console.status(f"chaos: {args.purchases} purchases, API and processor killed"):
                chaos = threading.Thread(
                    target=killer, args=(services, stop, args.kill_every, kills)
                )
                chaos.start()
                chaos_span = shop.buy(args.purchases, rate=args.chaos_rate)
                stop.set()
                chaos.join()
            found = settle(client, list(shop.purchases), timeout=180)
            provider = httpx.get(f"http://127.0.0.1:{sim_port}/v1/test/ledger", timeout=10).json()
            result = ledger_check(settings, provider, found)
            result |= {
                "date": time.strftime("%Y-%m-%d"),
                "cpus": os.cpu_count(),
                "args": {k: str(v) for k, v in vars(args).items()},
                "purchases_per_s_burst": round(burst / span, 1),
                "chaos_s": round(chaos_span, 1),
                "refused_by_api": dict(shop.refused),
                "client_retries": shop.retries,
                "kills": dict(kills),
                "commands_baseline_p50_ms": round(percentile(baseline, 0.5), 1),
                "commands_baseline_p99_ms": round(percentile(baseline, 0.99), 1),
                "commands_under_purchases_p50_ms": round(percentile(loaded, 0.5), 1),
                "commands_under_purchases_p99_ms": round(percentile(loaded, 0.99), 1),
                "commands_after_p50_ms": round(percentile(after, 0.5), 1),
                "commands_after_p99_ms": round(percentile(after, 0.99), 1),
                "commands_failed": commands.failed,
                "cores_baseline": baseline_cores,
                "cores_under_purchases": loaded_cores,
            }
        finally:
            stop.set()
            done.set()
            services.stop()
            workers.stop(drain=True)
            stack.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    table = Table(
        title=f"features on demand under chaos, {result.get('cpus')} cores, {result.get('date')}"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in result.items():
        if name != "args":
            table.add_row(name, json.dumps(value))
    console.print(table)
    ok = (
        result["charges"] == result["completed_plus_refunded"]
        and result["charged_twice"] == 0
        and result["trials_charged"] == 0
        and result["one_terminal_state_each"]
        and result["refunds"] == result["states"].get("refunded", 0)
        and result["activation_commands"] == result["entitlements_on"]
        and sum(result["states"].values()) == result["purchases"]
        and all(state in TERMINAL for state in result["states"])
    )
    console.print(f"ledger check: [bold]{'PASSED' if ok else 'FAILED'}[/]   wrote {args.out}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
