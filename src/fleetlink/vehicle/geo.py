"""Which ``geo/{cell}/warnings/+`` filters a vehicle subscribes to, as it moves."""

from __future__ import annotations

from fleetlink.contracts.geo import cell_of, warning_cells

__all__ = ["cell_of", "subscription_changes", "warning_cells"]


def subscription_changes(
    current: frozenset[str], wanted: frozenset[str]
) -> tuple[list[str], list[str]]:
    """Cells to subscribe to and cells to leave, sorted (so the order is deterministic)."""
    return sorted(wanted - current), sorted(current - wanted)
