"""Fleet cars between trips: where each trip ends, where the car parks, for how long.

A trip heads for a curb spot chosen at its start (the driver's destination, free or not). On
arrival the car takes that spot if it is free, else the nearest free one on the same edge, else
the nearest within ``search_m``; with none free it drives on to a new destination. A stay is
drawn from the plan's mixture of errands, longer visits and overnight stays. ``SumoFleet`` does
the driving; this only keeps the books.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from fleetlink.sim.curb import CurbModel, ParkingPlan
from fleetlink.sim.parking_truth import CurbSpot


class Parked(NamedTuple):
    spot: CurbSpot
    until_s: float


class ParkingTrips:
    def __init__(self, curb: CurbModel, plan: ParkingPlan, rng: random.Random) -> None:
        if not curb.parking_ids:
            raise ValueError("the curb has no parking spot: no trip could end at one")
        self._curb = curb
        self._plan = plan
        self._rng = rng
        self.parked: dict[int, Parked] = {}
        self.leaving: dict[int, CurbSpot] = {}  # back in traffic as soon as SUMO lets it in
        self.targets: dict[int, CurbSpot] = {}  # where each driving car's trip ends

    def stay_s(self) -> float:
        """How long a car that parks now stays."""
        stays = self._plan.stays
        stay = self._rng.choices(stays, [s.share for s in stays])[0]
        return self._rng.uniform(stay.min_s, stay.max_s)

    def _remaining_s(self) -> float:
        """How much longer a car found parked at a random moment stays.

        A random moment falls into long stays more often than short ones (in proportion to
        their length), and anywhere within the stay.
        """
        stays = self._plan.stays
        weights = [s.share * (s.min_s + s.max_s) / 2 for s in stays]
        stay = self._rng.choices(stays, weights)[0]
        length = math.sqrt(self._rng.uniform(stay.min_s**2, stay.max_s**2))
        return self._rng.uniform(0, length)

    def park_at_start(self, cars: list[int], now_s: float) -> list[tuple[int, CurbSpot]]:
        """Put ``cars`` on free spots, as if they had parked before the run; those it could."""
        free = [s for s in self._curb.parking_ids if self._curb.parkable(s)]
        chosen = self._rng.sample(free, min(len(free), len(cars)))
        placed = []
        for car, spot_id in zip(cars, chosen, strict=False):
            spot = self._curb.spots[spot_id]
            self._curb.take(spot_id)
            self.parked[car] = Parked(spot, now_s + self._remaining_s())
            placed.append((car, spot))
        return placed

    def destination(self, car: int, start_edge: str) -> CurbSpot:
        """A new trip's end: a parking spot off the edge it starts on."""
        spot = self._curb.random_spot(self._rng, avoid_edge=start_edge)
        self.targets[car] = spot
        return spot

    def arrive(self, car: int, now_s: float) -> tuple[CurbSpot | None, CurbSpot]:
        """The car reached its destination: the spot it parks on (None: nowhere free near),
        and the destination."""
        target = self.targets.pop(car)
        curb = self._curb
        spot = target if curb.parkable(target.spot_id) else None
        spot = spot or curb.nearest_free(target, self._plan.search_m)
        if spot is not None:
            curb.take(spot.spot_id)
            self.parked[car] = Parked(spot, now_s + self.stay_s())
        return spot, target

    def due(self, now_s: float) -> list[int]:
        """Cars whose stay is over."""
        return sorted(car for car, parked in self.parked.items() if parked.until_s <= now_s)

    def depart(self, car: int) -> CurbSpot:
        """The car pulls out: it holds its spot until it is on the road."""
        spot = self.parked.pop(car).spot
        self.leaving[car] = spot
        return spot

    def left(self, car: int) -> CurbSpot:
        """The car is on the road: its spot is free."""
        spot = self.leaving.pop(car)
        self._curb.release(spot.spot_id)
        return spot
