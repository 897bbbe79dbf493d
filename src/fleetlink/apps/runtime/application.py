"""One stream-app instance on Quix Streams, the platform's way.

``AppRuntime`` builds the Quix ``Application`` from the settings (the one client factory's
connection, a consumer group per app, RocksDB state under the stack's state directory, changelog
topics, at-least-once) and gives each app its inputs already cleaned: decoded totally (anything
else goes to the dead-letter topic with a reason), on event time (the payload's ``ts``, clamped
to the Kafka timestamp), deduplicated on ``fl.msg_id``; plus ticks, so state can expire
without input (Quix Streams has no timers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import h3
from confluent_kafka import KafkaException
from quixstreams import Application, State, message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TimestampType, Topic, TopicManager
from quixstreams.models.serializers import SerializationContext, Serializer

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import KafkaSource, RecordSource
from fleetlink.adapters.runtime.health import serve
from fleetlink.apps.runtime.clock import event_time, shard_keys, shard_of
from fleetlink.apps.runtime.inputs import InputDeserializer, dead
from fleetlink.apps.runtime.metrics import AppMetrics, LagProbe, app_group
from fleetlink.apps.runtime.topic_admin import PromptTopicAdmin
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import DlqReason, encode
from fleetlink.contracts.models import Tick
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

Value = dict[str, Any]


class StructSerializer(Serializer):
    """Output records: msgspec structs as the contract's JSON."""

    @property
    def extra_headers(self) -> dict[str, str | bytes]:
        return {h.CONTENT_TYPE: "application/json"}

    def __call__(self, value: Any, ctx: SerializationContext) -> bytes:
        return encode(value)


