"""The stream apps (``fleetlink app run NAME``): their runtime and each app's constants."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from fleetlink.contracts.hazards import HazardGroup
from fleetlink.settings.base import Section


class HazardRuleSettings(Section):
    """Changes to one group's default rule (``contracts.hazards.HAZARD_RULES``)."""

    k: int | None = Field(default=None, ge=1, le=100)
    window_s: float | None = Field(default=None, gt=0, le=86400)
    validity_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    cleared_by_passing: bool | None = None


class HazardAppSettings(Section):
    """Local hazard warnings (``fleetlink app run hazards``)."""

    rules: dict[HazardGroup, HazardRuleSettings] = Field(default_factory=dict)
    near_m: float = Field(default=150.0, gt=0, le=2000)
    # harsh braking counts towards an emergency-brake hazard from this deceleration on (m/s²;
    # 0.6 g, an emergency stop; C2C-CC's EEBL triggers at 7): fleets call 0.4 g "harsh", and
    # drivers brake that hard at every red light
    emergency_brake_min_ms2: float = Field(default=6.0, ge=0, le=15)
    # hazard lights count towards a stationary hazard once the car has stood this long (s):
    # a driver who stops hard, lights on, and drives on is no broken-down car
    stationary_min_s: float = Field(default=30.0, ge=0, le=3600)
    pass_radius_m: float = Field(default=50.0, gt=0, le=1000)
    pass_min_speed_kmh: float = Field(default=20.0, ge=0, le=300)
    pass_grace_s: float = Field(default=10.0, ge=0, le=3600)
    # this many cars in a row that drive past without reporting it clear a hazard (of a rule
    # that is cleared by passing); 0: only its validity ends it (and the app reads no telemetry)
    clear_after_passes: int = Field(default=3, ge=0, le=1000)
    # places are spread over the app's partitions by their H3 cell at this resolution
    shard_resolution: int = Field(default=7, ge=0, le=8)


class ParkingAppSettings(Section):
    """The free-parking finder (``fleetlink app run parking``)."""

    # a free spot's mean lifetime where the area's own turnover is not yet known (s): street
    # parking in a busy district turns over in minutes; learned per area from the gaps seen end
    default_lifetime_s: float = Field(default=600.0, gt=0, le=7 * 86400)
    learn_min_ends: int = Field(default=20, ge=1, le=100_000)  # ends seen before it is learned
    area_resolution: int = Field(default=8, ge=0, le=9)  # H3: the areas lifetimes are learned in
    max_scan_speed_kmh: float = Field(default=55.0, gt=0, le=200)  # the side sensors' limit
    min_length_m: float = Field(default=5.0, gt=0, le=50)  # a car fits (parallel parking)
    merge_m: float = Field(default=8.0, gt=0, le=50)  # reports this close are one spot
    # a gap is put on the stretch it most likely is: near (cars place gaps this far off, one
    # sigma) and likely free (a stretch last seen taken is free with this chance)
    placing_sigma_m: float = Field(default=2.5, gt=0, le=50)
    unknown_free: float = Field(default=0.25, gt=0, lt=1)
    stand_m: float = Field(
        default=3.0, gt=0, le=20
    )  # a parking car stands on the stretch this close
    max_heading_diff_deg: float = Field(default=30.0, gt=0, le=180)  # ... on one side of a street
    # cars that drive past a known spot (telemetry within this distance, on its side, slow
    # enough to scan) and do not report it saw it taken; False: the app reads no telemetry
    use_passes: bool = True
    pass_m: float = Field(default=12.0, gt=0, le=100)
    pass_grace_s: float = Field(default=10.0, ge=0, le=600)  # a passer reports it this late
    drop_below_p: float = Field(default=0.05, gt=0, lt=1)  # spots less likely free are dropped
    trend_window_s: float = Field(default=600.0, gt=0, le=86400)
    # a stretch seen free on at least this many passes, this share of them, over at least this
    # span of time, and never parked in, is no parking spot (a driveway, a bus stop); a spot
    # is free a tenth of the time, while a driveway's passes miss it now and then (5-10% of
    # gaps go unseen, some are placed on the spot beside it): about 0.8 of them see it free
    no_parking_min_passes: int = Field(default=10, ge=2, le=100_000)
    no_parking_free_share: float = Field(default=0.7, gt=0, le=1)
    no_parking_min_span_s: float = Field(default=2 * 86400.0, ge=0, le=365 * 86400)
    shard_resolution: int = Field(default=7, ge=0, le=8)


