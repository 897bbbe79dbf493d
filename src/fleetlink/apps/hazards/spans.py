"""Which reports confirm a hazard: the earliest span of a rule's window in which enough
distinct cars reported, pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Seen:
    ts: int
    msg_id: str
    vin: str
    lat: float
    lon: float
    heading: float | None
    kind: str
    cell: str


def confirming_span(seen: list[Seen], ts: int, k: int, window_ms: int) -> list[Seen] | None:
    """The earliest span of at most ``window_ms`` around ``ts`` in which ``k`` distinct cars
    reported, or None. Every report of the span is returned (a car may have several)."""
    ordered = sorted(seen)
    for start in ordered:
        if not start.ts <= ts <= start.ts + window_ms:
            continue
        span = [s for s in ordered if start.ts <= s.ts <= start.ts + window_ms]
        if len({s.vin for s in span}) >= k:
            return span
    return None


def first_per_car(span: list[Seen]) -> list[Seen]:
    first: dict[str, Seen] = {}
    for seen in sorted(span):
        first.setdefault(seen.vin, seen)
    return list(first.values())
