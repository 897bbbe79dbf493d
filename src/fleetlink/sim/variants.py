"""What each simulated car is: its model, its firmware and the hardware fitted, drawn per VIN
from a seed (the same fleet every run), so features on demand meet a mixed fleet: cars a
feature is not made for (refused before payment), cars too old for it, and a few that lack
the hardware the platform thinks they have (they refuse the activation: refunded)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

MODELS: Final = (("fl-sedan", 0.5), ("fl-suv", 0.3), ("fl-van", 0.2))
FIRMWARES: Final = (("2026.40", 0.6), ("2026.25", 0.3), ("2026.9", 0.1))
# features whose hardware a car may lack though its model lists it (a build variant)
OPTIONAL_HARDWARE: Final = ("heated-seats", "performance-boost", "extended-range")
LACKING_SHARE: Final = 0.05


@dataclass(frozen=True)
class Variant:
    model: str
    firmware: str
    equipment: frozenset[str] | None  # None: all hardware fitted


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in weighted]
    weights = [weight for _, weight in weighted]
    chosen: str = rng.choices(names, weights)[0]
    return chosen


def variant_for(vin: str, seed: int) -> Variant:
    rng = random.Random(f"{seed}-{vin}-variant")
    model, firmware = _pick(rng, MODELS), _pick(rng, FIRMWARES)
    equipment = None
    if rng.random() < LACKING_SHARE:
        missing = rng.choice(OPTIONAL_HARDWARE)
        equipment = frozenset(f for f in OPTIONAL_HARDWARE if f != missing)
    return Variant(model, firmware, equipment)
