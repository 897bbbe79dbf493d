"""The API's read model of the hazards app: ``fleet.hazards`` followed from its beginning into a
``HazardBook``, never the app's private state. Listeners (the live stream) hear every record that
changed what is in force."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fleetlink.adapters.kafka.follow import Listeners, TopicFollower
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.adapters.kafka.skips import SkippedRecords
from fleetlink.apps.hazards.book import HazardBook
from fleetlink.apps.hazards.warnings import now_ms
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.hazards import Hazard
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

HazardListener = Callable[[list[Hazard]], None]


class HazardReadModel:
    def __init__(
        self,
        settings: Settings,
        log: logging.Logger,
        source: RecordSource,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._book = HazardBook()
        self._lock = threading.Lock()
        self._listeners: Listeners[Hazard] = Listeners()
        self._clock = clock
        self.skipped = SkippedRecords(log)
        self._follower = TopicFollower(
            source,
            [settings.topic_map()[KafkaTopic.HAZARDS]],
            self._take,
            log,
            name="hazards-view",
        )
        self.ready = self._follower.ready

    @property
    def alive(self) -> bool:
        return self._follower.alive

    def start(self) -> None:
        self._follower.start()

    def stop(self) -> None:
        self._follower.stop()

    def near(self, lat: float, lon: float, radius_m: float) -> list[tuple[float, Hazard]]:
        with self._lock:
            return self._book.near(lat, lon, radius_m, self._clock())

    def in_force(self) -> list[Hazard]:
        with self._lock:
            return sorted(self._book.in_force(self._clock()), key=lambda h: h.confirmed_ts)

    def listen(self, listener: HazardListener) -> Callable[[], None]:
        """Call ``listener`` with each batch of changes (from the reading thread); returns
        unlisten."""
        return self._listeners.listen(listener)

    def _take(self, messages: list[SourceRecord]) -> None:
        changed: list[Hazard] = []
        with self._lock:
            for message in messages:
                try:
                    hazard = decode(Hazard, message.value())
                except UndecodableError as unreadable:
                    self.skipped.skip(message, unreadable)
                    continue
                if self._book.take(hazard):
                    changed.append(hazard)
            self._book.take_cleared()  # nothing to withdraw here
        self._listeners.tell(changed)
