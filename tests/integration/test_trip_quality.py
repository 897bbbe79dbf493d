"""The fleet app's trips against the simulator's own: SUMO traffic with cars that drive from a
curb spot to a curb spot, in simulated time straight into the real Kafka, the real app in
simulated-clock mode; every trip is found, starting and ending within 30 s of the truth, its
distance within 2 %. (A quarter of an hour here; ``bench/trip_quality.py`` drives an hour.)"""

from __future__ import annotations

from pathlib import Path

from fleetlink.settings import Settings
from fleetlink.sim.curb import ParkingPlan, Stay
from fleetlink.sim.trip_quality import measure_trips
from fleetlink.stack import LocalStack
from tests.support.apps import app_platform, running_app, wait_assigned


def test_the_trips_found_are_the_trips_driven(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    # a trip ends after a minute standing (five in service): more trips end within the run
    platform = app_platform(tmp_path, stack_config, simulated_clock=True, fleet={"stop_s": 60.0})
    with running_app(platform, "fleet") as app:
        wait_assigned(platform, "fleet")
        result = measure_trips(
            platform.settings,
            vehicles=100,
            seed=7,
            duration_s=900,
            # short trips and stays: many whole trips in a short run
            plan=ParkingPlan(trip_s=(90.0, 200.0), stays=(Stay(1.0, 60.0, 240.0),)),
            speed=40,
            # a fleet's usual rate, not the bench's 2 s: half the records for the app to read
            interval_s=4.0,
        )
        assert app.poll() is None
    quality = result.quality
    print(quality, f"run {result.run.wall_s} s, catch-up {result.catch_up_s} s")
    assert quality.true_trips >= 15
    assert quality.recall is not None
    assert quality.recall >= 0.95
    assert quality.precision is not None
    # a car SUMO let into traffic after the warm-up has a trip that left no spot: not a true one
    assert quality.precision >= 0.9
    assert quality.distance_within is not None
    assert quality.distance_within >= 0.95
    assert quality.start_error_s[1] <= 30
    assert quality.end_error_s[1] <= 30
