"""The hazards in force, as ``fleet.hazards`` tells them, pure: what the cars are warned about
(the warnings publisher) and what the API answers (its read model) come from this one book.

A record replaces the hazard of its id unless it is older than what is held (a record read
again after a restart changes nothing); ``cleared`` ends it, and so does the end of its validity
without any record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from fleetlink.contracts.geo import distance_m
from fleetlink.contracts.hazards import Hazard, HazardState

_STEP_ORDER = {HazardState.CONFIRMED: 0, HazardState.UPDATED: 1, HazardState.CLEARED: 2}
_ENDED_KEPT: Final = 100_000  # ids of ended hazards remembered (an app re-run repeats a few)


@dataclass
class HazardBook:
    active: dict[str, Hazard] = field(default_factory=dict)
    ended: dict[str, None] = field(default_factory=dict)  # ids, oldest first
    cleared: list[Hazard] = field(default_factory=list)  # since the last ``take_cleared``

    def take(self, hazard: Hazard) -> bool:
        """Hold a record; True when it changed what is in force (or ended it)."""
        hazard_id = hazard.hazard_id
        if hazard_id in self.ended:
            return False  # a clearance is final, even when an app re-run repeats older steps
        held = self.active.get(hazard_id)
        if held is not None and _order(hazard) < _order(held):
            return False
        if hazard.state is HazardState.CLEARED:
            self.active.pop(hazard_id, None)
            self.ended[hazard_id] = None
            if len(self.ended) > _ENDED_KEPT:
                del self.ended[next(iter(self.ended))]
            self.cleared.append(hazard)
            return True
        if held == hazard:
            return False
        self.active[hazard_id] = hazard
        return True

    def in_force(self, now_ms: int) -> list[Hazard]:
        """The hazards not cleared and still valid at ``now_ms`` (the expired are let go)."""
        for hazard_id in [i for i, h in self.active.items() if h.expires_at <= now_ms]:
            del self.active[hazard_id]
        return list(self.active.values())

    def near(
        self, lat: float, lon: float, radius_m: float, now_ms: int
    ) -> list[tuple[float, Hazard]]:
        """``(distance in metres, hazard)`` of those in force within ``radius_m``, nearest first."""
        found = [
            (distance_m(lat, lon, hazard.latitude, hazard.longitude), hazard)
            for hazard in self.in_force(now_ms)
        ]
        return sorted((pair for pair in found if pair[0] <= radius_m), key=lambda p: p[0])

    def take_cleared(self) -> list[Hazard]:
        """The clearances taken since the last call (each warning is withdrawn once)."""
        cleared, self.cleared = self.cleared, []
        return cleared


def _order(hazard: Hazard) -> tuple[int, int, int]:
    return (_STEP_ORDER[hazard.state], hazard.ts, hazard.reporters)
