"""Predictive maintenance against the simulator's truth: recall, precision and time to detect per
fault kind, and the false alarms of healthy cars.

Starts a local stack and the maintenance app (``fleetlink app run maintenance``, simulated-clock
mode, the service's own settings), then per seed simulates a week (``--days``) of ``--vehicles``
cars into Kafka in simulated time (``sim.health_run``: no SUMO, only the cars' sensors; telemetry
every 5 minutes while driving, every hour while parked). A seeded share of cars has one fault
each: a slow leak (10-30 kPa a day, fixed 2-4 days later), a puncture, a trouble code raised and
cleared, a service coming due; every car lives through the same weather (a -15 °C night among
them), warms its tires by driving, and reports through jittery sensors. The app's
``fleet.alerts`` are scored against what the cars really had (the baseline: the simulator's
ground truth, same run).

A battery's fade cannot show in a week (2 %/yr is 0.04 % a week; a BMS reports 0.1 % steps and
wanders by more), and the app judges it over 90 days of daily means: a second run per seed
simulates ``--battery-days`` (150) with hourly reports while driving and every 6 hours while
parked, a third of the cars fading at 8-15 %/yr.

    .venv/bin/python bench/maintenance_quality.py --seeds 7,11,23 --vehicles 200
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _common import exit_cleanly_on_sigterm
from _quality import ROOT, app_running, console, medians, per_seed, run_settings, save
from rich.table import Table

from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.sim.health import HealthPlan
from fleetlink.sim.health_run import HealthRun
from fleetlink.sim.maintenance_quality import MaintenanceRun, measure_maintenance

MAINTENANCE_TOPICS = (KafkaTopic.SERVICES, KafkaTopic.ALERT_ACKS, KafkaTopic.ALERTS)
WEEK = HealthPlan(leak=0.1, puncture=0.05, fade=0.0, dtc=0.1, service=0.1)
SEASON = HealthPlan(leak=0.0, puncture=0.0, fade=0.33, dtc=0.0, service=0.0)


def one_run(base: Settings, tmp: Path, seed: int, label: str, **run: Any) -> MaintenanceRun:
    settings, config = run_settings(base, tmp, MAINTENANCE_TOPICS)
    with (
        app_running(settings, config, "maintenance", f"{label}-{seed}"),
        console.status(f"seed {seed}: {label}") as status,
    ):
        return measure_maintenance(
            settings,
            HealthRun(seed=seed, **run),
            progress=lambda d: status.update(f"seed {seed}: {label}, {d:.0f} simulated days"),
        )


def rows_of(seed: int, label: str, result: MaintenanceRun) -> list[dict[str, Any]]:
    q = result.quality
    common = {
        "seed": seed,
        "run": label,
        "healthy_cars": q.healthy_cars,
        "healthy_tire_battery_alerts": q.healthy_tire_battery_alerts,
        "telemetry": result.run.telemetry,
        "wall_s": result.run.wall_s,
        "catch_up_s": result.catch_up_s,
    }
    return [
        {**common, **{f: getattr(k, f) for f in k.__struct_fields__}}
        for k in q.kinds
        if k.faults or k.alerts
    ]


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--days", type=float, default=7.0, help="simulated days")
    parser.add_argument("--battery-days", type=float, default=150.0, help="0: no battery run")
    parser.add_argument("--no-week", action="store_true", help="the battery run alone")
    parser.add_argument("--battery-vehicles", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "maintenance.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []

    def one(base: Settings, tmp: Path, seed: int) -> dict[str, Any]:
        if not args.no_week:
            week = one_run(
                base, tmp, seed, "week", vehicles=args.vehicles, days=args.days, plan=WEEK
            )
            rows.extend(rows_of(seed, "week", week))
        if args.battery_days:
            season = one_run(
                base,
                tmp,
                seed,
                "season",
                vehicles=args.battery_vehicles,
                days=args.battery_days,
                plan=SEASON,
                report_s=3600.0,
                parked_report_s=6 * 3600.0,
            )
            rows.extend(rows_of(seed, "season", season))
        return {"seed": seed, "rows": len(rows)}

    per_seed(args, "fleetlink-mq-", one)
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(title="Maintenance alerts against the simulator's truth", title_justify="left")
    columns = ("seed", "run", "kind", "faults", "alerts", "recall", "precision")
    for column in (*columns, "detect p50/max h", "healthy: tire/battery alerts"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["seed"]),
            r["run"],
            r["kind"],
            str(r["faults"]),
            str(r["alerts"]),
            _f(r["recall"]),
            _f(r["precision"]),
            "/".join(f"{v:.1f}" for v in r["detect_h"]) or "-",
            f"{r['healthy_tire_battery_alerts']} of {r['healthy_cars']} cars",
        )
    console.print(table)
    summary = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        summary[kind] = medians(mine, ("recall", "precision"))
        delays = [r["detect_h"][0] for r in mine if r["detect_h"]]
        summary[kind]["detect_h_median_of_runs"] = (
            sorted(delays)[len(delays) // 2] if delays else None
        )
    summary["healthy_tire_battery_alerts"] = sum(
        r["healthy_tire_battery_alerts"] for r in {(r["seed"], r["run"]): r for r in rows}.values()
    )
    save(args, summary, rows)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
