"""What a simulated car reports from its own driving, pure and seeded: the same rules for the
fleet over MQTT and for accelerated runs straight into Kafka.

Braking harder than ``HARSH_BRAKING_MS2`` (0.41 g, inside the 0.35-0.45 g fleet vendors use)
is a harsh-braking event, speeding up harder than ``HARSH_ACCELERATION_MS2`` (0.37 g, GPS
Insight's threshold for light vehicles) a harsh-acceleration event; beyond ``ABS_MS2`` the ABS
engages and the driver switches the hazard lights on. Normal traffic never crashes and only
rarely needs ESC: crashes, icy roads and broken-down cars are hazard sites a scenario places,
with their truth (``fleetlink.sim.hazard_sites``); parking gaps come from the curb a car passes
(``sim.curb``).
Rates are per second of driving, whatever the report interval.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Final

from fleetlink.contracts.models import EventKind

HARSH_BRAKING_MS2: Final = 4.0
HARSH_ACCELERATION_MS2: Final = 3.6
ABS_MS2: Final = 6.5
# an ESC intervention per ~28 hours of driving on dry roads: rare enough that three near one
# spot within five minutes (a traction hazard) never happen by chance in a city-sized fleet
ESC_PER_S: Final = 1e-5
DTC_PER_S: Final = 0.0001
_DTC_CODES: Final = ("P0300", "P0420", "C0035", "B1000", "U0100")

Report = tuple[EventKind, dict[str, Any]]


@dataclass
class CarEvents:
    """One car's event rules; ``open_dtcs`` are the trouble codes it has raised."""

    rng: random.Random
    hazard_lights: bool = False
    open_dtcs: set[str] = field(default_factory=set)

    def step(self, decel_ms2: float, dt_s: float, accel_ms2: float = 0.0) -> list[Report]:
        """The events of ``dt_s`` seconds that ended braking at ``decel_ms2`` or speeding up at
        ``accel_ms2`` (m/s², >= 0)."""
        rng = self.rng
        reports: list[Report] = []
        if self.hazard_lights and rng.random() < 0.2:
            self.hazard_lights = False
        if decel_ms2 >= HARSH_BRAKING_MS2:
            reports.append((EventKind.HARSH_BRAKING, {"deceleration_ms2": round(decel_ms2, 2)}))
            if decel_ms2 >= ABS_MS2:
                reports.append((EventKind.ABS_ACTIVATION, {"deceleration_ms2": decel_ms2}))
                self.hazard_lights = True
                reports.append((EventKind.HAZARD_LIGHTS, {"on": True, "standing_s": 0}))
        if accel_ms2 >= HARSH_ACCELERATION_MS2:
            reports.append(
                (EventKind.HARSH_ACCELERATION, {"acceleration_ms2": round(accel_ms2, 2)})
            )
        if rng.random() < ESC_PER_S * dt_s:
            reports.append((EventKind.ESC_ACTIVATION, {"yaw_rate_dps": round(rng.uniform(8, 25))}))
        if rng.random() < DTC_PER_S * dt_s:
            code = rng.choice(_DTC_CODES)
            status = "cleared" if code in self.open_dtcs else "raised"
            self.open_dtcs ^= {code}
            reports.append((EventKind.DTC, {"code": code, "status": status}))
        return reports