class FleetAppSettings(Section):
    """Fleet tracking (``fleetlink app run fleet``): vehicle state and trips."""

    # a trip starts at this speed (Samsara's 5 mph) and ends after ``stop_s`` below it (a stop at
    # a light or a short errand does not split it), or when the car is silent for ``silence_s``
    start_kmh: float = Field(default=8.0, gt=0, le=100)
    stop_s: float = Field(default=300.0, gt=0, le=86400)
    silence_s: float = Field(default=600.0, gt=0, le=86400)
    # a vehicle's state is written on every change of kind at once, its position at most this
    # often (a dashboard's map needs no more; the API coalesces to one frame a second anyway)
    state_every_s: float = Field(default=2.0, ge=0, le=3600)
    harsh_once_s: float = Field(default=30.0, ge=0, le=3600)  # one harsh episode, one count
    sweep_every_s: float = Field(default=5.0, gt=0, le=600)  # trips that end without input
    low_battery_pct: float = Field(default=20.0, ge=0, le=100)  # ``GET /v1/vehicles?low_battery``
    # geofence hysteresis: a car enters after ``fence_fixes`` fixes in a row inside a fence and
    # exits after as many farther than ``fence_band_m`` outside it (GPS error is a few metres)
    fence_band_m: float = Field(default=25.0, ge=0, le=1000)
    fence_fixes: int = Field(default=2, ge=1, le=20)
    fences_per_owner: int = Field(default=100, ge=1, le=100_000)  # an admin's are not counted


class MaintenanceAppSettings(Section):
    """Predictive maintenance (``fleetlink app run maintenance``): alerts from cars' data."""

    # tires: placard pressures (the simulator's cars; a real fleet sets its models'), a leak
    # at this many kPa a day below the car's other wheels, judged over at least this long
    placard_front_kpa: float = Field(default=240.0, gt=0, le=1000)
    placard_rear_kpa: float = Field(default=235.0, gt=0, le=1000)
    leak_kpa_per_day: float = Field(default=7.0, gt=0, le=500)
    leak_min_span_s: float = Field(default=6 * 3600.0, gt=0, le=30 * 86400)
    # the traction battery: a fade faster than this, over at least this many daily means
    fade_pct_per_year: float = Field(default=5.0, gt=0, le=100)
    fade_min_days: int = Field(default=90, ge=2, le=3650)
    service_interval_km: float = Field(default=15_000.0, gt=0, le=1_000_000)
    service_interval_days: float = Field(default=365.0, gt=0, le=3650)
    dtc_repeat_quiet_s: float = Field(default=86_400.0, ge=0, le=30 * 86400)


class AppsSettings(Section):
    """What every stream app shares."""

    state_dir: Path | None = None  # default: <stack.state_dir>/apps
    group_prefix: str = Field(default="fleetlink-app", pattern=r"^[A-Za-z0-9._-]{1,80}$")
    commit_interval_s: float = Field(default=1.0, gt=0, le=60)
    # ticks move the watermark on: a report waits for it (at most about this long) to be judged
    tick_interval_s: float = Field(default=0.25, gt=0, le=60)
    # Quix Streams asks Kafka for a batch and waits this long for it to fill (its default, 1 s,
    # is a second per hop at live rates: a warning would take seconds)
    poll_timeout_s: float = Field(default=0.02, gt=0, le=5)
    # how long a fetch may wait at the broker for data: Quix asks for the changelogs' offsets one
    # partition at a time when it is assigned partitions, each answer queued behind a waiting
    # fetch (librdkafka's 0.5 s: 12 s before an app with 24 state partitions processed anything)
    fetch_wait_s: float = Field(default=0.05, gt=0, le=5)
    # apps that write exactly once (maintenance): a transaction left open by a killed instance
    # holds back every read_committed reader of its partitions until it times out, so short;
    # each instance keeps one transactional id, so its restart fences the old one at once
    transaction_timeout_s: float = Field(default=10.0, ge=1, le=900)
    # a record's event time (payload ts) may run this far ahead of its Kafka timestamp
    max_clock_ahead_s: float = Field(default=5.0, ge=0, le=3600)
    # a record this far behind its shard's clock still counts; older ones are counted as late
    grace_s: float = Field(default=10.0, ge=0, le=3600)
    # an instance gone this long (not restarted) hands its partitions to the others
    session_timeout_s: float = Field(default=15.0, ge=6, le=1800)
    dedup_ttl_s: float = Field(default=600.0, gt=0, le=7 * 86400)
    # the simulator sets ts and the Kafka timestamp itself: event time is the payload's ts
    simulated_clock: bool = False
    # /metrics and health of instance N of the K-th app (``fleetlink app list``, from 0) on this
    # port + 10 K + N; 0: off
    metrics_port: int = Field(default=9400, ge=0, le=65535)
    hazards: HazardAppSettings = HazardAppSettings()
    parking: ParkingAppSettings = ParkingAppSettings()
    fleet: FleetAppSettings = FleetAppSettings()
    maintenance: MaintenanceAppSettings = MaintenanceAppSettings()
