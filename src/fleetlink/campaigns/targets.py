"""Which cars a campaign is for, and in which group each one goes (pure).

Targets are chosen once, when the campaign starts (hawkBit's static rollout): cars of the
image's model that run an older version and fit the segment. They are shuffled by a hash of
campaign id and VIN, so the first (canary) group is a fair sample and the split is the same
after a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fleetlink.contracts.campaigns import CampaignSpec
from fleetlink.contracts.purchases import firmware_key


@dataclass
class Car:
    """What the orchestrator knows of a car: from its presence and its latest state."""

    vin: str
    model: str | None = None
    firmware: str | None = None
    online: bool = False
    position: tuple[float, float] | None = None


def _older(firmware: str | None, version: str) -> bool:
    if firmware is None:
        return False
    try:
        return firmware_key(firmware) < firmware_key(version)
    except ValueError:
        return False


def eligible(car: Car, spec: CampaignSpec, target_model: str) -> bool:
    segment = spec.segment
    if car.model != target_model or not _older(car.firmware, spec.version):
        return False
    if segment.models and car.model not in segment.models:
        return False
    if segment.versions and car.firmware not in segment.versions:
        return False
    if segment.vin_prefix is not None and not car.vin.startswith(segment.vin_prefix):
        return False
    if segment.region is not None:
        return car.position is not None and segment.region.holds(*car.position)
    return True


def group_sizes(targets: int, percents: list[float]) -> list[int]:
    """Each group's size; cars left after the listed groups form one more. A listed group gets
    at least one car while any are left, so a 1 % canary of 20 cars is one car, not none."""
    sizes: list[int] = []
    left = targets
    for percent in percents:
        if left <= 0:
            break
        size = min(left, max(1, round(targets * percent / 100)))
        sizes.append(size)
        left -= size
    if left > 0:
        sizes.append(left)
    return sizes


def _shuffle_key(campaign_id: str, vin: str) -> bytes:
    return hashlib.sha256(f"{campaign_id}/{vin}".encode()).digest()


def assign_groups(
    campaign_id: str, cars: list[Car], spec: CampaignSpec, target_model: str
) -> list[list[str]]:
    """The VINs of each group, in rollout order."""
    chosen = sorted(
        (car.vin for car in cars if eligible(car, spec, target_model)),
        key=lambda vin: _shuffle_key(campaign_id, vin),
    )
    groups: list[list[str]] = []
    start = 0
    for size in group_sizes(len(chosen), spec.groups):
        groups.append(chosen[start : start + size])
        start += size
    return groups
