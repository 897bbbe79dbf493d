"""What the purchase rules hand back, and the small moves they make on records, pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from fleetlink.contracts.purchases import Entitlement, Purchase, PurchaseState, PurchaseStep


@dataclass
class Outcome:
    """What to write: purchases (key purchase id) and entitlements (key ``{vin}/{feature}``)."""

    purchases: list[Purchase] = field(default_factory=list)
    entitlements: list[Entitlement] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.purchases or self.entitlements)

    def extend(self, other: Outcome) -> None:
        self.purchases += other.purchases
        self.entitlements += other.entitlements


def advance(purchase: Purchase, state: PurchaseState, now_ms: int, reason: str | None) -> Purchase:
    """The purchase in a new state, the step added to its history."""
    history = [*purchase.history, PurchaseStep(state, now_ms, reason)]
    return changed(purchase, state=state, updated_at=now_ms, reason=reason, history=history)


def changed(purchase: Purchase, **changes: Any) -> Purchase:
    return msgspec.structs.replace(purchase, **changes)


def changed_entitlement(entitlement: Entitlement, **changes: Any) -> Entitlement:
    return msgspec.structs.replace(entitlement, **changes)


def ended(entitlement: Entitlement, now_ms: int, reason: str) -> Entitlement:
    """The entitlement's next version, off."""
    return msgspec.structs.replace(
        entitlement, active=False, version=entitlement.version + 1, ts=now_ms, reason=reason
    )
