"""The hazard warnings a car holds, and which of them lie ahead of it.

Warnings arrive retained on ``geo/{cell}/warnings/{hazard_id}`` for the car's cell and the ring
around it; an empty payload (or a ``cleared`` one) withdraws a warning, and each carries its
own ``expires_at``. A warning is relevant when the hazard lies ahead within ``ahead_m`` and the
car drives the way its reporters drove.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.geo import bearing_deg, distance_m, heading_diff
from fleetlink.contracts.hazards import Hazard, HazardState
from fleetlink.contracts.topics import GEO_ROOT


@dataclass
class WarningBook:
    ahead_m: float = 1000.0
    ahead_cone_deg: float = 60.0  # the hazard lies within this angle of the car's heading
    same_way_deg: float = 90.0  # the car drives within this angle of the reporters' heading
    held: dict[str, Hazard] = field(default_factory=dict)
    first_heard_ms: dict[str, int] = field(default_factory=dict)  # by hazard id
    withdrawn: int = 0
    bad: int = 0

    def receive(self, topic: str, payload: bytes, now_ms: int) -> bool:
        """Take a message of a warning topic; True when it brought a warning to hold."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != GEO_ROOT or parts[2] != "warnings":
            self.bad += 1
            return False
        hazard_id = parts[3]
        if not payload:
            self.withdrawn += hazard_id in self.held
            self.held.pop(hazard_id, None)
            return False
        try:
            hazard = decode(Hazard, payload)
        except UndecodableError:
            self.bad += 1
            return False
        if hazard.state is HazardState.CLEARED or hazard.hazard_id != hazard_id:
            self.held.pop(hazard_id, None)
            return False
        self.held[hazard_id] = hazard
        self.first_heard_ms.setdefault(hazard_id, now_ms)
        return True

    def active(self, now_ms: int) -> list[Hazard]:
        for hazard_id in [i for i, h in self.held.items() if h.expires_at <= now_ms]:
            del self.held[hazard_id]
        return list(self.held.values())

    def ahead(self, lat: float, lon: float, heading: float, now_ms: int) -> list[Hazard]:
        """The warnings a driver at this position and heading should see now."""
        found = []
        for hazard in self.active(now_ms):
            if distance_m(lat, lon, hazard.latitude, hazard.longitude) > self.ahead_m:
                continue
            to_it = bearing_deg(lat, lon, hazard.latitude, hazard.longitude)
            if heading_diff(to_it, heading) > self.ahead_cone_deg:
                continue
            reporters = hazard.heading_deg
            if reporters is not None and heading_diff(reporters, heading) > self.same_way_deg:
                continue
            found.append(hazard)
        return found
