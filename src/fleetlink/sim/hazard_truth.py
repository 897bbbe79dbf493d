"""The simulator's truth about hazards, and how well the hazards app found them, pure.

A ``HazardSite`` is a hazard the simulator put in the city (an icy stretch, a broken-down car)
for a span of simulated time. A confirmed hazard *finds* a site when it is of the group the site
makes cars report, lies within ``match_m`` of it and was confirmed while the site was there
(or within ``after_s`` of its end: reports still in flight). Recall is the share of sites found,
precision the share of confirmed hazards that found a site, delay the time from a site's start
(and from its first report) to its first confirmation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

import msgspec

from fleetlink.contracts.geo import distance_m
from fleetlink.contracts.hazards import Hazard, HazardGroup, HazardState


class SiteKind(StrEnum):
    ICE = "ice"  # a slippery stretch: cars passing it engage ABS or ESC
    BREAKDOWN = "breakdown"  # a car stands on the road with its hazard lights on


GROUP_OF_SITE = {SiteKind.ICE: HazardGroup.TRACTION, SiteKind.BREAKDOWN: HazardGroup.STATIONARY}


class HazardSite(msgspec.Struct, frozen=True):
    site_id: str
    kind: SiteKind
    latitude: float
    longitude: float
    start_ms: int
    end_ms: int
    first_report_ms: int | None = None  # the first report a car sent about it


class SiteResult(msgspec.Struct, frozen=True):
    site_id: str
    kind: SiteKind
    found: bool
    hazards: int  # confirmed hazards that found it (more than one: split in two)
    delay_s: float | None  # site start -> first confirmation
    delay_after_report_s: float | None  # first report -> first confirmation


class Quality(msgspec.Struct, frozen=True):
    sites: int
    found: int
    confirmed: int  # hazards confirmed in all
    true_positives: int
    false_positives: int
    recall: float | None
    precision: float | None
    delay_p50_s: float | None
    delay_max_s: float | None
    per_site: list[SiteResult]
    false_hazards: list[Hazard]


def _finds(hazard: Hazard, site: HazardSite, match_m: float, after_ms: int) -> bool:
    return (
        hazard.group is GROUP_OF_SITE[site.kind]
        and site.start_ms <= hazard.confirmed_ts <= site.end_ms + after_ms
        and distance_m(hazard.latitude, hazard.longitude, site.latitude, site.longitude) <= match_m
    )


def score(
    sites: Sequence[HazardSite],
    records: Iterable[Hazard],
    *,
    match_m: float = 300.0,
    after_s: float = 30.0,
) -> Quality:
    """How well ``records`` (the app's output: every step) found ``sites``."""
    confirmed = {h.hazard_id: h for h in records if h.state is HazardState.CONFIRMED}
    after_ms = int(after_s * 1000)
    matched: set[str] = set()
    per_site = []
    for site in sites:
        finding = sorted(
            (h for h in confirmed.values() if _finds(h, site, match_m, after_ms)),
            key=lambda h: h.confirmed_ts,
        )
        matched.update(h.hazard_id for h in finding)
        first = finding[0].confirmed_ts if finding else None
        per_site.append(
            SiteResult(
                site.site_id,
                site.kind,
                found=bool(finding),
                hazards=len(finding),
                delay_s=None if first is None else (first - site.start_ms) / 1000,
                delay_after_report_s=None
                if first is None or site.first_report_ms is None
                else (first - site.first_report_ms) / 1000,
            )
        )
    delays = sorted(r.delay_s for r in per_site if r.delay_s is not None)
    false_hazards = [h for h in confirmed.values() if h.hazard_id not in matched]
    found = sum(r.found for r in per_site)
    return Quality(
        sites=len(sites),
        found=found,
        confirmed=len(confirmed),
        true_positives=len(matched),
        false_positives=len(false_hazards),
        recall=found / len(sites) if sites else None,
        precision=len(matched) / len(confirmed) if confirmed else None,
        delay_p50_s=delays[len(delays) // 2] if delays else None,
        delay_max_s=delays[-1] if delays else None,
        per_site=per_site,
        false_hazards=false_hazards,
    )
