"""Fleet tracking, pure: each vehicle's latest state and its trips (``contracts.fleet``).

One ``FleetShard`` keeps the vehicles of one shard in a key-value ``Store`` (Quix's state in the
app, a dict in tests), each under ``v|{vin}``. Inputs are plain dicts: ``telemetry`` (position,
speed, odometer, battery), ``event`` (harsh events count in the trip), ``presence`` (the broker's
online/offline) and ``tick``. A vehicle's inputs come in its own order (one partition per topic):
an input older than what the vehicle already said is history and changes nothing, which also
makes a replay after a crash count once.

Ticks sweep the vehicles that are on a trip or heard lately, every ``sweep_every_s``: a car that
stopped and fell silent still ends its trip on time, and a silent one goes offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fleetlink.apps.runtime.watermark import EventTime, Store
from fleetlink.contracts.fleet import HARSH_WEIGHTS, Motion, Trip, TripEnd, VehicleState
from fleetlink.contracts.geo import distance_m

_ACTIVE: Final = "active"  # the VINs a sweep looks at
_SWEEP_AT: Final = "sweep_at"
_HEARD: Final = "heard"  # the newest event time the shard's vehicles sent, to the second
_EARLY_KEPT: Final = 100  # harsh events read ahead of a vehicle's telemetry, at most


@dataclass(frozen=True)
class TrackingParams:
    """Every constant of the tracker (the app's settings)."""

    start_kmh: float = 8.0  # a trip starts at this speed (Samsara's 5 mph)...
    stop_s: float = 300.0  # ...and ends after this long below it
    silence_s: float = 600.0  # a car heard nothing from this long is silent (offline, trip over)
    state_every_s: float = 2.0  # a vehicle's state is written at most this often (changes: at once)
    harsh_once_s: float = 30.0  # harsh events of one kind closer than this count once
    sweep_every_s: float = 5.0


@dataclass
class Outcome:
    states: list[VehicleState] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    stale: bool = False  # older than what the vehicle already said
    swept_at: int | None = None  # a tick swept the shard's vehicles at this event time


Vehicle = dict[str, Any]  # JSON-able: it lives in the app's state store


class FleetShard:
    def __init__(self, store: Store, params: TrackingParams, sources: int = 1) -> None:
        self._store = store
        self._params = params
        self._time = EventTime(store, sources)

    def handle(self, item: Mapping[str, Any]) -> Outcome:
        kind = item.get("t")
        if kind == "tick":
            return self._tick(int(item["ts"]), int(item.get("src", 0)))
        if kind == "telemetry":
            return self._telemetry(item)
        if kind == "event":
            return self._event(item)
        if kind == "presence":
            return self._presence(item)
        return Outcome()

    def tick(self, ts: int, src: int = 0) -> Outcome:
        return self.handle({"t": "tick", "ts": ts, "src": src})

    # inputs -----------------------------------------------------------------------------------

    def _telemetry(self, item: Mapping[str, Any]) -> Outcome:
        vin, ts = str(item["vin"]), int(item["ts"])
        vehicle = self._load(vin)
        if ts <= int(vehicle["ts"]):
            return Outcome(stale=True)
        out = Outcome()
        first = vehicle["ts"] == 0
        was_online = _online(vehicle, ts, self._params)
        previous = (vehicle["lat"], vehicle["lon"])
        vehicle["ts"] = vehicle["last_seen"] = ts
        for key in ("lat", "lon", "heading", "speed", "odo", "soc"):
            if item.get(key) is not None:
                vehicle[key] = float(item[key])
        if vehicle["presence"] is False and ts <= int(vehicle["presence_ts"]):
            self._before_offline(vehicle, item, previous, out)
            self._reached(vehicle, ts, out)
            self._write(vehicle, max(ts, int(vehicle["presence_ts"])), out, force=True)
            return out
        self._reached(vehicle, ts - 1, out)  # what happened before this record, first
        trip = vehicle["trip"]
        if trip is not None and None not in previous and vehicle["lat"] is not None:
            trip["path_m"] += distance_m(*previous, vehicle["lat"], vehicle["lon"])
        speed = item.get("speed")
        changed = first or not was_online
        if speed is not None and speed >= self._params.start_kmh:
            starts = trip is None
            if trip is None:
                trip = vehicle["trip"] = _new_trip(vehicle)
            trip.update(moving_ts=ts, stop_ts=None)
            trip["max_speed"] = max(float(trip["max_speed"]), float(speed))
            if starts:
                out.trips.append(_trip_of(vin, trip))
                changed = True
        elif trip is not None and speed is not None:
            if trip["stop_ts"] is None:
                trip["stop_ts"] = ts  # first seen standing (or crawling) since it last moved
            if ts - int(trip["moving_ts"]) >= self._params.stop_s * 1000:
                out.trips.append(self._end(vehicle, TripEnd.STOPPED))
                changed = True
        self._reached(vehicle, ts, out)
        self._write(vehicle, ts, out, force=changed)
        return out

    def _before_offline(
        self, vehicle: Vehicle, item: Mapping[str, Any], previous: tuple[Any, Any], out: Outcome
    ) -> None:
        """A record sent before the car went offline, read after the broker said so (another
        topic): it belongs to the trip going offline ended, which ends later for it; a car
        that was moving then had a trip that ended then."""
        ts, speed = int(item["ts"]), item.get("speed")
        last = vehicle["last_trip"]
        if last is None or last["ended_by"] != TripEnd.OFFLINE.value or ts < last["start_ts"]:
            if speed is not None and speed >= self._params.start_kmh:
                vehicle["trip"] = _new_trip(vehicle)
                vehicle["trip"]["max_speed"] = float(speed)
                out.trips.append(self._end(vehicle, TripEnd.OFFLINE))
            return
        if None not in previous and vehicle["lat"] is not None:
            last["path_m"] += distance_m(*previous, vehicle["lat"], vehicle["lon"])
        if speed is not None and speed >= self._params.start_kmh:
            last.update(moving_ts=ts, stop_ts=None)
            last["max_speed"] = max(float(last["max_speed"]), float(speed))
        elif speed is not None and last["stop_ts"] is None:
            last["stop_ts"] = ts
        stood = last["stop_ts"] is not None and ts - last["moving_ts"] >= self._params.stop_s * 1000
        # it stood long enough before it went offline: it ended standing (as read in order)
        end_ts = int(last["stop_ts"]) if stood else ts
        last.update(end_ts=end_ts, closed_ts=ts, end_odo=vehicle["odo"], end_lat=vehicle["lat"])
        last.update(
            end_lon=vehicle["lon"], ended_by=(TripEnd.STOPPED if stood else TripEnd.OFFLINE).value
        )
        out.trips.append(_trip_of(str(vehicle["vin"]), last))

    def _event(self, item: Mapping[str, Any]) -> Outcome:
        """A harsh event counts in the trip it happened in, whichever of the car's event and
        telemetry records is read first: in the open trip, in the one that just ended (written
        again), or, ahead of the telemetry, once the telemetry gets there."""
        kind, vin, ts = str(item["kind"]), str(item["vin"]), int(item["ts"])
        if kind not in HARSH_WEIGHTS:
            return Outcome()
        vehicle = self._load(vin)
        out = Outcome()
        if ts > int(vehicle["ts"]):
            if [kind, ts] not in vehicle["early"]:
                vehicle["early"] = [*vehicle["early"], [kind, ts]][-_EARLY_KEPT:]
        elif not self._count(vehicle, kind, ts, out):
            return Outcome()
        self._store.set(f"v|{vin}", vehicle)
        return out

    def _count(self, vehicle: Vehicle, kind: str, ts: int, out: Outcome) -> bool:
        """Count a harsh event (one of a kind within ``harsh_once_s`` once) in the trip it
        happened in; whether it counted."""
        trip, last = vehicle["trip"], vehicle["last_trip"]
        if trip is not None and ts >= int(trip["start_ts"]):
            counted, amended = _counted(trip, kind, ts, self._params), None
        elif last is not None and int(last["start_ts"]) <= ts <= int(last["closed_ts"]):
            counted = _counted(last, kind, ts, self._params)
            amended = last if counted else None
        else:
            return False  # harsh events count inside trips only (as Samsara's)
        if amended is not None:
            out.trips.append(_trip_of(str(vehicle["vin"]), amended))
        return counted

    def _reached(self, vehicle: Vehicle, ts: int, out: Outcome) -> None:
        """The telemetry has reached ``ts``: the harsh events read ahead of it up to there
        count now."""
        due = [(kind, at) for kind, at in vehicle["early"] if at <= ts]
        if due:
            vehicle["early"] = [[kind, at] for kind, at in vehicle["early"] if at > ts]
            for kind, at in sorted(due, key=lambda e: (e[1], e[0])):
                self._count(vehicle, kind, at, out)

    def _presence(self, item: Mapping[str, Any]) -> Outcome:
        vin, ts = str(item["vin"]), int(item["ts"])
        vehicle = self._load(vin)
        if ts <= int(vehicle["presence_ts"]):
            return Outcome(stale=True)
        online = bool(item["online"])
        vehicle.update(presence=online, presence_ts=ts)
        out = Outcome()
        if not online and vehicle["trip"] is not None:
            out.trips.append(self._end(vehicle, TripEnd.OFFLINE))
        self._write(vehicle, max(ts, int(vehicle["ts"])), out, force=True)
        return out

    # time -------------------------------------------------------------------------------------

    def _tick(self, ts: int, src: int) -> Outcome:
        ticked = self._time.advance(ts, src)
        if ticked == 0 or ticked < int(self._store.get(_SWEEP_AT, 0)):
            return Outcome()  # (0: not every source has ticked yet)
        self._store.set(_SWEEP_AT, ticked + int(self._params.sweep_every_s * 1000))
        # Silence is judged on the time the shard's own records have reached while they come:
        # catching up on a backlog, the ticks run ahead of records not read yet. Once the
        # shard has heard nothing for ``silence_s`` of tick time, the ticks' time counts.
        heard = int(self._store.get(_HEARD, 0))
        quiet = ticked - heard >= self._params.silence_s * 1000
        clock = ticked if quiet else heard
        out = Outcome(swept_at=clock)
        active: list[str] = self._store.get(_ACTIVE, [])
        still = []
        for vin in active:
            vehicle = self._load(vin)
            self._sweep(vehicle, clock, out)
            if vehicle["trip"] is not None or _online(vehicle, clock, self._params):
                still.append(vin)
            else:
                vehicle["swept"] = False
                self._store.set(f"v|{vin}", vehicle)
        if still != active:
            self._store.set(_ACTIVE, still)
        return out

    def _sweep(self, vehicle: Vehicle, clock: int, out: Outcome) -> None:
        params, trip = self._params, vehicle["trip"]
        silent = clock - int(vehicle["last_seen"]) >= params.silence_s * 1000
        ended = None
        stopped = trip is not None and trip["stop_ts"] is not None
        if trip is not None and silent:
            ended = TripEnd.SILENT
        elif stopped and clock - int(trip["moving_ts"]) >= params.stop_s * 1000:
            ended = TripEnd.STOPPED
        if ended is not None:
            out.trips.append(self._end(vehicle, ended))
        went_silent = silent and not vehicle["silent"] and vehicle["presence"] is not False
        if ended is not None or went_silent:
            vehicle["silent"] = silent
            out.states.append(_state_of(vehicle, clock, self._params))
            vehicle["written"] = int(vehicle["ts"])
            self._store.set(f"v|{vehicle['vin']}", vehicle)

    # state ------------------------------------------------------------------------------------

    def _end(self, vehicle: Vehicle, how: TripEnd) -> Trip:
        """The vehicle's trip is over: it ended when the car stopped (first seen standing after
        it last moved), or when it was last heard."""
        trip = vehicle["trip"]
        if how is TripEnd.STOPPED:
            end_ts = int(trip["stop_ts"] or trip["moving_ts"])
        else:
            end_ts = int(vehicle["last_seen"])
        # a harsh event up to the record that ended it counted while it was open: the same when
        # that event is read late
        closed_ts = max(end_ts, int(vehicle["ts"]))
        trip.update(end_ts=end_ts, closed_ts=closed_ts, ended_by=how.value, end_odo=vehicle["odo"])
        trip.update(end_lat=vehicle["lat"], end_lon=vehicle["lon"])
        vehicle["trip"], vehicle["last_trip"] = None, trip
        return _trip_of(str(vehicle["vin"]), trip)

    def _load(self, vin: str) -> Vehicle:
        vehicle: Vehicle | None = self._store.get(f"v|{vin}")
        if vehicle is not None:
            return vehicle
        return {
            "vin": vin,
            "ts": 0,  # the newest telemetry's event time (0: none yet)
            "last_seen": 0,
            "presence": None,  # what the broker last said: True online, False offline
            "presence_ts": 0,
            "silent": False,
            "written": 0,  # the event time of the last state written
            **dict.fromkeys(("lat", "lon", "heading", "speed", "odo", "soc")),
            "trip": None,
            "last_trip": None,  # the trip that ended last: a harsh event read late counts in it
            "early": [],  # [kind, ts] of harsh events read ahead of the telemetry
        }

    def _heard(self, ts: int) -> None:
        if ts // 1000 > int(self._store.get(_HEARD, 0)) // 1000:  # a write a second at most
            self._store.set(_HEARD, ts)

    def _write(self, vehicle: Vehicle, ts: int, out: Outcome, *, force: bool) -> None:
        """Save the vehicle; its state goes out if it changed kind, or was not written lately."""
        self._heard(int(vehicle["last_seen"]))
        vehicle["silent"] = False if vehicle["presence"] is not False else vehicle["silent"]
        due = ts - int(vehicle["written"]) >= self._params.state_every_s * 1000
        if force or due or out.trips:
            out.states.append(_state_of(vehicle, ts, self._params))
            vehicle["written"] = ts
        # the list of vehicles to sweep is read only when one joins it, not on every record
        joins = not vehicle.get("swept") and _online(vehicle, ts, self._params)
        if joins:
            vehicle["swept"] = True
            self._store.set(_ACTIVE, [*self._store.get(_ACTIVE, []), vehicle["vin"]])
        self._store.set(f"v|{vehicle['vin']}", vehicle)


def _counted(trip: dict[str, Any], kind: str, ts: int, params: TrackingParams) -> bool:
    last = trip["harsh_ts"].get(kind)
    if last is not None and ts < int(last) + params.harsh_once_s * 1000:
        return False  # the same episode, or a replay
    trip["harsh_ts"][kind] = ts
    trip["harsh"][kind] = int(trip["harsh"].get(kind, 0)) + 1
    return True


def _new_trip(vehicle: Vehicle) -> dict[str, Any]:
    ts = int(vehicle["ts"])
    return {
        "id": f"{vehicle['vin']}-{ts}",  # the same on a replay
        "start_ts": ts,
        "start_lat": vehicle["lat"],
        "start_lon": vehicle["lon"],
        "start_odo": vehicle["odo"],
        "moving_ts": ts,
        "stop_ts": None,
        "path_m": 0.0,  # along the positions: the distance when there is no odometer
        "max_speed": 0.0,
        "harsh": {},
        "harsh_ts": {},
    }


def _online(vehicle: Vehicle, now: int, params: TrackingParams) -> bool:
    """What the broker said last; a car it said nothing of is online while it is heard."""
    if vehicle["presence"] is not None:
        return bool(vehicle["presence"])
    return vehicle["ts"] != 0 and now - int(vehicle["last_seen"]) < params.silence_s * 1000


def _state_of(vehicle: Vehicle, ts: int, params: TrackingParams) -> VehicleState:
    trip = vehicle["trip"]
    return VehicleState(
        vin=vehicle["vin"],
        ts=ts,
        online=_online(vehicle, ts, params),
        # a car known from the broker alone was last seen when the broker said so
        last_seen=int(vehicle["last_seen"]) or int(vehicle["presence_ts"]),
        motion=Motion.DRIVING if trip is not None else Motion.PARKED,
        latitude=_rounded(vehicle["lat"], 6),
        longitude=_rounded(vehicle["lon"], 6),
        heading_deg=_rounded(vehicle["heading"], 1),
        speed_kmh=_rounded(vehicle["speed"], 1),
        odometer_km=_rounded(vehicle["odo"], 3),
        soc_pct=_rounded(vehicle["soc"], 1),
        trip_id=None if trip is None else trip["id"],
        trip_start_ts=None if trip is None else int(trip["start_ts"]),
    )


def _trip_of(vin: str, trip: Mapping[str, Any]) -> Trip:
    end_ts = trip.get("end_ts")
    start_odo, end_odo = trip.get("start_odo"), trip.get("end_odo")
    if start_odo is not None and end_odo is not None and end_odo >= start_odo:
        distance_km = float(end_odo) - float(start_odo)
    else:
        distance_km = float(trip["path_m"]) / 1000
    return Trip(
        trip_id=str(trip["id"]),
        vin=vin,
        start_ts=int(trip["start_ts"]),
        start_latitude=_rounded(trip["start_lat"], 6),
        start_longitude=_rounded(trip["start_lon"], 6),
        end_ts=None if end_ts is None else int(end_ts),
        end_latitude=_rounded(trip.get("end_lat"), 6),
        end_longitude=_rounded(trip.get("end_lon"), 6),
        ended_by=None if trip.get("ended_by") is None else TripEnd(trip["ended_by"]),
        distance_km=round(distance_km if end_ts is not None else 0.0, 3),
        duration_s=0.0
        if end_ts is None
        else round((int(end_ts) - int(trip["start_ts"])) / 1000, 1),
        max_speed_kmh=round(float(trip["max_speed"]), 1),
        harsh=dict(sorted(trip["harsh"].items())),
    )


def _rounded(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)
