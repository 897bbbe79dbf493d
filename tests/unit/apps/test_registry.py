"""The apps a host runs side by side never want the same metrics port."""

from __future__ import annotations

from fleetlink.apps.registry import APPS, metrics_offset


def test_every_app_has_ten_metrics_ports_of_its_own() -> None:
    offsets = sorted(metrics_offset(name) for name in APPS)
    assert offsets == [10 * n for n in range(len(APPS))]
    assert metrics_offset("hazards") != metrics_offset("parking")
