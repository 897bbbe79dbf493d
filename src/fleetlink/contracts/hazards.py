"""Local hazards: which vehicle events make one, its ETSI DENM cause, and its record.

A hazard is confirmed when ``k`` distinct cars report events of one ``group`` within any span of
``window_s`` seconds near one spot; it is valid for ``validity_s`` after its last report. The
cause and sub-cause codes are those of ETSI EN 302 637-3 (DENM ``CauseCodeType``), so a V2X
gateway can turn the record into a DENM without a table of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from fleetlink.contracts.models import EpochMillis, EventKind


class HazardGroup(StrEnum):
    """Reports of one group count together towards one hazard."""

    EMERGENCY_BRAKE = "emergency-brake"
    TRACTION = "traction"  # ABS and ESC: a slippery spot makes cars do either
    STATIONARY = "stationary"
    POST_CRASH = "post-crash"


class DenmCause(msgspec.Struct, frozen=True):
    cause: int
    sub_cause: int = 0


# DENM CauseCodeType values (EN 302 637-3): 99 dangerousSituation (1 emergencyElectronicBrake,
# 3 ESP engaged, 4 ABS engaged), 94 stationaryVehicle, 92 postCrash, 6 adverseWeather-Adhesion.
EMERGENCY_BRAKE: Final = DenmCause(99, 1)
ESC_ENGAGED: Final = DenmCause(99, 3)
ABS_ENGAGED: Final = DenmCause(99, 4)
STATIONARY_VEHICLE: Final = DenmCause(94)
POST_CRASH: Final = DenmCause(92)
ADHESION: Final = DenmCause(6)


class HazardRule(msgspec.Struct, frozen=True):
    """How one group of reports becomes a hazard (the defaults; settings may change them)."""

    group: HazardGroup
    kinds: tuple[EventKind, ...]
    k: int  # distinct cars needed
    window_s: float  # ... within any span this long
    validity_s: float  # valid this long after the last report
    # cars driving past without reporting it mean it is gone (braking, slipping); not so for
    # a standing car or a crash site, which traffic passes in the other lane
    cleared_by_passing: bool = True

    def cause_of(self, kinds: Iterable[EventKind]) -> DenmCause:
        """The cause of a hazard its reporters made with events of ``kinds``."""
        seen = set(kinds)
        if self.group is HazardGroup.TRACTION:
            if seen == {EventKind.ABS_ACTIVATION}:
                return ABS_ENGAGED
            if seen == {EventKind.ESC_ACTIVATION}:
                return ESC_ENGAGED
            return ADHESION  # both: the road, not one driver
        return _GROUP_CAUSES[self.group]


_GROUP_CAUSES: Final = {
    HazardGroup.EMERGENCY_BRAKE: EMERGENCY_BRAKE,
    HazardGroup.STATIONARY: STATIONARY_VEHICLE,
    HazardGroup.POST_CRASH: POST_CRASH,
}

HAZARD_RULES: Final[tuple[HazardRule, ...]] = (
    HazardRule(HazardGroup.EMERGENCY_BRAKE, (EventKind.HARSH_BRAKING,), 3, 60.0, 300.0),
    HazardRule(
        HazardGroup.TRACTION,
        (EventKind.ABS_ACTIVATION, EventKind.ESC_ACTIVATION),
        3,
        300.0,
        600.0,
    ),
    # a car standing on the road with its hazard lights on warns of itself, as a C-ITS car
    # sends its own "stationary vehicle" DENM; traffic drives round it and reports nothing
    HazardRule(HazardGroup.STATIONARY, (EventKind.HAZARD_LIGHTS,), 1, 1.0, 600.0, False),
    HazardRule(HazardGroup.POST_CRASH, (EventKind.CRASH,), 1, 1.0, 1800.0, False),
)

RULE_OF_KIND: Final[dict[EventKind, HazardRule]] = {
    kind: rule for rule in HAZARD_RULES for kind in rule.kinds
}
RULE_OF_GROUP: Final[dict[HazardGroup, HazardRule]] = {rule.group: rule for rule in HAZARD_RULES}


class HazardState(StrEnum):
    CONFIRMED = "confirmed"
    UPDATED = "updated"  # more reporters, validity extended
    CLEARED = "cleared"


class ClearReason(StrEnum):
    EXPIRED = "expired"  # no report within its validity
    PASSED = "passed"  # enough cars passed the spot without reporting it


Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]


class Hazard(msgspec.Struct, frozen=True, omit_defaults=True):
    """A record of ``fleet.hazards`` (key: ``cell``), and the retained warning cars get on
    ``geo/{cell}/warnings/{hazard_id}``.

    ``hazard_id`` is derived from the reports that confirmed it, so a re-run over the same
    input (after a crash, on another instance) names the same hazard the same way.
    """

    hazard_id: str
    state: HazardState
    group: HazardGroup
    cause: int
    sub_cause: int
    cell: str  # H3, resolution GEO_WARNING_RESOLUTION
    latitude: Latitude
    longitude: Longitude
    reporters: int
    first_ts: EpochMillis  # the first confirming report
    confirmed_ts: EpochMillis
    ts: EpochMillis  # event time of this step
    expires_at: EpochMillis
    heading_deg: Annotated[float, Meta(ge=0, lt=360)] | None = None  # of the reporters' travel
    passed: int = 0  # cars that passed without reporting it
    reason: ClearReason | None = None  # set when cleared
