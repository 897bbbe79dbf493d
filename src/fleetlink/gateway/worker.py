"""One uplink gateway worker: MQTT shared subscription in, Kafka out, PUBACK after the Kafka ack.

Threads: paho's network thread runs ``on_message`` (route, produce) and, between reads, serves
Kafka delivery reports and sends the PUBACKs they release, in arrival order; the main thread
keeps time (retries, confirmations, metrics) and serves the reports while paho's thread does not
run. The broker sends at most Receive Maximum unacknowledged messages, so when Kafka is down the
worker stops acknowledging, holds a bounded window, and the broker queues the rest.

Cars that stamp their messages (boot id, seq) are told, batched, which of them are now in Kafka
(``gateway/confirm.py``); they keep every message until then, so a broker that crashes after
acknowledging them loses nothing.

Stopping: ``stop`` (SIGTERM) finishes what is in flight, acknowledges it and disconnects keeping
the session, so the broker keeps queueing for this client id. ``drain`` (SIGUSR1, or
``--drain-on-exit``) removes a worker for good: it leaves the shared subscription, finishes, and
ends the session.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.mqtt.client import (
    connect_properties,
    end_session_properties,
    new_client,
    stop_loop,
)
from fleetlink.adapters.mqtt.vehicle_link import VehicleLink
from fleetlink.adapters.runtime.faults import FaultHook
from fleetlink.adapters.runtime.health import serve_if_free
from fleetlink.adapters.runtime.poison import PoisonJournal, digest
from fleetlink.adapters.runtime.watchdog import EXIT_THREAD_DIED, Lifelines
from fleetlink.apps.hazards.warnings import HazardWarnings
from fleetlink.commands.downlink import Downlink
from fleetlink.contracts.codec import DlqReason
from fleetlink.contracts.delivery import Stamp, stamp_of
from fleetlink.gateway.acks import OrderedAcks, Slot
from fleetlink.gateway.confirm import Confirmations
from fleetlink.gateway.metrics import GatewayMetrics, Tally
from fleetlink.gateway.writer import RecordWriter
from fleetlink.ingest.routing import Inbound, Record, Router
from fleetlink.security.keys import identity_tls
from fleetlink.settings import Settings

_QUIET_S = 1.0  # a drain ends once no message arrived for this long and nothing is in flight


def worker_client_id(settings: Settings, index: int) -> str:
    return f"{settings.gateway.client_id_prefix}-{index}"


class UplinkWorker:
    def __init__(self, settings: Settings, index: int, log: logging.Logger) -> None:
        gateway = settings.gateway
        self.settings = settings
        self.index = index
        self.log = log
        self.client_id = worker_client_id(settings, index)
        self.router = Router.from_settings(gateway, settings.topic_map())
        share = f"$share/{gateway.share_group}"
        self.filters = [f"{share}/{rule.mqtt_filter}" for rule in gateway.mappings]
        self.metrics = GatewayMetrics()
        metrics = self.metrics
        self._received = Tally(metrics.received)
        self._late = Tally(metrics.late)
        self._acked = Tally(metrics.acked)
        self._next_flush = 0.0
        self._next_confirm = 0.0
        self.acks = OrderedAcks()
        self.confirmations = Confirmations()
        self.kafka = KafkaClients.of(settings)
        self.writer = RecordWriter(
            self.kafka,
            {
                "linger_ms": gateway.linger_ms,
                "compression": gateway.compression,
                "message_timeout_ms": 0,  # never give up: Kafka coming back resumes the flow
                "queue_max_messages": max(100_000, 4 * gateway.receive_maximum),
            },
            self.client_id,
            self.router,
            metrics,
            log,
            on_durable=self._durable,
        )
        self.producer = self.writer.producer
        tls = identity_tls(settings, self.client_id)
        self.client = new_client(settings, self.client_id, tls=tls, manual_ack=True)
        self.link = VehicleLink(self.client)
        self.journal = PoisonJournal.of(settings, f"{self.client_id}.uplink", log)
        self.faults = FaultHook(settings.runtime.crash_on)
        self.downlink = (
            Downlink(
                settings,
                self.link,
                self.producer,
                self.client_id,
                log,
                mqtt_connected=lambda: self._connected and self._accepting,
                on_skip=lambda topic, reason: metrics.skipped.labels(topic, reason).inc(),
            )
            if gateway.downlink
            else None
        )
        self.warnings = HazardWarnings.for_worker(settings, self.link, self.client_id, index, log)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.on_subscribe = self._on_subscribe
        self.client.between_reads = self._between_reads
        self._unsubscribed = threading.Event()
        self._accepting = True
        self._connected = False
        self._subscribed = False
        self._had_session = False
        self._last_message = time.monotonic()
        self._last_loop = time.monotonic()
        self.lifelines = Lifelines()
        # paho keeps its network thread private; it is the one every message passes through
        self.lifelines.watch("mqtt", lambda: getattr(self.client, "_thread", None))
        downlink = self.downlink
        if downlink is not None:
            self.lifelines.watch("downlink", lambda: downlink.thread)
        warnings = self.warnings
        if warnings is not None:
            self.lifelines.watch("hazard-warnings", lambda: warnings.thread)

    # health ----------------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        stalled = time.monotonic() - self._last_loop > 10
        dead = self.lifelines.dead()
        fatal = self.writer.fatal
        if fatal is not None or stalled or dead:
            return False, fatal or (f"thread {dead} died" if dead else "main loop stalled")
        return True, "running"

    def ready(self) -> tuple[bool, str]:
        healthy, why = self.healthy()
        if not healthy:
            return False, why
        if not self._connected:
            return False, "not connected to the MQTT broker"
        if not self._subscribed:
            return False, "waiting for the broker to grant the subscriptions"
        if not self.writer.kafka_up:
            return False, "Kafka unreachable"
        return True, "ready"

    # MQTT callbacks (paho's network thread) ----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.log.error("mqtt connect refused", extra={"reason": str(reason_code)})
            return
        self.acks.new_connection()
        self._connected = True
        self.metrics.mqtt_connected.set(1)
        if self._had_session and not flags.session_present:
            # wiped or restarted without its database: what it queued for us is gone, and
            # cars' messages it acknowledged meanwhile too; stamped ones will be sent again
            self.metrics.sessions_lost.inc()
            self.log.warning("the broker lost this worker's session; subscribing again")
            if self.warnings is not None:
                self.warnings.broker_lost_state()
        self._had_session = True
        if self._accepting:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])
        self.log.info(
            "mqtt connected",
            extra={"client_id": self.client_id, "session_present": flags.session_present},
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.acks.new_connection()  # un-acked messages will be redelivered, never acked late
        self._connected = False
        self._subscribed = False
        self.metrics.mqtt_connected.set(0)
        if self._accepting:
            self.log.warning("mqtt disconnected", extra={"reason": str(reason_code)})

    def _on_unsubscribe(self, *_args: Any) -> None:
        self._unsubscribed.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self.log.error("subscriptions refused", extra={"reasons": refused})
            return
        self._subscribed = True
        self.log.info("subscribed", extra={"filters": self.filters})

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self._accepting:
            return  # stopping: not acknowledged, so the broker delivers it again later
        self._last_message = started = time.monotonic()
        properties = message.properties
        raw_topic: bytes = message._topic  # paho raises on .topic when it is not UTF-8
        payload = bytes(message.payload)
        try:
            topic: str | None = message.topic
        except UnicodeDecodeError:
            topic = None
        inbound = Inbound(
            topic=topic if topic is not None else raw_topic.decode(errors="backslashreplace"),
            payload=payload,
            qos=message.qos,
            received_ms=time.time_ns() // 1_000_000,
            user_properties=getattr(properties, "UserProperty", ()),
            content_type=getattr(properties, "ContentType", None),
            redelivered=bool(message.dup),
        )
        key = digest(raw_topic, payload)
        journal = self.journal
        if journal.is_poison(key):
            crashes = journal.crashes(key)
            record = self.router.dead_letter(
                inbound, DlqReason.POISON, f"the worker died {crashes} times handling it"
            )
        else:
            journal.holding(key)
            self.faults.check(payload)
            if topic is None:
                record = self.router.dead_letter(
                    inbound, DlqReason.INVALID_UTF8, "the MQTT topic is not valid UTF-8"
                )
            else:
                record = self.router.route(inbound)
        slot = self.acks.track(message.mid, message.qos) if message.qos > 0 else None
        stamp = stamp_of(inbound.topic, inbound.user_properties)
        self._received.add(record.mapping)
        if record.late:
            self._late.add(record.mapping)
        self.writer.produce(record, slot, started, stamp)
        journal.done()

    # Kafka has it ------------------------------------------------------------------------------

    def _durable(
        self, record: Record, slot: Slot | None, started: float, stamp: Stamp | None
    ) -> None:
        if slot is not None:
            self.acks.delivered(slot)
        if stamp is not None:
            self.confirmations.add(stamp, started)

    def _acknowledge(self, received: list[tuple[int, int]]) -> None:
        self.client.acknowledge(received)
        self._acked.add("", len(received))

    # main loop ---------------------------------------------------------------------------------

    def _between_reads(self) -> float:
        wait = self.writer.serve_between_reads()
        self.acks.settle(self._acknowledge)
        return wait

    def _serve_deliveries(self, timeout: float) -> None:
        self._last_loop = now = self.writer.serve(timeout)
        self.acks.settle(self._acknowledge)
        if now >= self._next_confirm and self._connected:
            self._next_confirm = now + self.settings.gateway.confirm_interval_s
            self.confirmations.publish(self.link.confirm, self.metrics, now)
        if now >= self._next_flush:
            self._next_flush = now + 1.0
            for tally in (self._received, self._late, self._acked):
                tally.flush()
            self.writer.flush_metrics()
            if self.router.throttled:  # reported once a second, not once per message
                self.log.warning(
                    "vehicles throttled", extra={"dead_lettered": self.router.throttled}
                )
                self.router.throttled = {}
            self.metrics.inflight.set(len(self.acks))

    def run(self, stop: threading.Event, drain: threading.Event) -> int:
        """Work until ``stop`` or ``drain`` is set; return the process exit code."""
        port = self.settings.gateway.metrics_port
        server = None
        if port:
            server = serve_if_free(
                self.metrics.registry,
                port + self.index,
                healthy=self.healthy,
                ready=self.ready,
                log=self.log,
                setting="gateway.metrics_port",
            )
        host, mqtt_port = self.settings.mqtt_address()
        self.client.connect_async(
            host,
            mqtt_port,
            keepalive=self.settings.mqtt.keepalive_s,
            clean_start=False,
            properties=connect_properties(
                session_expiry_s=self.settings.gateway.session_expiry_s,
                receive_maximum=self.settings.gateway.receive_maximum,
            ),
        )
        self.client.loop_start()
        if self.downlink is not None:
            self.downlink.start()
        if self.warnings is not None:
            self.warnings.start()
        self.log.info("gateway worker started", extra={"client_id": self.client_id})
        try:
            while not (stop.is_set() or drain.is_set() or self.writer.fatal):
                self._serve_deliveries(0.05)
                dead = self.lifelines.dead()
                if dead is not None:
                    self.log.critical(
                        "a thread ended; the worker exits so that it is restarted",
                        extra={"dead_thread": dead, "exit_code": EXIT_THREAD_DIED},
                    )
                    return EXIT_THREAD_DIED
            if self.writer.fatal:
                # Exit without DISCONNECT: the session and its un-acked messages stay at the broker.
                self.log.error("gateway worker failed", extra={"error": self.writer.fatal})
                return 1
            return 0 if self._finish(leave_group=drain.is_set()) else 1
        finally:
            if server is not None:
                server.shutdown()

    def _finish(self, *, leave_group: bool) -> bool:
        """Finish in-flight messages, acknowledge them, disconnect. True when all were acked."""
        timeout = self.settings.gateway.drain_timeout_s
        deadline = time.monotonic() + timeout
        if leave_group:
            self._unsubscribed.clear()
            self.client.unsubscribe(self.filters)
            self._unsubscribed.wait(min(5.0, timeout))
        else:
            self._accepting = False
        while time.monotonic() < deadline:
            self._serve_deliveries(0.05)
            quiet = time.monotonic() - self._last_message > _QUIET_S
            if len(self.acks) == 0 and not self.writer.retrying and (quiet or not leave_group):
                break
        finished = len(self.acks) == 0
        self._accepting = False
        if self._connected:  # what is in Kafka: spare the cars the resends
            self.confirmations.publish(self.link.confirm, self.metrics, time.monotonic())
        if self.downlink is not None:
            self.downlink.stop()  # waits for the broker's acks, commits what it acknowledged
        if self.warnings is not None:
            self.warnings.stop()
        if finished and leave_group:
            self.client.disconnect(properties=end_session_properties())
        else:
            if not finished:
                self.log.warning(
                    "stop timed out; the broker keeps the session and redelivers",
                    extra={"unacknowledged": len(self.acks)},
                )
            self.client.disconnect()
        stop_loop(self.client)
        self.producer.flush(5)
        self._next_flush = 0.0
        self._serve_deliveries(0)  # last counts into the metrics
        self.log.info(
            "gateway worker stopped",
            extra={"client_id": self.client_id, "left_group": finished and leave_group},
        )
        return finished
