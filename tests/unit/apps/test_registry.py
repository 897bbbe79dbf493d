"""The apps a host runs side by side never want the same metrics port."""

from __future__ import annotations

from fleetlink.apps.registry import APPS, metrics_offset
from fleetlink.contracts.topics import Site, spec_of


def test_every_app_has_ten_metrics_ports_of_its_own() -> None:
    offsets = sorted(metrics_offset(name) for name in APPS)
    assert offsets == [10 * n for n in range(len(APPS))]
    assert metrics_offset("hazards") != metrics_offset("parking")


def test_every_app_runs_where_what_it_writes_is_written() -> None:
    """Edge-cloud placement: an app beside the topics it writes, so MirrorMaker 2 carries them
    the right way and nothing it writes must cross back."""
    for spec in APPS.values():
        for topic in spec.outputs:
            assert spec_of(topic).written_at is spec.site, (spec.name, topic)
    assert {name: spec.site for name, spec in APPS.items()} == {
        "hazards": Site.EDGE,
        "parking": Site.EDGE,
        "fleet": Site.CLOUD,
        "maintenance": Site.CLOUD,
    }
