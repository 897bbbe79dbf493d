"""Stretches of curb and what the fleet saw of them, pure: matching a report to its stretch, the
free spot on it, the no-parking rule, the areas' learned lifetimes.

A *site* is a stretch of curb the fleet has seen (a gap, a car parking or leaving), kept for good
in its cell: its counts of passes that saw it free or taken, and of cars that parked there, are
what tell a driveway from a parking spot. Its *spot* is its current free state, if any.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fleetlink.contracts.geo import bearing_deg, distance_m, heading_diff
from fleetlink.contracts.parking import CurbSide, ParkingCell, ParkingSpot, SpotSource, trend_of

Site = dict[str, Any]  # JSON-able: it lives in the app's state store
_MAX_WEIGHT: Final = 10  # a position is the mean of at most this many reports' worth
_MAX_VINS: Final = 50
_MAX_PARKS: Final = 8
MAX_GAP_M: Final = 100.0  # longer is no gap a side sensor measures (the contract's bound)
_CAR_LENGTHS_M: Final = (2.0, 20.0)  # a car that says it is shorter or longer is not believed
_CAR_LENGTH_M: Final = 4.5
_PLACING_M: Final = 3.0  # how far off a car places a gap's ends (odometry, GPS)
_SAME_LENGTH: Final = (1.5, 0.2)  # gaps this close in length (metres, share) may be one stretch
_SITE_LENGTH_M: Final = 6.0  # of a stretch known from before sites had lengths
_CURB_WIDTH_M: Final = 4.0  # reports of one curb lie this close across the street (GPS)


def car_length(said: Any) -> float:
    """The length a parking or leaving car says it has, if believable."""
    low, high = _CAR_LENGTHS_M
    believable = (
        isinstance(said, int | float) and not isinstance(said, bool) and low <= said <= high
    )
    return float(said) if believable else _CAR_LENGTH_M


@dataclass(frozen=True)
class ParkingParams:
    """Every constant of the finder (the app's settings)."""

    default_lifetime_s: float = 600.0
    learn_min_ends: int = 20
    area_resolution: int = 8
    max_scan_speed_kmh: float = 55.0
    min_length_m: float = 5.0
    merge_m: float = 8.0
    placing_sigma_m: float = 2.5  # how far along the street cars place a gap (one sigma)
    unknown_free: float = 0.25  # the chance that a stretch last seen taken is free
    stand_m: float = 3.0  # a car parking or leaving stands on the stretch this close: half a spot
    max_diff_deg: float = 30.0  # of headings: the same side of the same street
    pass_m: float = 12.0
    pass_min_speed_kmh: float = 5.0  # a standing car scans nothing
    pass_grace_s: float = 10.0
    drop_below_p: float = 0.05
    trend_window_s: float = 600.0
    no_parking_min_passes: int = 10
    no_parking_free_share: float = 0.7
    no_parking_min_span_s: float = 2 * 86400.0
    leave_margin_m: float = 1.0  # a car that leaves frees its length and the room it needed
    grace_s: float = 10.0  # an input this far behind the shard's watermark still counts

    def drop_after_ms(self, lifetime_s: float) -> int:
        """How long after its last sighting a spot is less likely free than ``drop_below_p``."""
        return int(lifetime_s * math.log(1 / self.drop_below_p) * 1000)


def usable_gap(item: Mapping[str, Any], params: ParkingParams) -> bool:
    """A gap report the finder takes: long enough for a car, scanned slowly enough (a car that
    says nothing of its speed is believed), with a position."""
    if item.get("lat") is None or item.get("lon") is None:
        return False
    speed, length = item.get("speed"), item.get("length")
    if not isinstance(length, int | float) or isinstance(length, bool):
        return False
    if not params.min_length_m <= length <= MAX_GAP_M:
        return False
    return not (isinstance(speed, int | float) and speed > params.max_scan_speed_kmh)


def new_site(item: Mapping[str, Any], site_id: str, length: float) -> Site:
    ts = int(item["ts"])
    return {
        "id": site_id,
        "lat": float(item["lat"]),
        "lon": float(item["lon"]),
        "length": length,
        "heading": item.get("heading"),
        "side": item.get("side") or CurbSide.RIGHT.value,
        "weight": 0,
        "first_ts": ts,
        "last_ts": ts,
        "free_n": 0,  # passes that saw it free
        "busy_n": 0,  # passes that saw it taken
        "parks": [],  # where cars that parked in it or left it stood: [lat, lon]
        "no_parking": False,
        "passers": {},  # vin -> when it drove past, not yet known whether it saw it free
        "seen": {},  # vin -> when it last said it was free
        "spot": None,
    }


def matches(
    site: Site, lat: float, lon: float, heading: Any, radius_m: float, max_diff: float
) -> float | None:
    """The distance from ``site`` to a point on the same side of the same street (heading
    within ``max_diff``, when both are known), if within ``radius_m``."""
    distance = distance_m(site["lat"], site["lon"], lat, lon)
    if distance > radius_m:
        return None
    known = heading is not None and site["heading"] is not None
    if known and heading_diff(float(heading), float(site["heading"])) > max_diff:
        return None
    return distance


def same_length(site: Site, length: float | None) -> bool:
    """Whether a stretch of ``length`` may be the site's (a gap of two spots is not one)."""
    if length is None:
        return True
    known = float(site.get("length", _SITE_LENGTH_M))
    metres, share = _SAME_LENGTH
    return abs(known - length) <= max(metres, share * max(known, length))


def free_sighting_cost(
    site: Site, distance_m: float, ts: int, lifetime_s: float, params: ParkingParams
) -> float:
    """How unlikely it is that a gap seen ``distance_m`` from ``site`` is the site seen free
    (a negative log-likelihood): a gap beside a driveway and a spot taken most of the time is
    the driveway, even when placing noise put it nearer the spot."""
    if site["no_parking"]:
        free = 1.0
    elif site["spot"] is not None:
        age_s = max(0, ts - int(site["spot"]["observed_ts"])) / 1000
        free = max(params.unknown_free, math.exp(-age_s / lifetime_s))
    else:
        free = params.unknown_free
    return distance_m**2 / (2 * params.placing_sigma_m**2) - math.log(free)


def reach_of(gap: Mapping[str, Any]) -> float:
    """How far from its middle a gap report reaches along the street (half its length and the
    placing error of a car's odometry)."""
    return float(gap["length"]) / 2 + _PLACING_M


def covers(
    site: Site, lat: float, lon: float, heading: Any, reach_m: float, max_diff: float
) -> bool:
    """Whether a gap with its middle at (lat, lon), ``reach_m`` either way along ``heading``,
    covers the whole site (on the same side of the same street): a gap over a driveway alone
    says nothing of the spot beside it, nor of a longer stretch that holds both."""
    distance = matches(site, lat, lon, heading, reach_m + _CURB_WIDTH_M, max_diff)
    if distance is None:
        return False
    half = float(site.get("length", _SITE_LENGTH_M)) / 2
    if heading is None:
        return distance + half <= reach_m
    angle = math.radians(bearing_deg(lat, lon, site["lat"], site["lon"]) - float(heading))
    along, across = abs(distance * math.cos(angle)), abs(distance * math.sin(angle))
    return along + half <= reach_m and across <= _CURB_WIDTH_M


def observe(site: Site, item: Mapping[str, Any], length: float) -> None:
    """A report placed at ``site``: its position and length become the means of its reports."""
    weight = min(int(site["weight"]), _MAX_WEIGHT)
    site["length"] = (float(site.get("length", length)) * weight + length) / (weight + 1)
    for field, key in (("lat", "lat"), ("lon", "lon")):
        site[field] = (site[field] * weight + float(item[key])) / (weight + 1)
    if site["heading"] is None and item.get("heading") is not None:
        site["heading"] = float(item["heading"])
    site["weight"] = weight + 1
    site["last_ts"] = max(int(site["last_ts"]), int(item["ts"]))


def see_free(site: Site, item: Mapping[str, Any], source: SpotSource, length: float) -> bool:
    """The site is free at the item's time; whether that is news (a spot not known before)."""
    ts, vin = int(item["ts"]), str(item["vin"])
    spot = site["spot"]
    if spot is None:
        site["spot"] = {
            "first_ts": ts,
            "observed_ts": ts,
            "length": length,
            "n": 1,
            "vins": [vin],
            "source": source.value,
        }
        return True
    n = min(int(spot["n"]), _MAX_WEIGHT)
    spot["length"] = (spot["length"] * n + length) / (n + 1)
    spot["n"] = n + 1
    spot["observed_ts"] = max(int(spot["observed_ts"]), ts)
    if vin not in spot["vins"]:
        spot["vins"] = [*spot["vins"], vin][-_MAX_VINS:]
    return False


def stood_here(site: Site, item: Mapping[str, Any]) -> None:
    """A car parked or left where ``item`` says, at ``site``."""
    parks = site.setdefault("parks", [])
    parks.append([float(item["lat"]), float(item["lon"])])
    del parks[:-_MAX_PARKS]


def parked_in(site: Site, within_m: float) -> bool:
    """Whether a car ever stood on the site where it is now placed: a park recorded when
    reports had placed the site a spot away (next to a driveway) does not count."""
    return any(
        distance_m(site["lat"], site["lon"], lat, lon) <= within_m
        for lat, lon in site.get("parks", [])
    )


def learned_no_parking(site: Site, params: ParkingParams) -> bool:
    """Seen free again and again, over a long enough time, and nobody ever parked there."""
    passes = int(site["free_n"]) + int(site["busy_n"])
    return (
        not parked_in(site, params.stand_m)
        and passes >= params.no_parking_min_passes
        and site["free_n"] >= params.no_parking_free_share * passes
        and (int(site["last_ts"]) - int(site["first_ts"])) / 1000 >= params.no_parking_min_span_s
    )


def lifetime_of(area: dict[str, Any] | None, params: ParkingParams) -> tuple[float, bool]:
    """The mean time a free spot in the area stays free, and whether it was learned there:
    the exponential's maximum-likelihood estimate, time seen free over spots seen taken."""
    if not area or int(area["ends"]) < params.learn_min_ends:
        return params.default_lifetime_s, False
    return max(1.0, float(area["exposure_s"]) / int(area["ends"])), True


def spot_of(site: Site, lifetime_s: float) -> ParkingSpot:
    spot = site["spot"]
    return ParkingSpot(
        spot_id=site["id"],
        latitude=round(site["lat"], 6),
        longitude=round(site["lon"], 6),
        heading_deg=round(float(site["heading"] or 0.0), 1) % 360,
        side=CurbSide(site["side"]),
        length_m=round(float(spot["length"]), 1),
        first_ts=int(spot["first_ts"]),
        observed_ts=int(spot["observed_ts"]),
        reporters=len(spot["vins"]),
        source=SpotSource(spot["source"]),
        lifetime_s=round(lifetime_s, 1),
    )


def cell_record(
    cell: str, cell_state: dict[str, Any], area: dict[str, Any] | None, params: ParkingParams
) -> ParkingCell:
    """What the finder writes of a cell: its free spots, its flow and its trend."""
    ts = int(cell_state.get("ts", 0))
    lifetime, learned = lifetime_of(area, params)
    horizon = ts - int(params.trend_window_s * 1000)
    flow = [delta for at, delta in cell_state["flow"] if horizon <= at <= ts]
    freed, taken = sum(1 for d in flow if d > 0), sum(1 for d in flow if d < 0)
    sites = cell_state["sites"].values()
    return ParkingCell(
        cell=cell,
        ts=ts,
        spots=sorted(
            (spot_of(site, lifetime) for site in sites if site["spot"] is not None),
            key=lambda spot: spot.spot_id,
        ),
        lifetime_s=round(lifetime, 1),
        learned=learned,
        freed=freed,
        taken=taken,
        trend=trend_of(freed, taken),
        no_parking=sum(1 for site in sites if site["no_parking"]),
    )
