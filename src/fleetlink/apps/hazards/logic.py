"""Local hazards, pure: when reports of cars make a hazard, and when it ends.

One ``HazardShard`` holds every place of one shard in a key-value ``Store`` (Quix's state of the
shard's key in the app, a dict in tests). Inputs are plain dicts, as they cross the repartition
topic: a ``report`` (a car's event), a ``pass`` (a car's position while it drives) and a
``tick`` (time goes on without input, so hazards expire). Everything runs on event time: the
shard's clock is a watermark over the app's input partitions (``watermark.EventTime``), reports
and passes wait for it and are judged in event-time order, however partitions interleave.

Confirmation: ``k`` distinct cars report one group within any ``window_s`` span, near one spot
(the same H3 cell, or within ``near_m`` of the new report across a border). A car that reports
twice counts once. An active hazard gains reporters (``updated``, validity extended) and ends
(``cleared``) when its validity is over or, where its rule says passing cars tell (not for a
standing car or a crash: traffic drives round those), when ``clear_after_passes`` cars in a row
drove past it without reporting it (a report starts the count again).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import h3
import msgspec

from fleetlink.apps.hazards.spans import Seen, confirming_span, first_per_car
from fleetlink.apps.runtime.watermark import EventTime, Store
from fleetlink.contracts.geo import cell_of, distance_m, heading_diff, mean_heading
from fleetlink.contracts.hazards import (
    RULE_OF_GROUP,
    RULE_OF_KIND,
    ClearReason,
    Hazard,
    HazardGroup,
    HazardRule,
    HazardState,
)
from fleetlink.contracts.models import EventKind

_NAMESPACE: Final = uuid.UUID("5b1f2f7e-54a4-4c51-9d36-2f4b8d6a1c3e")
_ACTIVE, _OPEN = "active", "open"


@dataclass(frozen=True)
class HazardParams:
    """Every constant of the hazard logic (the app's settings)."""

    rules: Mapping[HazardGroup, HazardRule] = field(default_factory=lambda: dict(RULE_OF_GROUP))
    near_m: float = 150.0  # reports this close count together across a cell border
    grace_s: float = 10.0  # a report this far behind the shard's watermark still counts
    pass_radius_m: float = 50.0
    pass_min_speed_kmh: float = 20.0
    pass_grace_s: float = 10.0  # a passer may still report it this long after passing
    clear_after_passes: int = 3  # 0: passing cars never clear a hazard
    max_heading_diff_deg: float = 90.0  # a car passes only in the reporters' direction

    def rule(self, kind: EventKind) -> HazardRule | None:
        base = RULE_OF_KIND.get(kind)
        return None if base is None else self.rules.get(base.group, base)


@dataclass
class Outcome:
    hazards: list[Hazard] = field(default_factory=list)
    late: bool = False  # the input was too late to count


class HazardShard:
    """The hazards of one shard, kept in ``store``.

    Reports near a shard border reach both shards; only the shard that ``owns`` the hazard's
    cell confirms it, so a hazard is made once.
    """

    def __init__(
        self,
        store: Store,
        params: HazardParams,
        owns: Callable[[str], bool] | None = None,
        sources: int = 1,
    ) -> None:
        self._store = store
        self._params = params
        self._owns = owns
        self._time = EventTime(store, sources)

    # inputs -----------------------------------------------------------------------------------

    def handle(self, item: Mapping[str, Any]) -> Outcome:
        """Take one input; what it (or the watermark a tick moved) decided."""
        kind, ts = item.get("t"), int(item["ts"])
        if kind == "tick":
            return self._settle(self._time.advance(ts, int(item.get("src", 0))))
        clock = self._time.clock()
        too_old = ts < clock - self._params.grace_s * 1000
        if kind == "report":
            rule = self._params.rule(EventKind(item["kind"]))
            if rule is None or item.get("late") or too_old:
                return Outcome(late=rule is not None)
        elif too_old:
            return Outcome(late=True)
        elif not self._may_count(item):
            return Outcome()
        self._time.hold(item)
        return self._settle(clock) if ts <= clock else Outcome()

    def tick(self, ts: int, src: int = 0) -> Outcome:
        return self.handle({"t": "tick", "ts": ts, "src": src})

    def _may_count(self, item: Mapping[str, Any]) -> bool:
        """A pass worth keeping until its time comes: fast enough, near a hazard that passing
        cars may clear (most telemetry is neither, and costs no write)."""
        params = self._params
        if params.clear_after_passes <= 0 or float(item["speed"]) < params.pass_min_speed_kmh:
            return False
        lat, lon = float(item["lat"]), float(item["lon"])
        return any(
            params.rules[HazardGroup(place.split("|", 1)[0])].cleared_by_passing
            and distance_m(lat, lon, where[0], where[1]) <= params.pass_radius_m
            for place, where in self._active().items()
        )

    def _settle(self, clock: int) -> Outcome:
        """Take the queued inputs the watermark has passed, in event-time order (however the
        partitions interleaved them); then expire what ``clock`` ends."""
        outcome = Outcome()
        for item in self._time.due(clock):
            outcome.hazards += self._expire(int(item["ts"]))
            if item["t"] == "report":
                outcome.hazards += self._report(item)
            else:
                self._pass(item)
        outcome.hazards += self._expire(clock)
        self._forget_old_reports(clock)
        return outcome

    def _report(self, item: Mapping[str, Any]) -> list[Hazard]:
        ts = int(item["ts"])
        rule = self._params.rule(EventKind(item["kind"]))
        if rule is None:  # queued only with one
            return []
        lat, lon, vin = float(item["lat"]), float(item["lon"]), str(item["vin"])
        cell = cell_of(lat, lon)
        for place, where in self._active().items():
            group, hazard_cell = place.split("|", 1)
            if group != rule.group or not self._near(where, hazard_cell, lat, lon, cell):
                continue
            updated = self._add_reporter(place, rule, vin, item["kind"], ts)
            return [] if updated is None else [updated]
        self._remember(rule, cell, item)
        confirmed = self._confirm(rule, cell, item)
        return [] if confirmed is None else [confirmed]

    def _pass(self, item: Mapping[str, Any]) -> None:
        """A car drove through (position, speed, heading): a pass for hazards it did not
        report, in the reporters' direction."""
        params = self._params
        ts, vin = int(item["ts"]), str(item["vin"])
        lat, lon, heading = float(item["lat"]), float(item["lon"]), item.get("heading")
        for place, where in self._active().items():
            if not params.rules[HazardGroup(place.split("|", 1)[0])].cleared_by_passing:
                continue
            if distance_m(lat, lon, where[0], where[1]) > params.pass_radius_m:
                continue
            hazard = self._store.get(f"h|{place}")
            if hazard is None or vin in hazard["vins"] or vin in hazard["passers"]:
                continue
            reporters_heading = hazard.get("heading_deg")
            if (
                heading is not None
                and reporters_heading is not None
                and heading_diff(float(heading), reporters_heading) > params.max_heading_diff_deg
            ):
                continue
            hazard["passers"][vin] = ts
            self._store.set(f"h|{place}", hazard)

    # state ------------------------------------------------------------------------------------

    def _active(self) -> dict[str, list[float]]:
        """place ("group|cell") -> [latitude, longitude] of each active hazard."""
        return dict(self._store.get(_ACTIVE, {}))

    def _near(
        self, where: list[float], hazard_cell: str, lat: float, lon: float, cell: str
    ) -> bool:
        return (
            cell == hazard_cell or distance_m(lat, lon, where[0], where[1]) <= self._params.near_m
        )

    def _remember(self, rule: HazardRule, cell: str, item: Mapping[str, Any]) -> None:
        place = f"{rule.group}|{cell}"
        reports: dict[str, list[list[Any]]] = self._store.get(f"r|{place}", {})
        entry = [
            int(item["ts"]),
            float(item["lat"]),
            float(item["lon"]),
            item.get("heading"),
            str(item["msg_id"]),
            str(item["kind"]),
        ]
        horizon = int(item["ts"]) - int((rule.window_s + self._params.grace_s) * 1000)
        entries = [e for e in reports.get(str(item["vin"]), []) if e[0] >= horizon]
        reports[str(item["vin"])] = [*entries, entry]
        self._store.set(f"r|{place}", reports)
        open_places: dict[str, int] = self._store.get(_OPEN, {})
        open_places[place] = max(open_places.get(place, 0), int(item["ts"]))
        self._store.set(_OPEN, open_places)

    def _candidates(self, rule: HazardRule, cell: str, lat: float, lon: float) -> list[Seen]:
        seen: list[Seen] = []
        for near_cell in h3.grid_disk(cell, 1):
            reports = self._store.get(f"r|{rule.group}|{near_cell}")
            if not reports:
                continue
            for vin, entries in reports.items():
                for ts, r_lat, r_lon, heading, msg_id, kind in entries:
                    if (
                        near_cell == cell
                        or distance_m(lat, lon, r_lat, r_lon) <= self._params.near_m
                    ):
                        seen.append(Seen(ts, msg_id, vin, r_lat, r_lon, heading, kind, near_cell))
        return seen

    def _confirm(self, rule: HazardRule, cell: str, item: Mapping[str, Any]) -> Hazard | None:
        ts = int(item["ts"])
        span = confirming_span(
            self._candidates(rule, cell, float(item["lat"]), float(item["lon"])),
            ts,
            rule.k,
            int(rule.window_s * 1000),
        )
        if span is None:
            return None
        first = first_per_car(span)
        anchor = min(span)
        lat = sum(s.lat for s in first) / len(first)
        lon = sum(s.lon for s in first) / len(first)
        hazard_cell = cell_of(lat, lon)
        if self._owns is not None and not self._owns(hazard_cell):
            return None
        active = self._active()
        if f"{rule.group}|{hazard_cell}" in active:
            hazard_cell = cell  # the spot's own cell holds another hazard of this group
        place = f"{rule.group}|{hazard_cell}"
        confirmed_ts = sorted(s.ts for s in first)[rule.k - 1]
        cause = rule.cause_of(EventKind(s.kind) for s in first)
        heading = mean_heading(float(s.heading) for s in first if s.heading is not None)
        hazard = Hazard(
            hazard_id=str(uuid.uuid5(_NAMESPACE, f"{rule.group}|{anchor.msg_id}")),
            state=HazardState.CONFIRMED,
            group=rule.group,
            cause=cause.cause,
            sub_cause=cause.sub_cause,
            cell=hazard_cell,
            latitude=round(lat, 6),
            longitude=round(lon, 6),
            reporters=len(first),
            first_ts=anchor.ts,
            confirmed_ts=confirmed_ts,
            ts=confirmed_ts,
            expires_at=max(s.ts for s in span) + int(rule.validity_s * 1000),
            heading_deg=heading,
        )
        self._consume(rule, span)
        self._store.set(
            f"h|{place}",
            {
                **_fields(hazard),
                "vins": {s.vin: s.kind for s in first},
                "passers": {},
            },
        )
        active[place] = [hazard.latitude, hazard.longitude]
        self._store.set(_ACTIVE, active)
        return hazard

    def _consume(self, rule: HazardRule, span: list[Seen]) -> None:
        """Reports that made a hazard make no second one."""
        used = {s.msg_id for s in span}
        for place_cell in sorted({s.cell for s in span}):
            key = f"r|{rule.group}|{place_cell}"
            reports: dict[str, list[list[Any]]] = self._store.get(key, {})
            kept = {
                vin: [entry for entry in entries if entry[4] not in used]
                for vin, entries in reports.items()
            }
            kept = {vin: entries for vin, entries in kept.items() if entries}
            if kept:
                self._store.set(key, kept)
            else:
                self._store.delete(key)

    def _add_reporter(
        self, place: str, rule: HazardRule, vin: str, kind: str, ts: int
    ) -> Hazard | None:
        stored = self._store.get(f"h|{place}")
        if stored is None:
            return None
        if stored["passers"]:  # it is still there: only cars passing after this report count
            stored["passers"] = {}
            self._store.set(f"h|{place}", stored)
        if vin in stored["vins"]:
            return None
        stored["vins"][vin] = kind
        cause = rule.cause_of(EventKind(k) for k in stored["vins"].values())
        stored.update(
            state=HazardState.UPDATED.value,
            reporters=len(stored["vins"]),
            cause=cause.cause,
            sub_cause=cause.sub_cause,
            ts=max(int(stored["ts"]), ts),
            expires_at=max(int(stored["expires_at"]), ts + int(rule.validity_s * 1000)),
        )
        self._store.set(f"h|{place}", stored)
        return _hazard(stored)

    def _expire(self, clock: int) -> list[Hazard]:
        active = self._active()
        cleared: list[Hazard] = []
        grace_ms = int(self._params.pass_grace_s * 1000)
        for place in sorted(active):
            stored = self._store.get(f"h|{place}")
            if stored is None:
                del active[place]
                continue
            passed = sum(1 for ts in stored["passers"].values() if ts + grace_ms <= clock)
            reason = None
            if clock >= int(stored["expires_at"]):
                reason = ClearReason.EXPIRED
            elif 0 < self._params.clear_after_passes <= passed:
                reason = ClearReason.PASSED
            if reason is None:
                continue
            stored.update(
                state=HazardState.CLEARED.value,
                reason=reason.value,
                passed=passed,
                ts=min(clock, int(stored["expires_at"]))
                if reason is ClearReason.EXPIRED
                else clock,
            )
            cleared.append(_hazard(stored))
            self._store.delete(f"h|{place}")
            del active[place]
        if cleared:
            self._store.set(_ACTIVE, active)
        return cleared

    def _forget_old_reports(self, clock: int) -> None:
        open_places: dict[str, int] = self._store.get(_OPEN, {})
        horizon = clock - int(self._params.grace_s * 1000)
        changed = False
        for place, newest in list(open_places.items()):
            rule = self._params.rules[HazardGroup(place.split("|", 1)[0])]
            if newest + int(rule.window_s * 1000) < horizon:
                self._store.delete(f"r|{place}")
                del open_places[place]
                changed = True
        if changed:
            self._store.set(_OPEN, open_places)


def _fields(hazard: Hazard) -> dict[str, Any]:
    return msgspec.to_builtins(hazard)  # type: ignore[no-any-return]


def _hazard(stored: Mapping[str, Any]) -> Hazard:
    fields = {key: value for key, value in stored.items() if key not in ("vins", "passers")}
    return msgspec.convert(fields, Hazard)
