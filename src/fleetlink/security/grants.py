"""The rules of a digital key: the same check in the API (before sending) and in the car (offline,
the last word: only the car knows its own use count, its clock and where it stands)."""

from __future__ import annotations

from typing import Final

import h3

from fleetlink.contracts.models import CommandName, Grant

# Cars' clocks drift; a key is honoured this long before and after its window, never longer.
MAX_CLOCK_SKEW_MS: Final = 60_000


def grant_refusal(
    grant: Grant,
    *,
    vin: str,
    command: CommandName,
    now_ms: int,
    uses: int = 0,
    revoked: bool = False,
    position: tuple[float, float] | None = None,
    skew_ms: int = MAX_CLOCK_SKEW_MS,
) -> str | None:
    """Why this use of the key is refused (a reason code), or None when it is allowed.

    ``position`` is checked only by the car (the API does not know where the car is now).
    """
    if revoked:
        return "key-revoked"
    if grant.vin != vin:
        return "key-wrong-vehicle"
    if command not in grant.commands:
        return "key-command-not-allowed"
    if now_ms < grant.not_before - skew_ms:
        return "key-not-yet-valid"
    if now_ms > grant.not_after + skew_ms:
        return "key-expired"
    if uses >= grant.max_uses:
        return "key-used-up"
    fence = grant.geofence
    if fence is not None and position is not None:
        distance = h3.great_circle_distance(position, (fence.latitude, fence.longitude), unit="m")
        if distance > fence.radius_m:
            return "key-outside-geofence"
    return None
