"""Tire pressure, pure: a slow leak found by its trend, a rapid loss at once.

Gauge pressures are normalised to 20 °C by the ideal gas law, at the tire's own temperature
where its sensor reports it (else the air's: a parked tire takes the air's temperature, a
driven one is warmer), then each wheel is taken relative to the median of the car's four: what
the weather does to all four cancels out, a cold night is no leak. A wheel whose differential
falls faster than ``leak_kpa_per_day`` by a Theil-Sen slope (the median of the slopes between
every two points: robust to a few bad readings) over the last 72 hours, or 1.5 (1.25) times as
fast over the last 12 (24) hours (``windows``; each at least ``min_span_s`` and
``min_points``), is leaking. Normal permeation loses about 0.3 kPa a day on every wheel alike;
a nail about 14-21 kPa a day on one.

A wheel at or below ``critical_share`` of its placard pressure (FMVSS 138: the telltale lights
at 25 % below placard, within 20 minutes) is critical on the record that shows it.

Each finding is told once (a leak not on a wheel told critical: that says more). A wheel
refilled (up ``refill_kpa`` or more at 20 °C since its record before) resolves what was told
of it; every wheel's trend starts again (their median moved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from statistics import median
from typing import Any, Final

import numpy as np

from fleetlink.contracts import vss

_ABSOLUTE_ZERO_C: Final = -273.15
_ATMOSPHERE_KPA: Final = 101.325
_REFERENCE_K: Final = 293.15  # 20 °C
_DAY_S: Final = 86_400.0

WHEELS: Final = vss.TIRE_PRESSURES
_FRONT: Final = frozenset(WHEELS[:2])


class TireFinding(StrEnum):
    LEAK = "tire-leak"  # warning: losing pressure faster than the other wheels
    CRITICAL = "tire-critical"  # at or below 75 % of placard


@dataclass(frozen=True)
class TireParams:
    placard_front_kpa: float = 240.0
    placard_rear_kpa: float = 235.0
    critical_share: float = 0.75
    refill_kpa: float = 5.0
    leak_kpa_per_day: float = 7.0  # about 1 psi a day
    min_span_s: float = 6 * 3600.0
    min_points: int = 12
    # the slope over the last 12 h finds a fast leak soon after it starts (over 72 h the
    # flat days before it outvote it), over 72 h a slow one; a short window's slope is
    # noisier (a drive warms the fronts more than the rears), so it must be steeper:
    # (window, times leak_kpa_per_day)
    windows: tuple[tuple[float, float], ...] = (
        (12 * 3600.0, 1.5),
        (24 * 3600.0, 1.25),
        (72 * 3600.0, 1.0),
    )
    point_every_s: float = 1800.0  # one point per wheel this often: the slope is O(points²)


@dataclass(frozen=True)
class Found:
    wheel: str
    finding: TireFinding
    ts: int
    evidence: dict[str, float]
    raised_ts: int = 0  # of the finding a refill resolves (``resolved``)
    resolved: bool = False


def normalised_kpa(gauge_kpa: float, temperature_c: float) -> float:
    """The gauge pressure the tire would show at 20 °C (same air, ideal gas)."""
    kelvin = temperature_c - _ABSOLUTE_ZERO_C
    return (gauge_kpa + _ATMOSPHERE_KPA) * _REFERENCE_K / kelvin - _ATMOSPHERE_KPA


def theil_sen_per_day(points: list[list[float]]) -> float:
    """The median of the slopes between every two points ``[ts_s, value]``, per day."""
    data = np.asarray(points, dtype=float)
    first, second = np.triu_indices(len(data), 1)
    dt = data[second, 0] - data[first, 0]
    chosen = dt > 0
    slopes = (data[second, 1] - data[first, 1])[chosen] / dt[chosen]
    return float(np.median(slopes)) * _DAY_S


def tire_step(
    state: dict[str, Any],
    ts_ms: int,
    gauge_kpa: Mapping[str, float],
    ambient_c: float,
    params: TireParams,
    tire_c: Mapping[str, float] | None = None,
) -> list[Found]:
    """Take one record of a car's four pressures (``WHEELS`` keys, kPa), the air's
    temperature and, where the sensors report it, each tire's own, into ``state`` (JSON-able,
    the car's own); the findings it makes."""
    if any(wheel not in gauge_kpa for wheel in WHEELS) or ambient_c <= _ABSOLUTE_ZERO_C + 1:
        return []
    if ts_ms <= int(state.get("ts", 0)):
        return []  # history: taken already
    state["ts"] = ts_ms
    now_s = ts_ms / 1000
    inside = dict.fromkeys(WHEELS, ambient_c)
    if tire_c is not None and all(tire_c.get(w, -300) > _ABSOLUTE_ZERO_C + 1 for w in WHEELS):
        inside = {wheel: tire_c[wheel] for wheel in WHEELS}
    normal = {wheel: normalised_kpa(gauge_kpa[wheel], inside[wheel]) for wheel in WHEELS}
    middle = median(normal.values())
    wheels: dict[str, Any] = state.setdefault("wheels", {})
    found: list[Found] = []
    for wheel in WHEELS:
        mine = wheels.setdefault(wheel, {"points": [], "told": {}})
        if normal[wheel] - float(mine.get("last", normal[wheel])) >= params.refill_kpa:
            found += _refilled(mine, wheel, ts_ms, normal[wheel])
            for other in wheels.values():  # the median moved: every trend starts again
                other["points"] = []
    for wheel in WHEELS:
        mine = wheels[wheel]
        placard = params.placard_front_kpa if wheel in _FRONT else params.placard_rear_kpa
        differential = normal[wheel] - middle
        mine["last"] = round(normal[wheel], 3)
        points: list[list[float]] = mine["points"]
        if normal[wheel] <= params.critical_share * placard:
            evidence = {"kpa_at_20c": round(normal[wheel], 1), "placard_kpa": placard}
            found += _tell(mine, wheel, TireFinding.CRITICAL, ts_ms, evidence)
        if points and now_s - points[-1][0] < params.point_every_s:
            continue  # the trend is judged at each new point
        points.append([now_s, round(differential, 3)])
        mine["points"] = points = [
            p for p in points if now_s - p[0] <= max(w for w, _ in params.windows)
        ]
        slope = _steepest(points, params)
        if slope is not None and TireFinding.CRITICAL.value not in mine["told"]:
            per_day, span_s, count = slope
            evidence = {
                "kpa_per_day": round(per_day, 2),
                "below_other_wheels_kpa": round(-differential, 1),
                "kpa_at_20c": round(normal[wheel], 1),
                "hours": round(span_s / 3600, 1),
                "points": float(count),
            }
            found += _tell(mine, wheel, TireFinding.LEAK, ts_ms, evidence)
    return found


