"""The simulated vehicle's state, and its VSS telemetry view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetlink.contracts import vss
from fleetlink.contracts.models import Presence, PresenceStatus, SignalValue


@dataclass
class VehicleState:
    vin: str
    latitude: float
    longitude: float
    heading_deg: float = 0.0
    speed_kmh: float = 0.0
    odometer_km: float = 10_000.0
    battery_soc: float = 80.0
    battery_soh: float = 97.0
    tire_kpa: tuple[float, float, float, float] = (240.0, 240.0, 235.0, 235.0)
    ambient_c: float = 12.0
    doors_locked: bool = True
    trunk_open: bool = False
    trunk_locked: bool = True
    hazard_lights: bool = False
    climate_on: bool = False
    climate_target_c: float = 21.0
    charging: bool = False
    features: set[str] = field(default_factory=set)
    feature_until: dict[str, int] = field(default_factory=dict)  # subscriptions end by themselves
    model: str = "fl-sedan"
    firmware: str = "2026.40"
    # the hardware a feature needs is fitted for these; None: for every feature
    equipment: frozenset[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    # digital keys: uses so far per grant id, and the grants the owner revoked
    grant_uses: dict[str, int] = field(default_factory=dict)
    revoked_grants: set[str] = field(default_factory=set)

    def presence(self, status: PresenceStatus, reason: str, now_ms: int) -> Presence:
        """Birth or will: online or not, and what the car is (the catalogue's checks read it)."""
        return Presence(status, now_ms, reason, model=self.model, firmware=self.firmware)

    def feature_active(self, feature: str, now_ms: int) -> bool:
        until = self.feature_until.get(feature)
        return feature in self.features and (until is None or now_ms < until)

    def signals(self) -> dict[str, SignalValue]:
        return {
            vss.LATITUDE: round(self.latitude, 6),
            vss.LONGITUDE: round(self.longitude, 6),
            vss.HEADING: round(self.heading_deg, 1),
            vss.SPEED: round(self.speed_kmh, 1),
            vss.ODOMETER: round(self.odometer_km, 3),
            vss.BATTERY_STATE_OF_CHARGE: round(self.battery_soc, 1),
            vss.BATTERY_STATE_OF_HEALTH: round(self.battery_soh, 1),
            vss.TIRE_PRESSURE_FRONT_LEFT: self.tire_kpa[0],
            vss.TIRE_PRESSURE_FRONT_RIGHT: self.tire_kpa[1],
            vss.TIRE_PRESSURE_REAR_LEFT: self.tire_kpa[2],
            vss.TIRE_PRESSURE_REAR_RIGHT: self.tire_kpa[3],
            vss.AMBIENT_TEMPERATURE: round(self.ambient_c, 1),
            vss.DOOR_ROW1_DRIVER_IS_LOCKED: self.doors_locked,
            vss.TRUNK_REAR_IS_OPEN: self.trunk_open,
            vss.TRUNK_REAR_IS_LOCKED: self.trunk_locked,
            vss.HAZARD_LIGHTS_ON: self.hazard_lights,
            vss.HVAC_IS_ON: self.climate_on,
            vss.HVAC_TARGET_TEMPERATURE: self.climate_target_c,
            vss.BATTERY_IS_CHARGING: self.charging,
        }


# latitude, longitude, heading (degrees) and speed (km/h) of an event placed by the car
Placing = tuple[float, float, float, float]


@dataclass
class AgentStats:
    """What one car's agent counted while it ran."""

    published: int = 0  # PUBACKs received, re-sends included
    resent: int = 0  # telemetry sampled while offline (marked ``resent`` in the payload)
    unconfirmed_max: int = 0
    held_at_exit: int = 0  # still in the outbox when the agent stopped: lost with the process
    bad_confirmations: int = 0
    connects: int = 0
    disconnects: int = 0
    commands: int = 0
    errors: int = 0
    malformed: int = 0
    warnings: int = 0
    answers_lost: int = 0
