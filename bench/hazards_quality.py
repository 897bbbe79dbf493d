"""Hazard warnings against the simulator's truth: recall, precision and delay.

Starts a local stack and the hazards app (``fleetlink app run hazards``, simulated-clock mode,
default rules: passing cars clear hazards, so telemetry is read too), then for each seed:

- **scenario**: ``--duration`` simulated seconds of SUMO traffic (``--vehicles`` cars in the
  12 x 12-block grid city with traffic lights at every junction) with ``--ice`` icy stretches
  and ``--breakdowns`` broken-down cars placed over the run; the app's ``fleet.hazards`` scored
  against the sites (``fleetlink.sim.hazard_truth``): recall, precision, delay from a site's
  start and from its first report to the first confirmation.
- **normal traffic**: the same length of traffic with no site at all: every confirmed hazard
  is a false one (the goal is zero).

Everything is written straight into Kafka in simulated time (``fleetlink.sim.accelerated``), at
most ``--speed`` times as fast as real time; each run on topics of its own. The baseline is the
simulator's own truth, in the same run.

    .venv/bin/python bench/hazards_quality.py --seeds 7,11,23 --duration 600 --vehicles 600
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import msgspec
from _common import exit_cleanly_on_sigterm
from _quality import ROOT, app_running, console, on_a_stack, run_settings, save
from rich.table import Table

from fleetlink.settings import Settings
from fleetlink.sim.hazard_quality import HazardRun, measure, site_plans


def one_run(
    base: Settings, tmp: Path, args: argparse.Namespace, seed: int, *, sites: bool
) -> HazardRun:
    settings, config = run_settings(base, tmp)
    with app_running(settings, config, "hazards", f"{seed}-{sites}"):
        plans = site_plans(args.duration, ice=args.ice, breakdowns=args.breakdowns) if sites else []
        with console.status(f"seed {seed}, {'scenario' if sites else 'normal traffic'}") as st:
            return measure(
                settings,
                vehicles=args.vehicles,
                seed=seed,
                duration_s=args.duration,
                plans=plans,
                speed=args.speed,
                progress=lambda s: st.update(f"seed {seed}: {s:.0f} simulated s"),
            )


def row(kind: str, seed: int, result: HazardRun) -> dict[str, Any]:
    q = result.quality
    delays = [r.delay_s for r in q.per_site if r.delay_s is not None]
    after_report = [r.delay_after_report_s for r in q.per_site if r.delay_after_report_s]
    return {
        "run": kind,
        "seed": seed,
        "sites": q.sites,
        "found": q.found,
        "confirmed": q.confirmed,
        "false": q.false_positives,
        "recall": q.recall,
        "precision": q.precision,
        "delay_p50_s": statistics.median(delays) if delays else None,
        "delay_max_s": max(delays) if delays else None,
        "after_report_p50_s": statistics.median(after_report) if after_report else None,
        "per_kind": {
            kind.value: [r.found for r in q.per_site if r.kind is kind]
            for kind in {r.kind for r in q.per_site}
        },
        "hazards_per_site_max": max((r.hazards for r in q.per_site), default=0),
        "per_site": [msgspec.to_builtins(r) for r in q.per_site],
        "events": result.run.events,
        "telemetry": result.run.telemetry,
        "wall_s": result.run.wall_s,
        "catch_up_s": result.catch_up_s,
        "false_hazards": [msgspec.to_builtins(h) for h in q.false_hazards],
    }


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--duration", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--vehicles", type=int, default=600)
    parser.add_argument("--ice", type=int, default=3)
    parser.add_argument("--breakdowns", type=int, default=3)
    parser.add_argument("--speed", type=float, default=10.0, help="x real time, at most")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hazards.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict[str, Any]] = []

    def runs(base: Settings, tmp: Path) -> None:
        for seed in seeds:
            for sites in (True, False):
                result = one_run(base, tmp, args, seed, sites=sites)
                rows.append(row("scenario" if sites else "normal", seed, result))
                console.print({k: v for k, v in rows[-1].items() if k != "false_hazards"})

    on_a_stack("fleetlink-hq-", runs)
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(title="Hazards against the simulator's truth", title_justify="left")
    for column in ("run", "seed", "sites", "found", "confirmed", "false", "recall", "precision"):
        table.add_column(column, justify="right")
    table.add_column("delay p50 / max s", justify="right")
    table.add_column("after 1st report p50 s", justify="right")
    for r in rows:
        table.add_row(
            r["run"],
            str(r["seed"]),
            str(r["sites"]),
            str(r["found"]),
            str(r["confirmed"]),
            str(r["false"]),
            "-" if r["recall"] is None else f"{r['recall']:.2f}",
            "-" if r["precision"] is None else f"{r['precision']:.2f}",
            "-" if r["delay_p50_s"] is None else f"{r['delay_p50_s']:.0f} / {r['delay_max_s']:.0f}",
            "-" if r["after_report_p50_s"] is None else f"{r['after_report_p50_s']:.0f}",
        )
    console.print(table)
    scenario = [r for r in rows if r["run"] == "scenario"]
    normal = [r for r in rows if r["run"] == "normal"]
    sites = sum(r["sites"] for r in scenario)
    summary = {
        "recall": sum(r["found"] for r in scenario) / sites if sites else None,
        "precision_scenario": statistics.median(
            r["precision"] for r in scenario if r["precision"] is not None
        )
        if scenario
        else None,
        "false_in_normal_traffic": sum(r["confirmed"] for r in normal),
        "delay_p50_s_median": statistics.median(
            r["delay_p50_s"] for r in scenario if r["delay_p50_s"] is not None
        )
        if scenario
        else None,
    }
    save(args, summary, rows)


if __name__ == "__main__":
    main()
