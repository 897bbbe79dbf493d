"""The platform's health for the dashboard's panel, from Kafka itself: records per second into
each contract topic (end offsets over a window), each stream app's lag (its group's committed
offsets, as the app's own ``fleetlink_app_lag`` gauge measures it), dead letters by reason,
connected vehicles, commands by state and the replication link."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import RecordSource, SourceRecord
from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, ApiError, documented
from fleetlink.apps.runtime.metrics import AppMetrics, LagProbe, app_group
from fleetlink.contracts import headers as h
from fleetlink.contracts.models import PresenceStatus
from fleetlink.contracts.topics import KAFKA_TOPICS, KafkaTopic
from fleetlink.settings import Settings

router = APIRouter(prefix="/v1", tags=["dashboard"])
PARTITIONS_EVERY_S = 30.0  # the topics' partitions, from the cluster's metadata
LAG_EVERY_S = 5.0  # app lags: a few requests per partition each, so less often than the ends


class DeadLetterCounts(FollowedModel[None]):
    """Dead letters by reason, from ``fleet.dlq`` read from its beginning."""

    def __init__(self, settings: Settings, log: logging.Logger, source: RecordSource) -> None:
        super().__init__(source, [settings.topic_map()[KafkaTopic.DLQ]], log, name="dlq-view")
        self._reasons: Counter[str] = Counter()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._reasons)

    def _take(self, records: list[SourceRecord]) -> list[None]:
        for record in records:
            reason = dict(record.headers() or []).get(h.DLQ_REASON)
            self._reasons[reason.decode("utf-8", "replace") if reason else "unknown"] += 1
        return []


@dataclass
class PlatformProbe:
    """Samples Kafka every ``every_s`` in a thread: topic end offsets and app lags."""

    settings: Settings
    kafka: KafkaClients
    every_s: float
    window_s: float = 10.0
    _samples: deque[tuple[float, dict[str, int]]] = field(default_factory=lambda: deque(maxlen=64))
    _lags: dict[str, int | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        # two threads: a slow lag measure never delays the topic ends the rates come from
        threading.Thread(target=self._ends_loop, name="platform-ends", daemon=True).start()
        threading.Thread(target=self._lags_loop, name="platform-lags", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _ends_loop(self) -> None:
        topics = self.settings.topic_map()
        names = {topics[spec.topic]: str(spec.topic) for spec in KAFKA_TOPICS}
        admin = self.kafka.admin()
        partitions: list[TopicPartition] = []
        known_at = -math.inf
        while not self._stop.is_set():
            # Kafka away: the panel shows the last figures and when they were sampled
            with contextlib.suppress(KafkaException):
                if not partitions or time.monotonic() - known_at > PARTITIONS_EVERY_S:
                    partitions = self._partitions(admin, names)
                    known_at = time.monotonic()
                self._sample_ends(admin, names, partitions)
            self._stop.wait(self.every_s)

    @staticmethod
    def _partitions(admin: AdminClient, names: dict[str, str]) -> list[TopicPartition]:
        cluster = admin.list_topics(timeout=5).topics
        return [
            TopicPartition(name, partition)
            for name in names
            if name in cluster
            for partition in cluster[name].partitions
        ]

    def _lags_loop(self) -> None:
        # the registry imports the apps' builders (Quix Streams, a second): here, not at start
        from fleetlink.apps.registry import APPS

        topics = self.settings.topic_map()
        probes = {
            app: LagProbe(
                self.kafka,
                app_group(self.settings, app),
                topics.names(spec.inputs),
                AppMetrics(app),
            )
            for app, spec in APPS.items()
        }
        try:
            while not self._stop.is_set():
                self._sample_lags(probes)  # a lag costs requests per partition: less often
                self._stop.wait(max(LAG_EVERY_S, self.every_s))
        finally:
            for probe in probes.values():
                probe.close()

    def _sample_ends(
        self, admin: AdminClient, names: dict[str, str], partitions: list[TopicPartition]
    ) -> None:
        """Every contract topic's end offsets in one request (ListOffsets, latest)."""
        asked = {partition: OffsetSpec.latest() for partition in partitions}
        ends: dict[str, int] = {}
        sent = time.time()
        for partition, answer in admin.list_offsets(asked, request_timeout=5).items():
            contract = names[partition.topic]
            ends[contract] = ends.get(contract, 0) + max(answer.result(10).offset, 0)
        # the brokers read their ends somewhere between asking and the last answer
        with self._lock:
            self._samples.append(((sent + time.time()) / 2, ends))

    def _sample_lags(self, probes: dict[str, LagProbe]) -> None:
        lags: dict[str, int | None] = {}
        for app, probe in probes.items():
            try:
                lags[app] = probe.measure()
            except KafkaException:
                lags[app] = None
        with self._lock:
            self._lags = lags

    def figures(
        self,
    ) -> tuple[float | None, float | None, list[dict[str, object]], dict[str, int | None]]:
        """When sampled, over how many seconds the rates were taken, each topic's records and
        rate, and the apps' lags."""
        with self._lock:
            samples = list(self._samples)
            lags = dict(self._lags)
        if not samples:
            return None, None, [], lags
        now, ends = samples[-1]
        earlier = [s for s in samples if now - s[0] >= self.window_s] or samples[:1]
        then, before = earlier[-1]
        span = now - then
        rows: list[dict[str, object]] = [
            {
                "topic": topic,
                "records": end,
                "per_s": round((end - before.get(topic, end)) / span, 2) if span > 0 else None,
            }
            for topic, end in sorted(ends.items())
        ]
        return now, round(span, 3), rows, lags


@router.get(
    "/platform",
    summary="The platform's health: records per second, app lag, dead letters, cars, commands",
    responses=documented(*AUTHENTICATED),
)
async def platform(request: Request, caller: Caller) -> JSONResponse:
    """Figures from Kafka, sampled every ``api.platform_every_s``: each contract topic's
    records (end offsets) and records per second over the ``window_s`` (about 10 s) before
    ``sampled_at``; each stream app's lag
    (committed offsets of its group behind the end of its inputs); dead letters by reason;
    vehicles online; commands by state; each replication flow as its monitor last told."""
    if not caller.sees_everything:
        raise ApiError(403, "forbidden", "the platform panel is for admins and viewers")
    state = request.app.state
    probe: PlatformProbe | None = state.platform
    sampled, window_s, topics, lags = probe.figures() if probe else (None, None, [], {})
    presence = state.commands.view.presence
    online = sum(1 for p in list(presence.values()) if p.status is PresenceStatus.ONLINE)
    return JSONResponse(
        {
            "sampled_at": None if sampled is None else int(sampled * 1000),
            "window_s": window_s,  # the rates are over this many seconds before sampled_at
            "topics": topics,
            "app_lag": lags,
            "dead_letters": state.dead_letters.counts(),
            "vehicles": {"online": online, "known": len(presence)},
            "commands": state.commands.view.state_counts(),
            "replication": [
                {"flow": f.flow, "lag_s": f.lag_s, "lagging_since": f.lagging_since}
                for f in state.replication.flows()
            ],
        }
    )
