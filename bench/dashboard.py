"""The dashboard at fleet scale: how long from a vehicle's state to the map painting it, and how
the page's memory grows, with N vehicles at 1 Hz for a minute.

A synthetic producer writes N vehicle states a second straight into ``fleet.vehicle-state`` (as
the fleet app would; 5,000 full agents would saturate 2 cores before the page does), stamped
with the time they are written. ``fleetlink api`` runs as a process; Debian's chromium (headless,
through Playwright) opens the dashboard logged in as an admin. The page records each paint: the
newest state in the frame drawn, when the frame arrived, when the map was idle again.

- update-to-paint: paint done minus the newest state's time (Kafka, API, SSE, redraw);
- **baseline, same run:** the frame's arrival minus the same time (all but the redraw), and the
  same measurement with ``--small`` vehicles;
- memory: the page's JS heap after a forced garbage collection, at the start and the end.

    .venv/bin/python bench/dashboard.py --vehicles 5000 --small 50 --duration 60
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import exit_cleanly_on_sigterm
from _quality import ROOT, console, on_a_stack, save
from playwright.sync_api import sync_playwright

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.polling import wait_until
from fleetlink.adapters.runner import stop_children
from fleetlink.contracts.codec import encode
from fleetlink.contracts.fleet import Motion, VehicleState
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.sessions import dashboard_link, issue_login_code
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings, dump_toml
from fleetlink.sim.flood import vins_for
from fleetlink.sim.streets import write_street_map
from fleetlink.stack.ports import free_port_block

USER = "bench-admin"
HEAP = "() => { window.gc(); return performance.memory.usedJSHeapSize; }"


class Producer:
    """``vehicles`` states a second, each car a step further on a random walk."""

    def __init__(self, settings: Settings, vehicles: int, prefix: str) -> None:
        self._producer = KafkaClients.of(settings).producer(linger_ms=20)
        self._topic = settings.topic_map()[KafkaTopic.VEHICLE_STATE]
        rng = random.Random(7)
        self._cars = [
            [vin, 52.511 + rng.random() * 0.014, 13.381 + rng.random() * 0.023]
            for vin in vins_for(vehicles, prefix)
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        rng = random.Random(11)
        started = time.monotonic()
        second = 0
        while not self._stop.wait(max(0.0, started + second - time.monotonic())):
            second += 1
            for car in self._cars:
                car[1] += rng.uniform(-0.00005, 0.00005)
                car[2] += rng.uniform(-0.00008, 0.00008)
                now = time.time_ns() // 1_000_000
                state = VehicleState(
                    vin=str(car[0]),
                    ts=now,
                    online=True,
                    last_seen=now,
                    motion=Motion.DRIVING,
                    latitude=float(car[1]),
                    longitude=float(car[2]),
                    speed_kmh=30.0,
                )
                self._producer.produce(self._topic, encode(state), str(car[0]).encode())
                self._producer.poll(0)
            self._producer.flush(5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_run(
    base: Settings, tmp: Path, vehicles: int, duration_s: float, run: str
) -> dict[str, Any]:
    """One API, one page, ``vehicles`` cars for ``duration_s`` after a 10 s warm-up."""
    topics = base.topics.model_copy(update={"prefix": base.topic_map().prefixed(run).prefix})
    api = base.api.model_copy(update={"port": free_port_block(1)})
    settings = base.model_copy(update={"topics": topics, "api": api})
    config = tmp / f"{run}.toml"
    config.write_text(dump_toml(settings))
    ensure_topics(KafkaClients.of(settings), settings.topic_map(), partitions=6)
    write_street_map(settings.street_map_file())
    UserRegistry(settings.users_file()).put(User(USER, UserRole.FLEET_ADMIN))
    code = issue_login_code(signing_key(settings, SigningPurpose.API_TOKENS), USER, 300)
    origin = f"http://127.0.0.1:{api.port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "fleetlink", "--config", str(config), "api"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    producer = Producer(settings, vehicles, run.upper()[:3])
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"{origin}/healthz", timeout=1).is_success
            except httpx.HTTPError:
                return False

        if not wait_until(answers, timeout=60, interval=0.5):
            raise SystemExit("the API did not answer within 60 s")
        producer.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--js-flags=--expose-gc"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(dashboard_link(origin, code))
            page.wait_for_function(
                "() => window.fleetlinkMap && window.fleetlinkMap.queryRenderedFeatures("
                f"{{layers: ['vehicles']}}).length >= {int(vehicles * 0.9)}",
                timeout=60_000,
            )
            time.sleep(10)  # warm-up: the first frames carry the whole fleet
            page.evaluate("() => { window.fleetlinkPaints.length = 0; }")
            heap_start = page.evaluate(HEAP)
            with console.status(f"{vehicles} vehicles for {duration_s:.0f} s"):
                time.sleep(duration_s)
            paints = page.evaluate("() => window.fleetlinkPaints.slice()")
            heap_end = page.evaluate(HEAP)
            rendered = page.evaluate(
                "() => window.fleetlinkMap.queryRenderedFeatures({layers: ['vehicles']}).length"
            )
            browser.close()
    finally:
        producer.stop()
        stop_children([server])
    paint_ms = [p["painted"] - p["newest"] for p in paints if p["newest"]]
    frame_ms = [p["frame"] - p["newest"] for p in paints if p["newest"]]
    redraw_ms = [p["painted"] - p["frame"] for p in paints if p["frame"]]
    return {
        "vehicles": vehicles,
        "paints": len(paints),
        "rendered": rendered,
        "update_to_paint_p50_ms": round(statistics.median(paint_ms)),
        "update_to_paint_p95_ms": round(percentile(paint_ms, 0.95)),
        "update_to_paint_max_ms": round(max(paint_ms)),
        "update_to_frame_p50_ms": round(statistics.median(frame_ms)),
        "update_to_frame_p95_ms": round(percentile(frame_ms, 0.95)),
        "redraw_p50_ms": round(statistics.median(redraw_ms)),
        "redraw_p95_ms": round(percentile(redraw_ms, 0.95)),
        "heap_start_mb": round(heap_start / 2**20, 1),
        "heap_end_mb": round(heap_end / 2**20, 1),
        "heap_growth_mb": round((heap_end - heap_start) / 2**20, 1),
    }


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=5000)
    parser.add_argument("--small", type=int, default=50, help="the baseline fleet")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/dashboard.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []

    def runs(base: Settings, tmp: Path) -> None:
        for n in range(args.repeat):
            for vehicles in (args.small, args.vehicles):
                row = one_run(base, tmp, vehicles, args.duration, f"d{n}v{vehicles}")
                console.print(row)
                rows.append(row)

    on_a_stack("fleetlink-dashboard-", runs)
    large = [r for r in rows if r["vehicles"] == args.vehicles]
    small = [r for r in rows if r["vehicles"] == args.small]

    def med(rows_: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows_)

    summary = {
        "vehicles": args.vehicles,
        "update_to_paint_p50_ms": med(large, "update_to_paint_p50_ms"),
        "update_to_paint_p95_ms": med(large, "update_to_paint_p95_ms"),
        "baseline_update_to_frame_p50_ms": med(large, "update_to_frame_p50_ms"),
        "baseline_small_fleet_update_to_paint_p50_ms": med(small, "update_to_paint_p50_ms"),
        "redraw_p50_ms": med(large, "redraw_p50_ms"),
        "heap_growth_mb": med(large, "heap_growth_mb"),
    }
    save(args, summary, rows)


if __name__ == "__main__":
    main()
