"""The API's read model of replication: ``fleet.replication-alerts`` followed from its beginning,
kept as each flow's standing (lagging since when, records lost to retention)."""

from __future__ import annotations

import logging

import msgspec

from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.replication import ReplicationAlert, ReplicationAlertKind
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings


class FlowStanding(msgspec.Struct):
    """One flow as its monitor last told: ``lagging_since`` (epoch ms) while past its bound."""

    flow: str
    lagging_since: int | None = None
    lag_s: float | None = None
    expired_records: int = 0
    last_expired_at: int | None = None
    updated_at: int = 0


class ReplicationView(FollowedModel[ReplicationAlert]):
    def __init__(self, settings: Settings, log: logging.Logger, source: RecordSource) -> None:
        topic = settings.topic_map()[KafkaTopic.REPLICATION_ALERTS]
        super().__init__(source, [topic], log, name="replication-view")
        self._flows: dict[str, FlowStanding] = {}

    def flows(self) -> list[FlowStanding]:
        with self._lock:
            return [msgspec.structs.replace(f) for f in sorted(self._flows.values(), key=_flow)]

    def unreachable_since(self, flow: str) -> int | None:
        """Since when ``flow`` has been past its lag bound (the other side unreachable, or
        too far behind), None while it is within it or unknown."""
        with self._lock:
            standing = self._flows.get(flow)
            return None if standing is None else standing.lagging_since

    def _take(self, records: list[SourceRecord]) -> list[ReplicationAlert]:
        news = []
        for message in records:
            try:
                alert = decode(ReplicationAlert, message.value())
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
                continue
            # one monitor writes a flow's alerts, keyed by the flow: they come in order
            standing = self._flows.setdefault(alert.flow, FlowStanding(alert.flow))
            standing.updated_at = alert.ts
            if alert.kind is ReplicationAlertKind.LAG:
                raised = alert.state == "raised"
                standing.lagging_since = (alert.since or alert.ts) if raised else None
                standing.lag_s = alert.lag_s
            elif alert.kind is ReplicationAlertKind.EXPIRED:
                standing.expired_records += alert.count or 0
                standing.last_expired_at = alert.ts
            news.append(alert)
        return news


def _flow(standing: FlowStanding) -> str:
    return standing.flow