class AppRuntime:
    """Everything one instance of app ``name`` shares with the other apps."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        instance: int,
        log: logging.Logger,
        *,
        port_offset: int = 0,
        exactly_once: bool = False,
    ) -> None:
        """``port_offset``: where this app's metrics ports start, after ``apps.metrics_port``
        (apps running side by side each have their own). ``exactly_once``: outputs and input
        offsets commit in one Kafka transaction, under a transactional id of this instance's
        own (a random one per start would leave a killed instance's transaction open until it
        timed out)."""
        self.settings = settings
        self.name = name
        self.instance = instance
        self.port_offset = port_offset
        self.log = log
        self.topics = settings.topic_map()
        self.kafka = KafkaClients.of(settings)
        self.metrics = AppMetrics(name)
        self.group = app_group(settings, name)
        self.state_dir = settings.apps_state_dir() / name / f"instance-{instance}"
        apps = settings.apps
        connection = ConnectionConfig.from_librdkafka_dict(self.kafka.quix_connection())
        producer_config = self.kafka.quix_tuning() | {
            "client.id": f"{self.group}-{instance}",
            "linger.ms": 2,
        }
        if exactly_once:
            producer_config |= {
                "transactional.id": f"{self.group}-{instance}",
                "transaction.timeout.ms": int(apps.transaction_timeout_s * 1000),
            }
        self.app = Application(
            broker_address=connection,
            consumer_group=self.group,
            topic_manager=TopicManager(
                PromptTopicAdmin(broker_address=connection, extra_config=producer_config),
                consumer_group=self.group,
            ),
            auto_offset_reset="earliest",
            commit_interval=apps.commit_interval_s,
            consumer_poll_timeout=apps.poll_timeout_s,
            state_dir=self.state_dir,
            processing_guarantee="exactly-once" if exactly_once else "at-least-once",
            loglevel=None,  # our JSON logs, not Quix's own handler
            # static membership: an instance restarted under its number takes its partitions
            # back at once, not after the dead member's session timed out
            consumer_extra_config=self.kafka.quix_tuning()
            | {
                "client.id": f"{self.group}-{instance}",
                "group.instance.id": f"{self.group}-{instance}",
                "session.timeout.ms": int(apps.session_timeout_s * 1000),
                "fetch.wait.max.ms": int(apps.fetch_wait_s * 1000),
            },
            producer_extra_config=producer_config,
        )
        self._inputs: list[str] = []
        self._threads: list[threading.Thread] = []
        self._followed: list[FollowedModel[Any]] = []
        self._stop = threading.Event()

    # topics -----------------------------------------------------------------------------------

    def ensure(self, topics: Iterable[KafkaTopic]) -> None:
        """Create the contract topics the app uses, as the contract declares them (Quix would
        create a missing one with its own defaults: one partition, not co-partitioned)."""
        ensure_topics(
            self.kafka,
            self.topics,
            partitions=self.settings.kafka.topic_partitions,
            replication_factor=self.settings.kafka.topic_replication_factor,
            only=topics,
        )

    def partitions(self, topic: KafkaTopic) -> int:
        name = self.topics[topic]
        metadata = self.kafka.admin().list_topics(name, timeout=30).topics[name]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        return len(metadata.partitions)

    def output(self, topic: KafkaTopic) -> Topic:
        return self.app.topic(
            self.topics[topic], key_serializer="str", value_serializer=StructSerializer()
        )

    # inputs -----------------------------------------------------------------------------------

    def vehicle_input(self, topic: KafkaTopic, kind: str) -> StreamingDataFrame:
        """Records of a vehicle topic (``event`` or ``telemetry``): decoded, on event time,
        deduplicated; the undecodable go to the dead-letter topic."""
        sdf = self._input(topic, kind)
        ttl = timedelta(seconds=self.settings.apps.dedup_ttl_s)
        metrics = self.metrics

        def first_time(value: Value, state: State[str, Any]) -> bool:
            if state.get(value["msg_id"]):
                metrics.count(metrics.duplicates)
                return False
            state.set(value["msg_id"], 1, ttl=ttl)
            return True

        return sdf.filter(first_time, stateful=True)

    def records_input(self, topic: KafkaTopic, kind: str) -> StreamingDataFrame:
        """Records the platform writes itself (``ack``, ``service``): decoded, on event time;
        the undecodable go to the dead-letter topic. Not deduplicated: applying one twice
        changes nothing."""
        return self._input(topic, kind)

    def passing_cars(self, min_kmh: float, max_kmh: float = float("inf")) -> StreamingDataFrame:
        """Telemetry of cars driving between ``min_kmh`` and ``max_kmh`` as ``{"t": "pass",
        vin, ts, lat, lon, speed, heading}``: the cars that drove by a place and saw it."""
        return (
            self.vehicle_input(KafkaTopic.TELEMETRY, "telemetry")
            .filter(
                lambda v: (
                    v["lat"] is not None
                    and v["lon"] is not None
                    and v["speed"] is not None
                    and min_kmh <= v["speed"] <= max_kmh
                    and not v["late"]
                )
            )
            .apply(
                lambda v: {
                    "t": "pass",
                    **{k: v[k] for k in ("vin", "ts", "lat", "lon", "speed", "heading")},
                }
            )
        )

    def cell_shards(self, resolution: int) -> Callable[[str], str]:
        """The shard key of an H3 cell: that of its parent at ``resolution``, one of the keys
        of ``shard_keys`` (places near each other share a shard)."""
        partitions = self.partitions(KafkaTopic.EVENTS)
        return lambda cell: shard_of(str(h3.cell_to_parent(cell, resolution)), partitions)

    def by_shard(
        self, sdf: StreamingDataFrame, shards: Callable[[Value], list[str]]
    ) -> StreamingDataFrame:
        """Each input to the shard keys ``shards`` names (a tick to all of them), through one
        repartition topic keyed by shard, marked with the input partition it came from: the
        shards' watermark waits for the slowest one."""
        keys = self.shard_keys(KafkaTopic.EVENTS)

        def route(value: Value) -> list[Value]:
            value = {**value, "src": message_context().partition}
            targets = keys if value["t"] == "tick" else shards(value)
            return [{**value, "shard": key} for key in targets]

        return sdf.apply(route, expand=True).group_by(
            lambda v: v["shard"], name="shard", key_serializer="str", key_deserializer="str"
        )

    def ticks(self) -> StreamingDataFrame:
        """Tick records (``{"t": "tick", "ts"}``) from every partition; ``start`` writes them."""
        return self._input(KafkaTopic.TICKS, "tick")

    def _input(self, topic: KafkaTopic, kind: str) -> StreamingDataFrame:
        name = self.topics[topic]
        self._inputs.append(name)
        max_ahead_ms = int(self.settings.apps.max_clock_ahead_s * 1000)

        def timestamp(value: Any, _headers: Any, record_ts: int, _type: TimestampType) -> int:
            ts = value.get("ts") if isinstance(value, dict) else None
            return event_time(ts if isinstance(ts, int) else None, record_ts, max_ahead_ms)

        sdf = self.app.dataframe(
            self.app.topic(
                name,
                key_deserializer="bytes",
                value_deserializer=InputDeserializer(kind),
                timestamp_extractor=timestamp,
            )
        )
        sdf = sdf.apply(
            lambda value: dead(None, DlqReason.TOMBSTONE, "no value") if value is None else value
        )
        self._dead_letters(sdf.filter(lambda value: value["t"] == "dead"), name)
        metrics = self.metrics
        good = sdf.filter(lambda value: value["t"] != "dead")
        return good.update(lambda _value: metrics.count(metrics.processed, kind))

    def _dead_letters(self, sdf: StreamingDataFrame, source: str) -> None:
        metrics = self.metrics
        dlq = self.app.topic(
            self.topics[KafkaTopic.DLQ], key_serializer="bytes", value_serializer="bytes"
        )

        def mark(value: Value, _key: Any, _ts: int, headers: Any) -> list[tuple[str, bytes]]:
            metrics.count(metrics.dead_letters, value["reason"])
            return [
                *(headers or []),
                (h.DLQ_REASON, value["reason"].encode()),
                (h.DLQ_DETAIL, value["detail"][:1000].encode(errors="backslashreplace")),
                (h.SOURCE_TOPIC, source.encode()),
            ]

        sdf.set_headers(mark).apply(lambda value: value["raw"] or b"").to_topic(dlq)

    # fan-out ------------------------------------------------------------------------------------

    def shard_keys(self, topic: KafkaTopic) -> tuple[str, ...]:
        """One key per partition of the repartition topic a ``group_by`` over ``topic``
        makes (as many partitions as its input)."""
        return shard_keys(self.partitions(topic))

    # running ------------------------------------------------------------------------------------

    def reader(self, name: str) -> RecordSource:
        """A reader of whole topics (no group, no commits) for a model the app follows."""
        return KafkaSource(self.kafka.reader(f"{self.group}-{name}", log=self.log))

    def follow(self, model: FollowedModel[Any]) -> None:
        """Read ``model`` to the end of its topics before the app processes anything (every
        record is judged against it: a replay judges as the first run did), then keep it
        following while the app runs."""
        self._followed.append(model)

    def _read_followed(self) -> None:
        for model in self._followed:
            model.start()
        for model in self._followed:
            while not model.ready.wait(10):
                self.log.warning("still reading what the app follows", extra={"app": self.name})

    def start_ticker(self) -> None:
        """Write one tick to every partition of ``fleet.ticks`` each ``tick_interval_s``."""
        name = self.topics[KafkaTopic.TICKS]
        partitions = self.partitions(KafkaTopic.TICKS)
        producer = self.kafka.producer(linger_ms=0, message_timeout_ms=5_000, log=self.log)
        interval = self.settings.apps.tick_interval_s
        stop = self._stop

        def run() -> None:
            while not stop.wait(interval - (time.time() % interval)):
                tick = encode(Tick(ts=time.time_ns() // 1_000_000))
                for partition in range(partitions):
                    producer.produce(name, tick, key=b"tick", partition=partition)
                producer.poll(0)
            producer.flush(5)

        self._spawn(run, "ticker")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def healthy(self) -> tuple[bool, str]:
        dead_threads = [t.name for t in self._threads if not t.is_alive()]
        if any(not model.alive for model in self._followed):
            dead_threads.append("follower")
        return (not dead_threads, f"thread {dead_threads[0]} died" if dead_threads else "ok")

    def run(self) -> None:
        """Process until SIGTERM or Ctrl-C (Quix handles both), with ticks, lag and /metrics.
        In simulated-clock mode the simulator writes the ticks, on its own time."""
        self._read_followed()
        if not self.settings.apps.simulated_clock:
            self.start_ticker()
        lag = LagProbe(self.kafka, self.group, self._inputs, self.metrics)
        lag.start()
        self._threads.append(lag.thread)
        port = self.settings.apps.metrics_port
        server = None
        if port:
            server = serve(
                self.metrics.registry,
                port + self.port_offset + self.instance,
                healthy=self.healthy,
                ready=self.healthy,
            )
        self.log.info(
            "app started",
            extra={"app": self.name, "instance": self.instance, "group": self.group},
        )
        try:
            self.app.run()
        finally:
            self._stop.set()
            lag.stop()
            for model in self._followed:
                model.stop()
            if server is not None:
                server.shutdown()
