"""The stream apps fleetlink runs (``fleetlink app list``), each built on ``AppRuntime``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fleetlink.apps.fleet import app as fleet
from fleetlink.apps.hazards import app as hazards
from fleetlink.apps.maintenance import app as maintenance
from fleetlink.apps.parking import app as parking
from fleetlink.apps.runtime.application import AppRuntime
from fleetlink.contracts.topics import KafkaTopic, Site


@dataclass(frozen=True)
class AppSpec:
    name: str
    description: str
    build: Callable[[AppRuntime], None]
    inputs: tuple[KafkaTopic, ...]  # what its lag is measured on
    outputs: tuple[KafkaTopic, ...]
    # where it runs in the edge-cloud topology: where its outputs are written
    site: Site
    exactly_once: bool = False


APPS: Final[dict[str, AppSpec]] = {
    spec.name: spec
    for spec in (
        AppSpec(
            hazards.NAME,
            "local hazard warnings: fleet.events -> fleet.hazards (ETSI DENM causes)",
            hazards.build,
            (KafkaTopic.EVENTS, KafkaTopic.TELEMETRY),
            (KafkaTopic.HAZARDS,),
            Site.EDGE,  # warnings reach nearby cars with no cloud hop, and during a cut
        ),
        AppSpec(
            parking.NAME,
            "free-parking finder: curb events and passing cars -> fleet.parking (spots per cell)",
            parking.build,
            (KafkaTopic.EVENTS, KafkaTopic.TELEMETRY),
            (KafkaTopic.PARKING,),
            Site.EDGE,
        ),
        AppSpec(
            fleet.NAME,
            "fleet tracking: telemetry, harsh events, presence -> fleet.vehicle-state, fleet.trips",
            fleet.build,
            (KafkaTopic.TELEMETRY, KafkaTopic.EVENTS, KafkaTopic.PRESENCE),
            (KafkaTopic.VEHICLE_STATE, KafkaTopic.TRIPS, KafkaTopic.GEOFENCE_EVENTS),
            Site.CLOUD,  # the fleet's owners look at it there, beside the API
        ),
        AppSpec(
            maintenance.NAME,
            "predictive maintenance: tires, battery, service, DTCs -> fleet.alerts (exactly once)",
            maintenance.build,
            (KafkaTopic.TELEMETRY, KafkaTopic.EVENTS, KafkaTopic.SERVICES, KafkaTopic.ALERT_ACKS),
            (KafkaTopic.ALERTS,),
            Site.CLOUD,
            exactly_once=True,
        ),
    )
}


def metrics_offset(name: str) -> int:
    """Where app ``name``'s metrics ports start after ``apps.metrics_port``: ten per app, in
    the order listed, so the apps of one host never want the same port."""
    return 10 * list(APPS).index(name)
