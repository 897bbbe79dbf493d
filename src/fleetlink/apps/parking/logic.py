"""The free-parking finder, pure: from what cars see at the curb to free spots per cell.

One ``ParkingShard`` holds the cells of one shard in a key-value ``Store`` (Quix's state in the
app, a dict in tests). Inputs are plain dicts, as they cross the repartition topic: a ``gap``
(the side sensors saw a free stretch), ``parked`` / ``unparked`` (a car took or left a spot), a
``pass`` (a car drove by, slowly enough to scan) and a ``tick``. They are judged in event-time
order behind the shard's watermark (``apps.runtime.watermark``), however partitions interleave.

- Reports of one stretch (within ``merge_m``, on the same side of the street) from several cars
  are one spot: its last sighting, its reporters.
- A car that drove past a known spot and did not report it within ``pass_grace_s`` saw it taken;
  a car parking there takes it; a car leaving frees one, for certain.
- A spot is free with probability ``exp(-age / lifetime)``. The lifetime is learned per area
  (H3 ``area_resolution``) from the spots seen taken: time seen free over spots ended, the
  exponential's maximum-likelihood estimate; ``default_lifetime_s`` until ``learn_min_ends``.
- A stretch seen free on nearly every pass, over days, where nobody ever parked, is a driveway
  or a bus stop: learned as no parking, and left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import h3

from fleetlink.apps.parking.sites import (
    ParkingParams,
    Site,
    car_length,
    cell_record,
    covers,
    free_sighting_cost,
    learned_no_parking,
    lifetime_of,
    matches,
    new_site,
    observe,
    reach_of,
    same_length,
    see_free,
    stood_here,
    usable_gap,
)
from fleetlink.apps.runtime.watermark import EventTime, Store
from fleetlink.contracts.geo import cells_near
from fleetlink.contracts.parking import PARKING_RESOLUTION, ParkingCell, SpotSource

_NAMESPACE: Final = uuid.UUID("0f6c3b52-8a43-4e0e-9d3b-5e1c7a9b2d41")
_DUE: Final = "due"  # cell -> the event time something in it is next due (ms)
_GRACE_KINDS: Final = frozenset({"gap", "parked", "unparked", "pass"})


@dataclass
class Outcome:
    cells: list[ParkingCell] = field(default_factory=list)
    late: bool = False  # the input was too late to count


def shards_of(
    item: Mapping[str, Any], params: ParkingParams, shard: Callable[[str], str]
) -> list[str]:
    """The shards an input goes to: those of the cells near it (``shard`` names a cell's)."""
    radius = params.pass_m if item["t"] == "pass" else params.merge_m
    if item["t"] == "gap" and usable_gap(item, params):
        radius = max(radius, reach_of(item))
    near = cells_near(float(item["lat"]), float(item["lon"]), radius, PARKING_RESOLUTION)
    return sorted({shard(cell) for cell in near})


class ParkingShard:
    """The curb of one shard, kept in ``store``. An input near a shard border reaches both
    shards; each one keeps only the cells it ``owns``."""

    def __init__(
        self,
        store: Store,
        params: ParkingParams,
        owns: Callable[[str], bool] | None = None,
        sources: int = 1,
    ) -> None:
        self._store = store
        self._params = params
        self._owns = owns
        # inputs repeated by a replay would count twice (a pass, a position's mean): once only
        self._time = EventTime(store, sources, once_within_ms=int(params.grace_s * 1000) + 1000)
        self._changed: set[str] = set()

    def handle(self, item: Mapping[str, Any]) -> Outcome:
        """Take one input; the cells it (or the watermark a tick moved) changed."""
        kind, ts = item.get("t"), int(item["ts"])
        if kind == "tick":
            return self._settle(self._time.advance(ts, int(item.get("src", 0))))
        if kind not in _GRACE_KINDS:
            return Outcome()
        clock = self._time.clock()
        if item.get("late") or ts < clock - self._params.grace_s * 1000:
            return Outcome(late=True)
        if kind == "gap" and not usable_gap(item, self._params):
            return Outcome()
        self._time.hold(item)
        return self._settle(clock) if ts <= clock else Outcome()

    def tick(self, ts: int, src: int = 0) -> Outcome:
        return self.handle({"t": "tick", "ts": ts, "src": src})

    def _settle(self, clock: int) -> Outcome:
        for item in self._time.due(clock):
            ts = int(item["ts"])
            self._sweep(ts)
            if item["t"] == "pass":
                self._pass(item)
            elif item["t"] == "parked":
                self._parked(item)
            else:
                self._free(item)
        self._sweep(clock)
        changed, self._changed = self._changed, set()
        return Outcome(cells=[self._record(cell) for cell in sorted(changed)])

    # inputs -----------------------------------------------------------------------------------

    def _free(self, item: Mapping[str, Any]) -> None:
        """A gap seen free, or a spot a car left."""
        left = item["t"] == "unparked"
        if left:  # where the car stood, whatever the gaps seen there
            length = car_length(item.get("length")) + self._params.leave_margin_m
            found = self._site_for(item, self._params.stand_m, length)
        else:
            length = float(item["length"])
            found = self._site_for(item, self._params.merge_m, length, fit_length=True)
        if found is None:
            return
        site, cell, cell_state = found
        vin, ts = str(item["vin"]), int(item["ts"])
        observe(site, item, length)
        site["passers"].pop(vin, None)  # its pass saw it free
        site["seen"] = {v: t for v, t in site["seen"].items() if t >= ts - self._grace_ms()}
        site["seen"][vin] = ts
        if left:
            stood_here(site, item)
        else:
            site["free_n"] += 1
        if not left and learned_no_parking(site, self._params):
            site["no_parking"] = True
        if site["no_parking"]:
            site["spot"] = None
        elif see_free(site, item, SpotSource.UNPARKED if left else SpotSource.GAP, length):
            self._flow(cell_state, ts, +1)
        self._save(cell, cell_state, ts)
        if not left:
            self._free_along(item, site["id"])

    def _free_along(self, item: Mapping[str, Any], placed_at: str) -> None:
        """The other stretches a long gap covers were free too (a driveway next to a free spot
        is one gap with it): their passes saw them free, their spots are fresh."""
        vin, ts = str(item["vin"]), int(item["ts"])
        lat, lon, heading = float(item["lat"]), float(item["lon"]), item.get("heading")
        reach = reach_of(item)
        for cell in self._cells_near(lat, lon, reach):
            cell_state = self._store.get(f"c|{cell}")
            covered = [
                site
                for site in (cell_state or {}).get("sites", {}).values()
                if site["id"] != placed_at
                and covers(site, lat, lon, heading, reach, self._params.max_diff_deg)
            ]
            if not covered or cell_state is None:
                continue
            refreshed = False
            for site in covered:
                site["passers"].pop(vin, None)
                site["seen"][vin] = ts
                site["free_n"] += 1
                site["last_ts"] = max(int(site["last_ts"]), ts)
                if learned_no_parking(site, self._params):
                    site["no_parking"], site["spot"] = True, None
                spot = site["spot"]
                if spot is not None and int(spot["observed_ts"]) < ts:
                    spot["observed_ts"] = ts
                    if vin not in spot["vins"]:
                        spot["vins"] = [*spot["vins"], vin]
                    refreshed = True
            if refreshed:
                self._save(cell, cell_state, ts)
            else:  # only what passes saw changed: nothing to write out
                self._store.set(f"c|{cell}", cell_state)

    def _parked(self, item: Mapping[str, Any]) -> None:
        """A car took the spot it stands on (known free or not: the area fills up). The stretch
        it stands on is a parking place; a spot known near it is taken."""
        ts = int(item["ts"])
        length = car_length(item.get("length")) + self._params.leave_margin_m
        near = self._site_for(item, self._params.merge_m, length, create=False)
        if near is not None:
            self._take(near[0], near[1], ts)
            self._save(near[1], near[2], ts)
        found = self._site_for(item, self._params.stand_m, length)
        if found is None:
            return
        site, cell, cell_state = found
        observe(site, item, length)
        stood_here(site, item)
        site["no_parking"] = False
        self._take(site, cell, ts)
        self._flow(cell_state, ts, -1)
        self._save(cell, cell_state, ts)

    def _pass(self, item: Mapping[str, Any]) -> None:
        """A car drove past: for every stretch it passed on its side, a pass to be judged once
        the car had time to report it."""
        params = self._params
        vin, ts = str(item["vin"]), int(item["ts"])
        lat, lon, heading = float(item["lat"]), float(item["lon"]), item.get("heading")
        for cell in self._cells_near(lat, lon, params.pass_m):
            cell_state = self._store.get(f"c|{cell}")
            if not cell_state:
                continue
            touched = False
            for site in cell_state["sites"].values():
                if site["no_parking"] or vin in site["passers"]:
                    continue
                if ts - int(site["seen"].get(vin, -(10**15))) <= self._grace_ms():
                    continue  # it reported this stretch on this pass
                near = matches(site, lat, lon, heading, params.pass_m, params.max_diff_deg)
                if near is not None:
                    site["passers"][vin] = ts
                    touched = True
            if touched:
                self._store.set(f"c|{cell}", cell_state)
                self._due(cell, ts + self._grace_ms())

    # time -------------------------------------------------------------------------------------

    def _sweep(self, clock: int) -> None:
        """Judge the passes whose grace is over and drop spots too unlikely to be free."""
        due: dict[str, int] = self._store.get(_DUE, {})
        for cell in sorted(c for c, at in due.items() if at <= clock):
            cell_state = self._store.get(f"c|{cell}") or {"sites": {}, "flow": []}
            changed = False
            for site in cell_state["sites"].values():
                for vin, passed_ts in sorted(site["passers"].items()):
                    if passed_ts + self._grace_ms() > clock:
                        continue
                    del site["passers"][vin]
                    site["busy_n"] += 1
                    changed = True
                    spot = site["spot"]
                    if spot is not None and int(spot["observed_ts"]) < passed_ts:
                        # it was taken some time between the last sighting and this pass
                        ended = (int(spot["observed_ts"]) + passed_ts) // 2
                        self._take(site, cell, ended)
                        self._flow(cell_state, passed_ts, -1)
                        _stamp(cell_state, passed_ts)
                        self._changed.add(cell)
                spot = site["spot"]
                if spot is not None:
                    lifetime, _ = lifetime_of(self._area(cell), self._params)
                    dropped_at = int(spot["observed_ts"]) + self._params.drop_after_ms(lifetime)
                    if dropped_at <= clock:
                        self._end(cell, spot, int(spot["observed_ts"]), ended=False)
                        site["spot"] = None
                        changed = True
                        _stamp(cell_state, dropped_at)
                        self._changed.add(cell)
            if changed:
                self._store.set(f"c|{cell}", cell_state)
            self._reschedule(cell, cell_state, due)
        self._store.set(_DUE, due)

    def _reschedule(self, cell: str, cell_state: dict[str, Any], due: dict[str, int]) -> None:
        lifetime, _ = lifetime_of(self._area(cell), self._params)
        times = [
            passed + self._grace_ms()
            for site in cell_state["sites"].values()
            for passed in site["passers"].values()
        ] + [
            int(site["spot"]["observed_ts"]) + self._params.drop_after_ms(lifetime)
            for site in cell_state["sites"].values()
            if site["spot"] is not None
        ]
        if times:
            due[cell] = min(times)
        else:
            due.pop(cell, None)

    def _due(self, cell: str, at: int) -> None:
        due: dict[str, int] = self._store.get(_DUE, {})
        if at < due.get(cell, 1 << 62):
            due[cell] = at
            self._store.set(_DUE, due)

    # state ------------------------------------------------------------------------------------

    def _take(self, site: Site, cell: str, ended_ts: int) -> None:
        spot = site["spot"]
        if spot is None:
            return
        self._end(cell, spot, ended_ts, ended=True)
        site["spot"] = None

    def _end(self, cell: str, spot: dict[str, Any], until_ts: int, *, ended: bool) -> None:
        """A spot's time seen free (and whether it was seen end) for its area's lifetime."""
        key = f"a|{self._area_of(cell)}"
        area = self._store.get(key) or {"exposure_s": 0.0, "ends": 0}
        area["exposure_s"] = (
            float(area["exposure_s"]) + max(0, until_ts - int(spot["first_ts"])) / 1000
        )
        area["ends"] = int(area["ends"]) + ended
        self._store.set(key, area)

    def _site_for(
        self,
        item: Mapping[str, Any],
        radius_m: float,
        length: float,
        *,
        fit_length: bool = False,
        create: bool = True,
    ) -> tuple[Site, str, dict[str, Any]] | None:
        """The stretch an input is about, its cell and the cell's state: the nearest known one
        within ``radius_m`` (of about its ``length`` if ``fit_length``), or a new one in the
        input's own cell (if this shard owns it)."""
        params = self._params
        lat, lon, heading = float(item["lat"]), float(item["lon"]), item.get("heading")
        best: tuple[float, Site, str, dict[str, Any]] | None = None
        for cell in self._cells_near(lat, lon, radius_m):
            cell_state = self._store.get(f"c|{cell}")
            for site in (cell_state or {}).get("sites", {}).values():
                distance = matches(site, lat, lon, heading, radius_m, params.max_diff_deg)
                if distance is None or (fit_length and not same_length(site, length)):
                    continue
                if fit_length:  # the likeliest stretch to be free there, not just the nearest
                    lifetime, _ = lifetime_of(self._area(cell), params)
                    distance = free_sighting_cost(site, distance, int(item["ts"]), lifetime, params)
                if best is None or distance < best[0]:
                    best = (distance, site, cell, cell_state)
        if best is not None:
            return best[1], best[2], best[3]
        if not create:
            return None
        cell = str(h3.latlng_to_cell(lat, lon, PARKING_RESOLUTION))
        if not self._mine(cell):
            return None
        cell_state = self._store.get(f"c|{cell}") or {"sites": {}, "flow": []}
        seed = str(item.get("msg_id") or f"{item['vin']}|{item['ts']}")
        site_id = str(uuid.uuid5(_NAMESPACE, seed))
        site = cell_state["sites"][site_id] = new_site(item, site_id, length)
        return site, cell, cell_state

    def _cells_near(self, lat: float, lon: float, radius_m: float) -> list[str]:
        return sorted(
            c for c in cells_near(lat, lon, radius_m, PARKING_RESOLUTION) if self._mine(c)
        )

    def _mine(self, cell: str) -> bool:
        return self._owns is None or self._owns(cell)

    def _save(self, cell: str, cell_state: dict[str, Any], ts: int) -> None:
        _stamp(cell_state, ts)
        self._store.set(f"c|{cell}", cell_state)
        self._changed.add(cell)
        due: dict[str, int] = self._store.get(_DUE, {})
        self._reschedule(cell, cell_state, due)
        self._store.set(_DUE, due)

    def _flow(self, cell_state: dict[str, Any], ts: int, delta: int) -> None:
        horizon = ts - int(self._params.trend_window_s * 1000)
        cell_state["flow"] = [f for f in cell_state["flow"] if f[0] >= horizon] + [[ts, delta]]

    def _area_of(self, cell: str) -> str:
        return str(h3.cell_to_parent(cell, self._params.area_resolution))

    def _area(self, cell: str) -> dict[str, Any] | None:
        area: dict[str, Any] | None = self._store.get(f"a|{self._area_of(cell)}")
        return area

    def _grace_ms(self) -> int:
        return int(self._params.pass_grace_s * 1000)

    def _record(self, cell: str) -> ParkingCell:
        cell_state = self._store.get(f"c|{cell}") or {"sites": {}, "flow": []}
        return cell_record(cell, cell_state, self._area(cell), self._params)


def _stamp(cell_state: dict[str, Any], ts: int) -> None:
    """A cell's time is that of its latest change, whatever order changes were judged in
    (inputs older than the watermark are taken as they come)."""
    cell_state["ts"] = max(int(cell_state.get("ts", 0)), ts)
