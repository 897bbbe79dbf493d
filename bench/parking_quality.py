"""The free-parking finder against the simulator's truth: precision, recall and calibration.

Starts a local stack and the parking app (``fleetlink app run parking``, simulated-clock mode,
passing cars read from telemetry), then for each seed simulates ``--duration`` seconds of SUMO
traffic (``--vehicles`` cars in the 12 x 12-block grid city) in which cars drive trips and park
at the curb between them, while other (unconnected) cars come and go at the curb: a free spot is
taken after 15 minutes on average, a car stays two hours; 3% of the curb is driveways and bus
stops, free on every pass. The cars report the gaps their side sensors see (up to 55 km/h, 5-10%
missed, metres of noise), and their parking and leaving.

Every minute after ``--warmup`` (by default the first of two hours: a finder in service has
seen its city for days) the finder is asked (its view at that moment: the latest record
of each cell of ``fleet.parking``, each spot's p at that moment) and compared with the truth:

- **precision**: of the spots it gives p >= 0.5, the share that is really free (a free parking
  spot of the truth within 10 m of its middle, on the same side of the same street);
- **recall**: of the really free spots, the share such a spot matches;
- **baseline, same run**: every spot the finder holds whatever its p (a gap map without
  probabilities), and the calibration: per band of p, the share really free.

Driveways are told apart over days in a city (Bosch); here the finder's no-parking rule is
scaled to the hour: ``--no-parking-span`` seconds (default 2700, three times a spot's mean free
time).

    .venv/bin/python bench/parking_quality.py --seeds 7,11,23 --duration 7200 --warmup 3600
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import msgspec
from _common import exit_cleanly_on_sigterm
from _quality import ROOT, app_running, console, medians, per_seed, run_settings, save
from rich.table import Table

from fleetlink.settings import Settings
from fleetlink.sim.parking_quality import ParkingRun, measure


def one_run(base: Settings, tmp: Path, args: argparse.Namespace, seed: int) -> ParkingRun:
    parking = base.apps.parking.model_copy(update={"no_parking_min_span_s": args.no_parking_span})
    base = base.model_copy(update={"apps": base.apps.model_copy(update={"parking": parking})})
    settings, config = run_settings(base, tmp)
    with app_running(settings, config, "parking", str(seed)), console.status(f"seed {seed}") as st:
        return measure(
            settings,
            vehicles=args.vehicles,
            seed=seed,
            duration_s=args.duration,
            warmup_s=args.warmup,
            speed=args.speed,
            progress=lambda s: st.update(f"seed {seed}: {s:.0f} simulated s"),
        )


def row(seed: int, result: ParkingRun) -> dict[str, Any]:
    q = result.quality
    return {
        "seed": seed,
        "queries": q.queries,
        "reported": q.reported,
        "precision": q.precision,
        "recall": q.recall,
        "precision_any_p": q.precision_any,
        "recall_any_p": q.recall_any,
        "truly_free_per_query": round(q.truly_free / q.queries) if q.queries else None,
        "driveways_reported": q.no_parking_reported,
        "calibration": [msgspec.to_builtins(b) for b in q.calibration],
        "events": {str(k): v for k, v in result.run.events.items()},
        "telemetry": result.run.telemetry,
        "records": result.records,
        "wall_s": result.run.wall_s,
        "catch_up_s": result.catch_up_s,
    }


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--duration", type=float, default=7200.0, help="simulated seconds")
    parser.add_argument("--warmup", type=float, default=3600.0, help="simulated seconds")
    parser.add_argument("--vehicles", type=int, default=300)
    parser.add_argument("--speed", type=float, default=20.0, help="x real time, at most")
    parser.add_argument("--no-parking-span", type=float, default=2700.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "parking.json")
    args = parser.parse_args()
    rows = per_seed(
        args,
        "fleetlink-pq-",
        lambda base, tmp, seed: row(seed, one_run(base, tmp, args, seed)),
        ("calibration",),
    )
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(title="Free parking against the simulator's truth", title_justify="left")
    columns = ("seed", "reported", "precision", "recall", "any p: precision", "any p: recall")
    for column in (*columns, "driveways", "truly free", "wall s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["seed"]),
            str(r["reported"]),
            _f(r["precision"]),
            _f(r["recall"]),
            _f(r["precision_any_p"]),
            _f(r["recall_any_p"]),
            str(r["driveways_reported"]),
            str(r["truly_free_per_query"]),
            f"{r['wall_s']:.0f}",
        )
    console.print(table)

    summary = medians(rows, ("precision", "recall", "precision_any_p", "recall_any_p"))
    plot(rows, ROOT / "BENCHMARKS-parking.png")
    save(args, summary, rows)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Calibration, pooled over the seeds: the finder's p against the share really free."""
    pooled: dict[float, list[float]] = {}
    for r in rows:
        for b in r["calibration"]:
            if b["spots"]:
                entry = pooled.setdefault(b["low"], [0, 0.0, 0.0])
                entry[0] += b["spots"]
                entry[1] += b["mean_p"] * b["spots"]
                entry[2] += b["free_share"] * b["spots"]
    points = sorted((total / n, free / n, n) for n, total, free in pooled.values())
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    axes.plot([p for p, _, _ in points], [f for _, f, _ in points], marker="o", label="finder")
    axes.set(xlabel="p free (finder)", ylabel="share really free (truth)", xlim=(0, 1), ylim=(0, 1))
    axes.set_title("Free-parking finder: calibration")
    axes.legend(loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
