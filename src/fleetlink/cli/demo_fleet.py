"""The demo's fleet view: a geofence over the simulated city's centre, drawn through the API as
an operator would, and what fleet tracking makes of the cars (driving, parked, inside the fence,
its enter / dwell / exit events)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from rich.table import Table

FENCE_RADIUS_M = 400.0
FENCE_DWELL_S = 300.0


class DemoFleet:
    def __init__(self, client: httpx.Client, every_s: float = 3.0) -> None:
        self._client = client
        self._every_s = every_s
        self._next = time.monotonic()
        self.fence_id: str | None = None
        self.motion: Counter[str] = Counter()
        self.inside = 0
        self.visits: Counter[str] = Counter()
        self.note = "waiting for the API"

    def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every_s
        try:
            if self.fence_id is None:
                self.fence_id = self._draw()
            vehicles = self._get("/v1/vehicles", {"limit": 10_000})["vehicles"]
            self.motion = Counter(str(v.get("motion", "unknown")) for v in vehicles)
            fence = self._get(f"/v1/geofences/{self.fence_id}", {})
            self.inside = len(fence["inside"])
            events = self._get("/v1/geofences/events", {"fence_id": self.fence_id, "limit": 1000})
            self.visits = Counter(str(e["kind"]) for e in events["events"])
            self.note = "ok"
        except (httpx.HTTPError, ValueError, KeyError) as error:
            self.note = f"API: {type(error).__name__}"

    def _draw(self) -> str:
        """The city's centre, fenced for every car, with a dwell of five minutes."""
        # libsumo loads with the simulator, not with every command of the CLI
        from fleetlink.sim.kinematic import to_lat_lon
        from fleetlink.sim.sumo import BLOCK_M, GRID_JUNCTIONS

        middle = GRID_JUNCTIONS * BLOCK_M / 2
        lat, lon = to_lat_lon(middle, middle)
        body = {
            "name": "city centre (demo)",
            "center": {"latitude": round(lat, 6), "longitude": round(lon, 6)},
            "radius_m": FENCE_RADIUS_M,
            "dwell_s": FENCE_DWELL_S,
        }
        reply = self._client.post("/v1/geofences", json=body)
        reply.raise_for_status()
        return str(reply.json()["fence_id"])

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        reply = self._client.get(path, params=params)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def table(self) -> Table:
        title = f"fleet tracking (geofence: {FENCE_RADIUS_M:.0f} m around the city centre)"
        table = Table(title=title, title_justify="left")
        for column in ("driving", "parked", "inside the fence", "enter", "dwell", "exit"):
            table.add_column(column, justify="right")
        table.add_column("", overflow="fold")
        table.add_row(
            f"{self.motion['driving']:,}",
            f"{self.motion['parked']:,}",
            f"{self.inside:,}",
            *(f"{self.visits[kind]:,}" for kind in ("enter", "dwell", "exit")),
            self.note,
        )
        return table
