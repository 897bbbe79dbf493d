"""The hazards app against the simulator's truth: SUMO traffic with icy stretches and broken-down
cars, in simulated time straight into the real Kafka, the real app in simulated-clock mode;
every site found, nothing else confirmed. The ten-minute runs and their figures are in
``bench/hazards_quality.py``."""

from __future__ import annotations

from pathlib import Path

from fleetlink.settings import Settings
from fleetlink.sim.hazard_quality import measure, site_plans
from fleetlink.stack import LocalStack
from tests.support.apps import app_platform, running_app, wait_assigned

DURATION_S = 300


def test_every_site_is_found_and_nothing_else(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    # events only (no passes, so no telemetry): the bench runs the full ten minutes with them
    platform = app_platform(
        tmp_path, stack_config, simulated_clock=True, hazards={"clear_after_passes": 0}
    )
    plans = site_plans(DURATION_S, ice=2, breakdowns=2)
    with running_app(platform, "hazards") as app:
        wait_assigned(platform, "hazards")
        result = measure(
            platform.settings, vehicles=600, seed=7, duration_s=DURATION_S, plans=plans
        )
        assert app.poll() is None
    quality = result.quality
    print(
        f"sites {quality.sites}, found {quality.found}, confirmed {quality.confirmed}, "
        f"false {quality.false_positives}, delay p50 {quality.delay_p50_s} s; "
        f"run {result.run.wall_s} s, catch-up {result.catch_up_s} s; events {result.run.events}"
    )
    for site in quality.per_site:
        print(site)
    assert quality.sites == 4
    assert quality.recall == 1.0, quality.per_site
    assert quality.false_positives == 0, quality.false_hazards
    assert quality.delay_max_s is not None
    assert quality.delay_max_s < 120
