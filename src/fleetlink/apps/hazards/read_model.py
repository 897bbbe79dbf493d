"""The API's read model of the hazards app: ``fleet.hazards`` followed from its beginning into a
``HazardBook``, never the app's private state. Listeners (the live stream) hear every record that
changed what is in force."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.apps.hazards.book import HazardBook
from fleetlink.apps.hazards.warnings import now_ms
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.hazards import Hazard
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings


class HazardReadModel(FollowedModel[Hazard]):
    def __init__(
        self,
        settings: Settings,
        log: logging.Logger,
        source: RecordSource,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        topic = settings.topic_map()[KafkaTopic.HAZARDS]
        super().__init__(source, [topic], log, name="hazards-view")
        self._book = HazardBook()
        self._clock = clock

    def near(self, lat: float, lon: float, radius_m: float) -> list[tuple[float, Hazard]]:
        with self._lock:
            return self._book.near(lat, lon, radius_m, self._clock())

    def in_force(self) -> list[Hazard]:
        with self._lock:
            return sorted(self._book.in_force(self._clock()), key=lambda h: h.confirmed_ts)

    def _take(self, records: list[SourceRecord]) -> list[Hazard]:
        changed: list[Hazard] = []
        for message in records:
            try:
                hazard = decode(Hazard, message.value())
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
                continue
            if self._book.take(hazard):
                changed.append(hazard)
        self._book.take_cleared()  # nothing to withdraw here
        return changed
