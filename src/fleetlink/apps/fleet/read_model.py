"""The API's read model of fleet tracking: ``fleet.vehicle-state`` and ``fleet.trips`` followed
from their beginning into a ``FleetView``, never the app's private state. Listeners (the live
stream) hear every vehicle state that changed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.apps.fleet.view import FleetView, Page, VehicleQuery
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text
from fleetlink.contracts.fleet import DrivingScore, Trip, VehicleState, driving_score
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.settings import Settings


class FleetReadModel(FollowedModel[VehicleState]):
    def __init__(self, settings: Settings, log: logging.Logger, source: RecordSource) -> None:
        topics = settings.topic_map()
        self._states_topic = topics[KafkaTopic.VEHICLE_STATE]
        super().__init__(
            source, [self._states_topic, topics[KafkaTopic.TRIPS]], log, name="fleet-view"
        )
        self._view = FleetView()
        self.low_battery_pct = settings.apps.fleet.low_battery_pct

    def states(self) -> list[VehicleState]:
        with self._lock:
            return list(self._view.states.values())

    def state(self, vin: str) -> VehicleState | None:
        with self._lock:
            return self._view.states.get(vin)

    def page(
        self,
        query: VehicleQuery,
        presence: Iterable[tuple[str, bool, int]],
        readable: Callable[[str], bool],
    ) -> Page:
        with self._lock:
            return self._view.page(query, presence, readable)

    def trips(self, vin: str, limit: int, before: int | None) -> list[Trip]:
        with self._lock:
            return self._view.trips_of(vin, limit, before)

    def score(self, vin: str, since: int, until: int) -> DrivingScore:
        with self._lock:
            return driving_score(vin, self._view.all_trips_of(vin), since, until)

    def _take(self, records: list[SourceRecord]) -> list[VehicleState]:
        changed: list[VehicleState] = []
        for message in records:
            try:
                if message.topic() == self._states_topic:
                    state = self._take_state(message)
                    if state is not None:
                        changed.append(state)
                else:
                    self._view.take_trip(decode(Trip, message.value()))
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
        return changed

    def _take_state(self, message: SourceRecord) -> VehicleState | None:
        value = message.value()
        if value is None:  # a tombstone: the vehicle is gone, as compaction would have it
            vin = decode_text(message.key(), "key")
            if not is_valid_vin(vin):
                raise UndecodableError(DlqReason.SCHEMA, f"key {vin[:40]!r}: no VIN")
            self._view.forget(vin)
            return None
        state = decode(VehicleState, value)
        return state if self._view.take_state(state) else None
