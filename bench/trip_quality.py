"""Fleet tracking's trips against the simulator's own: recall, precision, start/end and distance.

Starts a local stack and the fleet app (``fleetlink app run fleet``, simulated-clock mode, the
service's own settings: a trip ends after ``apps.fleet.stop_s`` = 5 minutes standing), then for
each seed simulates ``--duration`` seconds (an hour) of SUMO traffic (``--vehicles`` cars in the
12 x 12-block grid city) in which the fleet's cars drive from a curb spot to a curb spot (trips of
``--trip`` seconds of free-flow driving, stops at red lights inside them) and stay there between
trips (``--stay`` seconds: longer than the 5 minutes that end a trip, short enough for two or
three trips per car in the hour; half the cars start parked), written straight into Kafka in
simulated time. The app's ``fleet.trips`` are scored against the trips
the simulator drove (the baseline: its ground truth, same run), over the trips that started
after ``--warmup`` and ended ``stop_s`` and a minute before the end:

- **recall**: of the true trips, the share found (a closed trip of the same car starting and
  ending within 30 s of it); **precision**: of the trips found, the share that are true;
- start and end errors (median, largest) and the distance error against the simulator's
  odometer (share within 2 %).

    .venv/bin/python bench/trip_quality.py --seeds 7,11,23 --duration 3600 --vehicles 300
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
from fleetlink.sim.curb import ParkingPlan, Stay
from fleetlink.sim.trip_quality import TripRun, measure_trips

FLEET_TOPICS = (KafkaTopic.PRESENCE, KafkaTopic.VEHICLE_STATE, KafkaTopic.TRIPS)


def one_run(base: Settings, tmp: Path, args: argparse.Namespace, seed: int) -> TripRun:
    settings, config = run_settings(base, tmp, FLEET_TOPICS)
    with app_running(settings, config, "fleet", str(seed)), console.status(f"seed {seed}") as st:
        return measure_trips(
            settings,
            vehicles=args.vehicles,
            seed=seed,
            duration_s=args.duration,
            warmup_s=args.warmup,
            speed=args.speed,
            plan=ParkingPlan(
                trip_s=_range(args.trip),
                stays=(Stay(1.0, *_range(args.stay)),),
                start_parked_share=0.5,
            ),
            progress=lambda s: st.update(f"seed {seed}: {s:.0f} simulated s"),
        )


def row(seed: int, result: TripRun) -> dict[str, Any]:
    q = result.quality
    return {
        "seed": seed,
        "true_trips": q.true_trips,
        "found_trips": q.found_trips,
        "matched": q.matched,
        "recall": q.recall,
        "precision": q.precision,
        "distance_within_2pct": q.distance_within,
        "start_error_s": q.start_error_s,
        "end_error_s": q.end_error_s,
        "distance_error": q.distance_error,
        "trip_records": result.records,
        "telemetry": result.run.telemetry,
        "wall_s": result.run.wall_s,
        "catch_up_s": result.catch_up_s,
    }


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--duration", type=float, default=3600.0, help="simulated seconds")
    parser.add_argument("--warmup", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--vehicles", type=int, default=300)
    parser.add_argument("--speed", type=float, default=20.0, help="x real time, at most")
    parser.add_argument("--trip", default="180,900", help="s of driving: min,max")
    parser.add_argument("--stay", default="420,1200", help="s at the curb: min,max")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trips.json")
    args = parser.parse_args()
    rows = per_seed(
        args, "fleetlink-tq-", lambda base, tmp, seed: row(seed, one_run(base, tmp, args, seed))
    )
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(title="Trips against the simulator's own", title_justify="left")
    columns = ("seed", "true", "found", "recall", "precision", "dist. within 2 %")
    for column in (*columns, "start err p50/max s", "end err p50/max s", "wall s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["seed"]),
            str(r["true_trips"]),
            str(r["found_trips"]),
            _f(r["recall"]),
            _f(r["precision"]),
            _f(r["distance_within_2pct"]),
            "/".join(f"{v:.1f}" for v in r["start_error_s"]),
            "/".join(f"{v:.1f}" for v in r["end_error_s"]),
            f"{r['wall_s']:.0f}",
        )
    console.print(table)

    save(args, medians(rows, ("recall", "precision", "distance_within_2pct")), rows)


def _range(text: str) -> tuple[float, float]:
    low, high = (float(part) for part in text.split(","))
    return low, high


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
