"""Light kinematic movement for large fleets: cars driving a street grid laid over a real city.

Deterministic for a seed. Each car drives from intersection to intersection along the grid,
accelerating, cruising, braking for the next turn and sometimes stopping at a red light, so the
telemetry has realistic speeds, headings and harsh-braking moments. SUMO mode (``sumo``) drives
the cars through a full traffic simulation instead.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from fleetlink.vehicle.state import VehicleState

EARTH_RADIUS_M = 6_371_000.0
# Berlin Mitte: the grid's south-west corner
ORIGIN_LAT = 52.5100
ORIGIN_LON = 13.3800
BLOCK_M = 120.0
GRID = 20  # intersections per side (about 2.3 km x 2.3 km)


def to_lat_lon(x_m: float, y_m: float) -> tuple[float, float]:
    lat = ORIGIN_LAT + math.degrees(y_m / EARTH_RADIUS_M)
    lon = ORIGIN_LON + math.degrees(x_m / (EARTH_RADIUS_M * math.cos(math.radians(ORIGIN_LAT))))
    return lat, lon


ODOMETER_AT_START_KM = 10_000.0
_WH_PER_M = 1 / 50_000  # state of charge points per metre driven (a 50 km charge per 1 %)


def report_motion(state: VehicleState, car: Car, where: tuple[float, float], dt_s: float) -> None:
    """What a car's sensors tell its agent after ``dt_s`` seconds of driving: where it is,
    its heading and speed, its odometer, its battery drained by the way."""
    state.latitude, state.longitude = where
    state.heading_deg = car.heading_deg % 360
    state.speed_kmh = car.speed_ms * 3.6
    state.odometer_km = ODOMETER_AT_START_KM + car.odometer_m / 1000
    state.battery_soc = max(5.0, state.battery_soc - car.speed_ms * dt_s * _WH_PER_M)


@dataclass
class Car:
    x_m: float
    y_m: float
    target: tuple[int, int]
    speed_ms: float = 0.0
    cruise_ms: float = 13.9
    wait_s: float = 0.0
    heading_deg: float = 0.0
    odometer_m: float = 0.0
    last_decel_ms2: float = 0.0
    last_accel_ms2: float = 0.0


class KinematicFleet:
    """``count`` cars on the grid; ``step(dt)`` moves them all."""

    def __init__(self, count: int, seed: int) -> None:
        self._rng = random.Random(seed)
        self.cars = [self._new_car() for _ in range(count)]

    def _new_car(self) -> Car:
        rng = self._rng
        i, j = rng.randrange(GRID), rng.randrange(GRID)
        return Car(
            x_m=i * BLOCK_M,
            y_m=j * BLOCK_M,
            target=self._neighbour(i, j),
            cruise_ms=rng.uniform(8.0, 16.7),  # 30 to 60 km/h
        )

    def _neighbour(self, i: int, j: int) -> tuple[int, int]:
        options = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        options = [(a, b) for a, b in options if 0 <= a < GRID and 0 <= b < GRID]
        return self._rng.choice(options)

    def step(self, dt: float) -> None:
        for car in self.cars:
            self._move(car, dt)

    def _move(self, car: Car, dt: float) -> None:
        car.last_decel_ms2 = 0.0
        if car.speed_ms > 8 and self._rng.random() < 0.001 * dt:  # a child runs into the street
            car.last_decel_ms2 = min(car.speed_ms / dt, 7.0) if dt > 0 else 0.0
            car.speed_ms = max(0.0, car.speed_ms - car.last_decel_ms2 * dt)
            return
        if car.wait_s > 0:
            car.wait_s = max(0.0, car.wait_s - dt)
            return
        tx, ty = car.target[0] * BLOCK_M, car.target[1] * BLOCK_M
        dx, dy = tx - car.x_m, ty - car.y_m
        distance = math.hypot(dx, dy)
        braking_distance = car.speed_ms**2 / (2 * 3.0)
        before = car.speed_ms
        if distance <= braking_distance + 1.0:
            car.speed_ms = max(2.0, car.speed_ms - 3.0 * dt)
        else:
            car.speed_ms = min(car.cruise_ms, car.speed_ms + 2.0 * dt)
        travel = min(distance, car.speed_ms * dt)
        if distance > 0:
            car.heading_deg = (math.degrees(math.atan2(dx, dy)) + 360) % 360
            car.x_m += dx / distance * travel
            car.y_m += dy / distance * travel
            car.odometer_m += travel
        if distance - travel <= 0.5:
            car.x_m, car.y_m = tx, ty
            if self._rng.random() < 0.3:  # red light
                car.speed_ms = 0.0
                car.wait_s = self._rng.uniform(5, 30)
            car.target = self._neighbour(*car.target)
        car.last_decel_ms2 = max(0.0, (before - car.speed_ms) / dt) if dt > 0 else 0.0
        car.last_accel_ms2 = max(0.0, (car.speed_ms - before) / dt) if dt > 0 else 0.0

    def position(self, index: int) -> tuple[float, float]:
        car = self.cars[index]
        return to_lat_lon(car.x_m, car.y_m)

    def close(self) -> None:
        return
