"""The API's read model of the maintenance app: ``fleet.alerts`` and ``fleet.services`` followed
from their beginning (read_committed: an aborted transaction's alerts are never seen).

Each alert is kept in its latest state: a record that would take it back (an ``acknowledged``
written again by a replay after its ``resolved``) is ignored. Every open alert is kept; of the
resolved ones the newest ``RESOLVED_KEPT`` (the topic holds them all). Listeners (the live
stream) hear each alert that changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.contracts.alerts import Alert, AlertState, ServiceRecord, Severity
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

RESOLVED_KEPT: Final = 10_000
_RANK: Final = {AlertState.RAISED: 0, AlertState.ACKNOWLEDGED: 1, AlertState.RESOLVED: 2}
SEVERITY_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class AlertQuery:
    """Which alerts: of these states and severities (None: any), of one vehicle (None: any)."""

    states: Collection[AlertState] | None = None
    severities: Collection[Severity] | None = None
    vin: str | None = None
    before: int | None = None  # raised before (ms)
    limit: int = 100


def newer(known: Alert | None, alert: Alert) -> bool:
    """Whether ``alert`` is a later word on its alert than ``known``."""
    if known is None:
        return True
    if _RANK[alert.state] != _RANK[known.state]:
        return _RANK[alert.state] > _RANK[known.state]
    return (alert.ts, SEVERITY_RANK[alert.severity]) > (known.ts, SEVERITY_RANK[known.severity])


class AlertReadModel(FollowedModel[Alert]):
    def __init__(self, settings: Settings, log: logging.Logger, source: RecordSource) -> None:
        topics = settings.topic_map()
        self._services_topic = topics[KafkaTopic.SERVICES]
        super().__init__(
            source, [topics[KafkaTopic.ALERTS], self._services_topic], log, name="alerts-view"
        )
        self._alerts: dict[str, Alert] = {}
        self._resolved: dict[str, None] = {}  # ids of resolved alerts, oldest first
        self._services: dict[str, ServiceRecord] = {}

    # reading ----------------------------------------------------------------------------------

    def alert(self, alert_id: str) -> Alert | None:
        with self._lock:
            return self._alerts.get(alert_id)

    def alerts(self, query: AlertQuery, readable: Callable[[str], bool]) -> list[Alert]:
        """The newest raised first, of the vehicles ``readable`` lets through."""
        with self._lock:
            chosen = [
                alert
                for alert in self._alerts.values()
                if (query.vin is None or alert.vin == query.vin)
                and (query.states is None or alert.state in query.states)
                and (query.severities is None or alert.severity in query.severities)
                and (query.before is None or alert.raised_ts < query.before)
                and readable(alert.vin)
            ]
        chosen.sort(key=lambda a: (a.raised_ts, a.alert_id), reverse=True)
        return chosen[: query.limit]

    def health(self, vins: Collection[str]) -> dict[str, str]:
        """Each vehicle's worst open alert's severity, or ``ok``."""
        worst: dict[str, Severity] = {}
        with self._lock:
            for alert in self._alerts.values():
                if alert.state is AlertState.RESOLVED or alert.vin not in vins:
                    continue
                known = worst.get(alert.vin)
                if known is None or SEVERITY_RANK[alert.severity] > SEVERITY_RANK[known]:
                    worst[alert.vin] = alert.severity
        return {vin: worst[vin].value if vin in worst else "ok" for vin in vins}

    def last_service(self, vin: str) -> ServiceRecord | None:
        with self._lock:
            return self._services.get(vin)

    # writing (the API's own, seen before it comes back from Kafka) ----------------------------

    def put_service(self, record: ServiceRecord) -> None:
        with self._lock:
            self._take_service(record)

    # following --------------------------------------------------------------------------------

    def _take(self, records: list[SourceRecord]) -> list[Alert]:
        news: list[Alert] = []
        for message in records:
            try:
                if message.topic() == self._services_topic:
                    if message.value() is not None:  # a tombstone: compaction's business
                        self._take_service(decode(ServiceRecord, message.value()))
                    continue
                alert = decode(Alert, message.value())
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
                continue
            if newer(self._alerts.get(alert.alert_id), alert):
                self._keep(alert)
                news.append(alert)
        return news

    def _take_service(self, record: ServiceRecord) -> None:
        known = self._services.get(record.vin)
        if known is None or record.ts >= known.ts:
            self._services[record.vin] = record

    def _keep(self, alert: Alert) -> None:
        self._alerts[alert.alert_id] = alert
        if alert.state is not AlertState.RESOLVED:
            return
        self._resolved[alert.alert_id] = None
        while len(self._resolved) > RESOLVED_KEPT:
            oldest = next(iter(self._resolved))
            del self._resolved[oldest]
            self._alerts.pop(oldest, None)
