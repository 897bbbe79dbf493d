"""Hazard warnings to the cars: ``fleet.hazards`` to retained MQTT messages, a thread of the
first gateway worker (the vehicle link's owner).

Each active hazard is one retained message on ``geo/{cell}/warnings/{hazard_id}`` (QoS 1, MQTT 5
message expiry = its remaining validity), so a car entering the area hears it at once; a
``cleared`` record removes it (an empty retained message). The thread reads the whole topic on
start and publishes the hazards still active when it reaches the end (and withdraws those
cleared meanwhile), then follows it; after the broker lost its state (a session not present on
reconnect) it publishes every active hazard again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError

from fleetlink.adapters.kafka.clients import KafkaClients, assign_from_start
from fleetlink.adapters.kafka.consume import take
from fleetlink.adapters.mqtt.vehicle_link import VehicleLink
from fleetlink.apps.hazards.book import HazardBook
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.hazards import Hazard, HazardState
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

_WITHDRAW_HORIZON_MS = 6 * 3600 * 1000  # clearances older than this left no retained message


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class HazardWarnings:
    def __init__(
        self,
        settings: Settings,
        link: VehicleLink,
        client_id: str,
        log: logging.Logger,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._link = link
        self._log = log
        self._clock = clock
        self._topic = settings.topic_map()[KafkaTopic.HAZARDS]
        self._reader = KafkaClients.of(settings).reader(f"{client_id}-warnings", log=log)
        self.book = HazardBook()
        self._caught_up = False
        self._republish = threading.Event()
        self._stop = threading.Event()
        self.published = 0
        self.bad = 0
        self.thread = threading.Thread(target=self._run, name="hazard-warnings", daemon=True)

    @classmethod
    def for_worker(
        cls, settings: Settings, link: VehicleLink, client_id: str, index: int, log: logging.Logger
    ) -> HazardWarnings | None:
        """The first worker tells the cars about hazards (one publisher: no doubled messages)."""
        if not settings.gateway.hazard_warnings or index != 0:
            return None
        return cls(settings, link, client_id, log)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def broker_lost_state(self) -> None:
        """The broker came back without our session: its retained messages may be gone too."""
        self._republish.set()

    # the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set() and not assign_from_start(self._reader, [self._topic], 5):
            self._stop.wait(2.0)  # the topic does not exist yet
        at_end: set[int] = set()
        partitions = len(self._reader.assignment())
        while not self._stop.is_set():
            for message in take(self._reader, 500, 0.2):  # at once when the first one comes
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition() or 0)
                    continue
                self._take(message.value())
            if not self._caught_up and len(at_end) >= partitions:
                self._caught_up = True
                self._publish_all(withdraw=True)
            if self._republish.is_set() and self._caught_up:
                self._republish.clear()
                self._publish_all(withdraw=False)
        self._reader.close()

    def _take(self, raw: bytes | None) -> None:
        try:
            hazard = decode(Hazard, raw)
        except UndecodableError as error:
            self.bad += 1
            self._log.warning("a hazard record is unreadable", extra={"error": str(error)})
            return
        if self.book.take(hazard) and self._caught_up:
            self.book.take_cleared()
            self._publish(hazard)

    def _publish_all(self, *, withdraw: bool) -> None:
        now = self._clock()
        for hazard in self.book.take_cleared():
            if withdraw and hazard.ts > now - _WITHDRAW_HORIZON_MS:
                self._link.withdraw_warning(hazard.cell, hazard.hazard_id)
        for hazard in self.book.in_force(now):
            self._publish(hazard)

    def _publish(self, hazard: Hazard) -> None:
        remaining_ms = hazard.expires_at - self._clock()
        if hazard.state is HazardState.CLEARED or remaining_ms <= 0:
            self._link.withdraw_warning(hazard.cell, hazard.hazard_id)
            return
        self._link.warn(hazard, -(-remaining_ms // 1000))
        self.published += 1
