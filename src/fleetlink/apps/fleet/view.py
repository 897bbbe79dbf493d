"""What the API answers about the fleet, pure: the latest state of each vehicle and its recent
trips, as ``fleet.vehicle-state`` and ``fleet.trips`` say them; the filters and pages of
``GET /v1/vehicles``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from fleetlink.contracts.fleet import Trip, VehicleState
from fleetlink.contracts.geo import distance_m

TRIPS_KEPT: Final = 500  # per vehicle, the newest


@dataclass(frozen=True)
class Box:
    south: float
    west: float
    north: float
    east: float

    def holds(self, lat: float, lon: float) -> bool:
        inside_lon = (
            self.west <= lon <= self.east
            if self.west <= self.east
            else lon >= self.west or lon <= self.east  # across the antimeridian
        )
        return self.south <= lat <= self.north and inside_lon


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_m: float

    def holds(self, lat: float, lon: float) -> bool:
        return distance_m(self.lat, self.lon, lat, lon) <= self.radius_m


@dataclass(frozen=True)
class VehicleFilter:
    online: bool | None = None
    within: Box | Circle | None = None
    battery_below_pct: float | None = None  # only vehicles whose charge is known and lower

    def holds(self, online: bool, state: VehicleState | None) -> bool:
        if self.online is not None and online is not self.online:
            return False
        if self.within is not None:
            lat = None if state is None else state.latitude
            lon = None if state is None else state.longitude
            if lat is None or lon is None or not self.within.holds(lat, lon):
                return False
        if self.battery_below_pct is None:
            return True
        charge = None if state is None else state.soc_pct
        return charge is not None and charge < self.battery_below_pct

    def reads_states(self) -> bool:
        return self.within is not None or self.battery_below_pct is not None


@dataclass(frozen=True)
class VehicleQuery:
    filter: VehicleFilter = VehicleFilter()
    after: str | None = None  # the cursor of the last row of the page before
    limit: int = 100


@dataclass(frozen=True)
class Row:
    """One vehicle as ``GET /v1/vehicles`` lists it: its presence and its state, if known."""

    vin: str
    online: bool
    since: int | None  # when the broker last said it came or went
    state: VehicleState | None

    @property
    def cursor(self) -> str:
        return f"{0 if self.online else 1}:{self.vin}"  # online first, then by VIN


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int  # rows matching the query, on every page
    next: str | None  # the cursor to ask for the next page with, if there is one


class FleetView:
    def __init__(self) -> None:
        self.states: dict[str, VehicleState] = {}
        self._trips: dict[str, dict[str, Trip]] = {}

    def take_state(self, state: VehicleState) -> bool:
        """Keep the newest state of a vehicle; whether it was news."""
        known = self.states.get(state.vin)
        if known is not None and known.ts > state.ts:
            return False
        self.states[state.vin] = state
        return known != state

    def forget(self, vin: str) -> None:
        self.states.pop(vin, None)

    def take_trip(self, trip: Trip) -> None:
        """A trip's latest word: its end replaces its start, never the other way round."""
        trips = self._trips.setdefault(trip.vin, {})
        known = trips.get(trip.trip_id)
        if known is not None and known.end_ts is not None and trip.end_ts is None:
            return
        trips[trip.trip_id] = trip
        if len(trips) > TRIPS_KEPT:
            oldest = min(trips.values(), key=lambda t: (t.start_ts, t.trip_id))
            del trips[oldest.trip_id]

    def trips_of(self, vin: str, limit: int, before: int | None = None) -> list[Trip]:
        """The vehicle's trips that started before ``before``, newest first."""
        trips = [
            t for t in self._trips.get(vin, {}).values() if before is None or t.start_ts < before
        ]
        return sorted(trips, key=lambda t: (t.start_ts, t.trip_id), reverse=True)[:limit]

    def all_trips_of(self, vin: str) -> list[Trip]:
        return list(self._trips.get(vin, {}).values())

    def page(
        self,
        query: VehicleQuery,
        presence: Iterable[tuple[str, bool, int]],
        readable: Callable[[str], bool],
    ) -> Page:
        """The vehicles ``readable`` lets the caller see that match ``query``, one page, online
        ones first. ``presence``: (vin, online, since) as the broker last said it."""
        said = {vin: (online, since) for vin, online, since in presence}
        rows = []
        for vin in sorted(said.keys() | self.states.keys()):
            if not readable(vin):
                continue
            state = self.states.get(vin)
            online, since = said.get(vin, (state is not None and state.online, None))
            if query.filter.holds(online, state):
                rows.append(Row(vin, online, since, state))
        rows.sort(key=lambda row: row.cursor)
        after = [row for row in rows if query.after is None or row.cursor > query.after]
        shown = after[: query.limit]
        more = len(after) > query.limit
        return Page(shown, len(rows), shown[-1].cursor if more and shown else None)
