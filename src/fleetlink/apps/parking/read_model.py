"""The API's read model of the parking finder: ``fleet.parking`` followed from its beginning into
a ``ParkingView``, never the app's private state. A record without a value (a tombstone) removes
its cell, as compaction would."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.apps.parking.view import ParkingNearby, ParkingView, is_parking_cell
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text
from fleetlink.contracts.parking import ParkingCell
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ParkingReadModel(FollowedModel[ParkingCell]):
    def __init__(
        self,
        settings: Settings,
        log: logging.Logger,
        source: RecordSource,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        topic = settings.topic_map()[KafkaTopic.PARKING]
        super().__init__(source, [topic], log, name="parking-view")
        finder = settings.apps.parking
        # the floor and window the finder itself works with
        self._view = ParkingView(floor=finder.drop_below_p, trend_window_s=finder.trend_window_s)
        self._clock = clock

    def near(self, lat: float, lon: float, radius_m: float, limit: int) -> ParkingNearby:
        """The free spots within ``radius_m`` of (lat, lon) now, best first, and the area's
        summary (``ParkingView.near``)."""
        with self._lock:
            return self._view.near(lat, lon, radius_m, self._clock(), limit)

    def _take(self, records: list[SourceRecord]) -> list[ParkingCell]:
        for message in records:
            try:
                self._take_one(message)
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
        return []

    def _take_one(self, message: SourceRecord) -> None:
        value = message.value()
        if value is None:
            self._view.forget(decode_text(message.key(), "key"))
            return
        record = decode(ParkingCell, value)
        if not is_parking_cell(record.cell):
            raise UndecodableError(DlqReason.SCHEMA, f"cell {record.cell[:40]!r}: no H3 cell")
        self._view.take(record)