def _steepest(points: list[list[float]], params: TireParams) -> tuple[float, float, int] | None:
    """The first window (the shortest) whose slope is a leak: (kPa a day, its span, points)."""
    now_s = points[-1][0]
    for window_s, steeper in params.windows:
        recent = [p for p in points if now_s - p[0] <= window_s]
        span_s = now_s - recent[0][0]
        if len(recent) < params.min_points or span_s < params.min_span_s:
            continue
        per_day = theil_sen_per_day(recent)
        if per_day <= -params.leak_kpa_per_day * steeper:
            return per_day, span_s, len(recent)
    return None


def _tell(
    wheel_state: dict[str, Any],
    wheel: str,
    finding: TireFinding,
    ts_ms: int,
    evidence: dict[str, float],
) -> list[Found]:
    told: dict[str, int] = wheel_state["told"]
    if finding.value in told:
        return []
    told[finding.value] = ts_ms
    return [Found(wheel, finding, ts_ms, evidence)]


def _refilled(
    wheel_state: dict[str, Any], wheel: str, ts_ms: int, kpa_at_20c: float
) -> list[Found]:
    """The wheel's trend starts again; what was told of it is resolved."""
    told: dict[str, int] = wheel_state["told"]
    evidence = {"kpa_at_20c": round(kpa_at_20c, 1)}
    wheel_state.update(points=[], told={})
    return [
        Found(wheel, TireFinding(finding), ts_ms, evidence, raised_ts=raised, resolved=True)
        for finding, raised in told.items()
    ]
