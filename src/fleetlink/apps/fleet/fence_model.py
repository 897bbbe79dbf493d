"""Geofences read from Kafka: ``fleet.geofences`` followed from its beginning into a ``FenceBook``
(the fleet app judges fixes against it; a change takes effect as soon as it is read, no restart),
and for the API ``fleet.geofence-events`` too: the recent events, who is inside each fence now,
and listeners (the live stream) that hear each event.

A definition the book cannot use (unreadable, or a shape that is not valid) is skipped with its
reason, as every record a reader cannot use; the API never writes one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.apps.fleet.fences import FenceBook, GeometryError, check_fence
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text
from fleetlink.contracts.geofences import FenceEventKind, GeofenceDefinition, GeofenceEvent
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

EVENTS_KEPT = 10_000  # the newest events the API answers from (the topic holds them all)


class FenceReadModel(FollowedModel[GeofenceEvent]):
    def __init__(
        self, settings: Settings, log: logging.Logger, source: RecordSource, *, events: bool
    ) -> None:
        """``events``: follow the events as well (the API), or the definitions alone (the app)."""
        topics = settings.topic_map()
        self._fences_topic = topics[KafkaTopic.GEOFENCES]
        followed = [self._fences_topic]
        if events:
            followed.append(topics[KafkaTopic.GEOFENCE_EVENTS])
        super().__init__(source, followed, log, name="fences")
        self.book = FenceBook(settings.apps.fleet.fence_band_m)
        self._definitions: dict[str, GeofenceDefinition] = {}
        self._inside: dict[str, dict[str, int]] = {}  # fence id -> VIN -> entered
        self._recent: dict[str, GeofenceEvent] = {}  # by event id, in the order read

    # reading ----------------------------------------------------------------------------------

    def definitions(self) -> list[GeofenceDefinition]:
        with self._lock:
            return sorted(self._definitions.values(), key=lambda d: (d.created_at, d.fence_id))

    def definition(self, fence_id: str) -> GeofenceDefinition | None:
        with self._lock:
            return self._definitions.get(fence_id)

    def inside(self, fence_id: str) -> dict[str, int]:
        """The vehicles inside the fence now, with when they entered."""
        with self._lock:
            return dict(sorted(self._inside.get(fence_id, {}).items()))

    def events(
        self,
        fence_ids: set[str] | None,
        vin: str | None,
        before: int | None,
        limit: int,
        readable: Callable[[str], bool] = lambda _vin: True,
    ) -> list[GeofenceEvent]:
        """The newest events first, of these fences (None: any), this vehicle (None: any) and
        the vehicles ``readable`` lets through."""
        with self._lock:
            chosen = [
                event
                for event in self._recent.values()
                if (fence_ids is None or event.fence_id in fence_ids)
                and (vin is None or event.vin == vin)
                and (before is None or event.ts < before)
                and readable(event.vin)
            ]
        chosen.sort(key=lambda e: (e.ts, e.event_id), reverse=True)
        return chosen[:limit]

    # writing (the API's own writes, seen before they come back from Kafka) --------------------

    def put(self, definition: GeofenceDefinition) -> None:
        with self._lock:
            self._change({definition.fence_id: definition}, set())

    def remove(self, fence_id: str) -> None:
        with self._lock:
            self._change({}, {fence_id})

    # following --------------------------------------------------------------------------------

    def _take(self, records: list[SourceRecord]) -> list[GeofenceEvent]:
        puts: dict[str, GeofenceDefinition] = {}
        removed: set[str] = set()
        news: list[GeofenceEvent] = []
        for message in records:
            try:
                if message.topic() == self._fences_topic:
                    fence_id, definition = _definition(message)
                    if definition is None:
                        puts.pop(fence_id, None)
                        removed.add(fence_id)
                    else:
                        puts[fence_id] = definition
                        removed.discard(fence_id)
                else:
                    event = decode(GeofenceEvent, message.value())
                    if self._take_event(event):
                        news.append(event)
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
        if puts or removed:
            self._change(puts, removed)
        return news

    def _change(self, puts: dict[str, GeofenceDefinition], removed: set[str]) -> None:
        self.book.change(puts.values(), removed)
        for fence_id in removed:
            self._definitions.pop(fence_id, None)
            self._inside.pop(fence_id, None)
        self._definitions.update(puts)

    def _take_event(self, event: GeofenceEvent) -> bool:
        if event.event_id in self._recent:
            return False  # written again by a replay
        self._recent[event.event_id] = event
        if len(self._recent) > EVENTS_KEPT:
            del self._recent[next(iter(self._recent))]
        inside = self._inside.setdefault(event.fence_id, {})
        if event.kind is FenceEventKind.EXIT:
            inside.pop(event.vin, None)
        else:
            inside[event.vin] = event.entered_ts
        return True


def _definition(message: SourceRecord) -> tuple[str, GeofenceDefinition | None]:
    """The fence a record puts (or removes: None), checked as the API checks it."""
    fence_id = decode_text(message.key(), "key")
    if message.value() is None:
        return fence_id, None
    definition = decode(GeofenceDefinition, message.value())
    if definition.fence_id != fence_id:
        raise UndecodableError(DlqReason.SCHEMA, f"key {fence_id[:40]!r} is not the fence's id")
    try:
        check_fence(definition)
    except GeometryError as bad:
        raise UndecodableError(DlqReason.SCHEMA, str(bad)) from None
    return fence_id, definition
