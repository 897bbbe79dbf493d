"""Geofence visits, pure: enter, dwell and exit events from vehicles' fixes.

A vehicle near no fence costs one lookup in the book's spatial index and nothing in the store.
One near a fence, or inside one, keeps ``g|{vin}``: per fence, whether it is inside, since when,
and the run of fixes that would change that (``fixes`` in a row decide; a fix in the band
between the area and ``band_m`` outside it breaks no run and makes none). A fence deleted while
a car is inside it ends the visit without an event.

``dwell`` is told once a visit, ``dwell_s`` after the car entered: on a fix that still counts as
inside (in the area or the band), or on a sweep for a car that stands inside and says nothing
(``g|due``, ordered by when).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Final

from fleetlink.apps.fleet.fences import Fence, FenceBook, Where
from fleetlink.apps.runtime.watermark import Store
from fleetlink.contracts.geofences import FenceEventKind, GeofenceEvent, fence_event

_DUE: Final = "g|due"  # [due ts, vin, fence id] of the visits whose dwell is not told yet

Visit = dict[str, Any]  # JSON-able: it lives in the app's state store


@dataclass(frozen=True)
class FencingParams:
    band_m: float = 25.0
    fixes: int = 2


class Geofencer:
    def __init__(self, store: Store, book: FenceBook, params: FencingParams) -> None:
        self._store = store
        self._book = book
        self._params = params

    def fix(self, vin: str, ts: int, lat: float, lon: float) -> list[GeofenceEvent]:
        """A vehicle was at (lat, lon) at ``ts``, later than any fix it sent before."""
        index = self._book.now()
        near = {fence.fence_id: fence for fence in index.near(vin, lat, lon)}
        vehicle: dict[str, Any] | None = self._store.get(f"g|{vin}")
        if vehicle is None:
            if not near:
                return []
            vehicle = {"ts": 0, "fences": {}}
        if ts <= int(vehicle["ts"]):
            return []  # history (a replay): told already
        vehicle["ts"] = ts
        visits: dict[str, Visit] = vehicle["fences"]
        events: list[GeofenceEvent] = []
        for fence_id in sorted(set(near) | set(visits)):
            fence = index.fences.get(fence_id)
            if fence is None or not fence.applies_to(vin):
                visits.pop(fence_id, None)  # deleted
                continue
            where = fence.where(lat, lon) if fence_id in near else Where.OUTSIDE
            visit = visits.get(fence_id) or {"in": False, "run": 0}
            events += self._step(vin, fence, visit, where, ts, (lat, lon))
            if visit["in"] or visit["run"]:
                visits[fence_id] = visit
            else:
                visits.pop(fence_id, None)
        if visits:
            self._store.set(f"g|{vin}", vehicle)
        else:
            self._store.delete(f"g|{vin}")
        return events

    def sweep(self, clock: int) -> list[GeofenceEvent]:
        """Tell the dwells due by ``clock`` of cars that said nothing since."""
        due: list[list[Any]] = self._store.get(_DUE, [])
        if not due or int(due[0][0]) > clock:
            return []
        split = bisect.bisect_right([int(entry[0]) for entry in due], clock)
        index = self._book.now()
        events: list[GeofenceEvent] = []
        for _at, vin, fence_id in due[:split]:
            vehicle = self._store.get(f"g|{vin}")
            visit = None if vehicle is None else vehicle["fences"].get(fence_id)
            fence = index.fences.get(fence_id)
            if visit is None or fence is None or not visit["in"] or visit.get("dwelt", True):
                continue
            events += self._dwell(vin, fence, visit, clock)
            self._store.set(f"g|{vin}", vehicle)
        self._store.set(_DUE, due[split:])
        return events

    def _step(
        self,
        vin: str,
        fence: Fence,
        visit: Visit,
        where: Where,
        ts: int,
        at: tuple[float, float],
    ) -> list[GeofenceEvent]:
        events: list[GeofenceEvent] = []
        if visit["in"]:
            if where is not Where.OUTSIDE:
                visit["last"] = ts  # the last fix that still counts as inside
            events += self._dwell(vin, fence, visit, int(visit["last"]))
        changes = where is (Where.OUTSIDE if visit["in"] else Where.INSIDE)
        if not changes:
            visit.update(run=0)
            return events
        if not visit["run"]:
            visit.update(**{"from": ts, "at": list(at)})
        visit["run"] += 1
        if visit["run"] < self._params.fixes:
            return events
        first, place = int(visit["from"]), (float(visit["at"][0]), float(visit["at"][1]))
        if visit["in"]:
            events.append(
                fence_event(
                    fence.fence_id, vin, FenceEventKind.EXIT, first, visit["entered"], place
                )
            )
            visit.clear()
            visit.update({"in": False, "run": 0})
            return events
        visit.clear()
        visit.update({"in": True, "run": 0, "entered": first, "last": ts})
        events.append(fence_event(fence.fence_id, vin, FenceEventKind.ENTER, first, first, place))
        dwell_s = fence.definition.dwell_s
        if dwell_s is not None:
            visit["dwelt"] = False
            self._schedule(first + int(dwell_s * 1000), vin, fence.fence_id)
            events += self._dwell(vin, fence, visit, ts)
        return events

    def _dwell(
        self, vin: str, fence: Fence, visit: Visit, inside_until: int
    ) -> list[GeofenceEvent]:
        dwell_s = fence.definition.dwell_s
        if dwell_s is None or visit.get("dwelt", True):
            return []
        due = int(visit["entered"]) + int(dwell_s * 1000)
        if inside_until < due:
            return []
        visit["dwelt"] = True
        entered = int(visit["entered"])
        return [fence_event(fence.fence_id, vin, FenceEventKind.DWELL, due, entered)]

    def _schedule(self, due_ts: int, vin: str, fence_id: str) -> None:
        due: list[list[Any]] = self._store.get(_DUE, [])
        bisect.insort(due, [due_ts, vin, fence_id], key=lambda entry: int(entry[0]))
        self._store.set(_DUE, due)
