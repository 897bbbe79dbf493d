"""The in-vehicle agent on MQTT 5 (asyncio, aiomqtt): telemetry, events, presence, commands.

Identity: client id and username are the VIN. Persistent session (``clean_start=False``, session
expiry), so commands sent while the car is offline wait at the broker. Last will: presence
``offline`` (retained); on connect a retained ``online`` birth message. Everything the car sends
goes through an ordered outbox: telemetry sampled offline is marked ``resent``. Every message is
stamped with a boot id and a sequence number (MQTT 5 user properties). With ``confirm`` (the
default) the car keeps each message until the platform confirms it is in Kafka
(``vehicles/{vin}/delivered``) and sends again what is unconfirmed when the link dies or too
long after the PUBACK (``vehicle/outbox.py``). The outbox is in memory (a unit keeps it in
flash; ``held_at_exit`` counts what is left). OTA: ``vehicle/ota.py``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import ssl
import time

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.adapters.mqtt.wire import UserProperties, disable_nagle
from fleetlink.contracts.codec import UndecodableError, decode_with, decoder_of, encode
from fleetlink.contracts.delivery import CAPABILITY_PROPERTY, CAPABILITY_VALUE, stamp_properties
from fleetlink.contracts.models import (
    Delivered,
    Event,
    EventKind,
    PresenceStatus,
    Telemetry,
)
from fleetlink.contracts.topics import GEO_ROOT, MqttTopic
from fleetlink.security.signing import Verifier
from fleetlink.vehicle.commands import CommandExecutor, react, relock
from fleetlink.vehicle.geo import subscription_changes, warning_cells
from fleetlink.vehicle.link import (
    acknowledge_lost_link,
    payload_bytes,
    sleep_unless,
    unless_link_lost,
    wait_event,
)
from fleetlink.vehicle.ota import OtaConfig, OtaUpdater
from fleetlink.vehicle.outbox import Outbox, Pending
from fleetlink.vehicle.state import AgentStats, Placing, VehicleState
from fleetlink.vehicle.warnings import WarningBook

_delivered_decoder = decoder_of(Delivered)


class VehicleAgent:
    def __init__(
        self,
        state: VehicleState,
        *,
        host: str,
        port: int,
        verifier: Verifier | None,
        session_expiry_s: int = 3600,
        keepalive_s: int = 30,
        rng: random.Random | None = None,
        clock_skew_ms: int = 0,
        malformed_share: float = 0.0,
        tls_context: ssl.SSLContext | None = None,
        password: str | None = None,
        trunk_relock_s: float = 30.0,
        confirm: bool = True,
        confirm_timeout_s: float = 15.0,
        final_flush_s: float = 5.0,
        outbox_capacity: int = 50_000,
        reconnect_max_s: float = 30.0,
        ota: OtaConfig | None = None,
    ) -> None:
        self.state = state
        self.vin = state.vin
        self._rng = rng or random.Random()
        self.ota: OtaUpdater | None = None  # software updates: for a car given the OTA keys
        if ota is not None:
            self.ota = OtaUpdater(
                state,
                ota,
                report_event=self.report_event,
                on_installed=self._rebirth,
                clock=self.now_ms,
                rng=self._rng,
            )
        self.executor = CommandExecutor(state, verifier=verifier, extension=self.ota)
        self.outbox = Outbox(outbox_capacity, confirmed=confirm, resend_after_s=confirm_timeout_s)
        # new at every start: the platform confirms (boot, seq), and seq restarts at 1
        self.boot = secrets.token_hex(6)
        self._final_flush_s = final_flush_s
        self._reconnect_max_s = reconnect_max_s  # the wait before reconnecting doubles to this
        self._delivered_topic = MqttTopic.delivered(state.vin)
        self.stats = AgentStats()
        self.connected = False
        self._host, self._port = host, port
        self._session_expiry_s, self._keepalive_s = session_expiry_s, keepalive_s
        self._clock_skew_ms = clock_skew_ms
        self._tls_context, self._password = tls_context, password
        self._malformed_share = malformed_share
        # a trunk opened with a digital key (a courier's delivery) closes and locks by itself
        self._trunk_relock_s = trunk_relock_s
        self._seq = 0
        self._wake = asyncio.Event()
        self._offline_until = 0.0
        self._client: aiomqtt.Client | None = None
        self._geo_cells: frozenset[str] = frozenset()  # subscribed on this connection
        self._geo_position: tuple[float, float] | None = None
        self.warnings = WarningBook()
        # Fault injection: answers to commands vanish (a cellular drop right after acting).
        self.lose_answers = False
        self._reboot = False  # set by a new slot: reconnect cleanly (a will with its version)

    # what the car says ------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def last_seq(self) -> int:
        """The last sequence number this boot used: it sent 1..last_seq (the ground truth)."""
        return self._seq

    def _send(self, topic: str, payload: bytes, seq: int, retain: bool = False) -> None:
        self.outbox.put(Pending(topic, payload, retain=retain, seq=seq))
        self._wake.set()

    def now_ms(self) -> int:
        """The car's own clock, which may be off by ``clock_skew_ms``."""
        return time.time_ns() // 1_000_000 + self._clock_skew_ms

    def sample_telemetry(self) -> None:
        if self._malformed_share and self._rng.random() < self._malformed_share:
            self.stats.malformed += 1  # a firmware bug: the gateway must dead-letter it
            seq = self._next_seq()
            self._send(MqttTopic.telemetry(self.vin), b'{"seq": ' + str(seq).encode(), seq)
            return
        telemetry = Telemetry(
            ts=self.now_ms(),
            seq=self._next_seq(),
            signals=self.state.signals(),
            resent=not self.connected,
        )
        if telemetry.resent:
            self.stats.resent += 1
        self._send(MqttTopic.telemetry(self.vin), encode(telemetry), telemetry.seq)

    def report_event(
        self, kind: EventKind, data: dict[str, object], where: Placing | None = None
    ) -> None:
        """Report ``kind`` where the car is, or ``where`` (a gap it measured, its spot)."""
        state = self.state
        lat, lon, heading, speed = where or (
            state.latitude,
            state.longitude,
            state.heading_deg,
            state.speed_kmh,
        )
        event = Event(
            ts=self.now_ms(),
            seq=self._next_seq(),
            data=data,
            latitude=round(lat, 6),
            longitude=round(lon, 6),
            heading_deg=round(heading % 360, 1),
            speed_kmh=round(max(0.0, speed), 1),
            resent=not self.connected,
        )
        self._send(MqttTopic.event(self.vin, kind), encode(event), event.seq)

    def _presence(self, status: PresenceStatus, reason: str) -> bytes:
        return encode(self.state.presence(status, reason, self.now_ms()))

    def _rebirth(self) -> None:
        """New firmware: a birth says so now; a reconnect (a reboot) puts it in the will."""
        birth = self._presence(PresenceStatus.ONLINE, "software-updated")
        self._send(MqttTopic.presence(self.vin), birth, self._next_seq(), retain=True)
        self._reboot = True

    # connection -------------------------------------------------------------------------------

    def drop_connection(self, offline_s: float) -> None:
        """Fault injection: the link dies without DISCONNECT (the broker sends the last will)
        and the car stays offline for ``offline_s`` seconds, as in a tunnel."""
        self._offline_until = time.monotonic() + offline_s
        client = self._client
        if client is not None:
            sock = client._client.socket()
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``; reconnect with backoff; say goodbye on stop."""
        backoff = min(1.0, self._reconnect_max_s)
        ota = None if self.ota is None else asyncio.create_task(self.ota.run(stop))
        while not stop.is_set():
            wait = self._offline_until - time.monotonic()
            if wait > 0:
                await sleep_unless(stop, wait)
                continue
            try:
                await self._session(stop)
                backoff = min(1.0, self._reconnect_max_s)
            except aiomqtt.MqttError:
                self.stats.disconnects += 1
            finally:
                if self._client is not None:
                    acknowledge_lost_link(self._client)
                self.connected = False
                self._client = None
            if not stop.is_set() and time.monotonic() >= self._offline_until:
                await sleep_unless(stop, backoff * self._rng.uniform(0.5, 1.5))
                backoff = min(backoff * 2, self._reconnect_max_s)
        self.stats.held_at_exit = len(self.outbox)
        if ota is not None:
            await ota

    async def _session(self, stop: asyncio.Event) -> None:
        self._reboot = False  # the will made now says what runs now
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._session_expiry_s
        if self.outbox.confirmed:
            properties.UserProperty = [(CAPABILITY_PROPERTY, CAPABILITY_VALUE)]
        will = aiomqtt.Will(
            MqttTopic.presence(self.vin),
            self._presence(PresenceStatus.OFFLINE, "connection-lost"),
            qos=1,
            retain=True,
        )
        client = self._client = aiomqtt.Client(
            self._host,
            self._port,
            identifier=self.vin,
            username=self.vin,
            password=self._password,
            tls_context=self._tls_context,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            will=will,
            keepalive=self._keepalive_s,
            timeout=15,
        )
        async with client:
            disable_nagle(client._client.socket())
            self.connected = True
            self.stats.connects += 1
            self._geo_cells = frozenset()
            # reading first: confirmations the broker kept for this session arrive at once
            receiver = asyncio.create_task(self._receive(client))
            try:
                await client.subscribe(MqttTopic.commands_filter(self.vin), qos=1)
                if self.outbox.confirmed:
                    await client.subscribe(self._delivered_topic, qos=1)
                await client.publish(
                    MqttTopic.presence(self.vin),
                    self._presence(PresenceStatus.ONLINE, "connected"),
                    qos=1,
                    retain=True,
                )
                # unconfirmed on the lost link: the platform may never have had them
                self.outbox.resend_awaiting()
                self.outbox.restart_resend_clock()
                await self._flush(client, stop)
            finally:
                receiver.cancel()
            if stop.is_set():
                await client.publish(
                    MqttTopic.presence(self.vin),
                    self._presence(PresenceStatus.OFFLINE, "shutdown"),
                    qos=1,
                    retain=True,
                )

    async def _flush(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Send the outbox in order, each message once the broker acknowledged the one before;
        send again what stays unconfirmed for too long.

        On ``stop`` what is still held is sent (and confirmed) first, for at most
        ``final_flush_s``.
        """
        outbox = self.outbox
        deadline: float | None = None
        while time.monotonic() >= self._offline_until:
            if self._reboot and not stop.is_set():
                return  # a clean DISCONNECT, then ``run`` connects again with a new will
            now = time.monotonic()
            if stop.is_set():
                if deadline is None:  # the last chance: no backing off now
                    deadline = now + self._final_flush_s
                    outbox.restart_resend_clock()
                if now > deadline:
                    break
            await self._follow_geo_cells(client)
            outbox.resend_overdue(now)
            pending = outbox.peek()
            if pending is None:
                if stop.is_set() and not outbox.unconfirmed:
                    break
                self._wake.clear()
                # everything that gives the loop work sets the event; the timeout is a backstop
                await wait_event(self._wake, stop, outbox.idle_wait_s(now, deadline), client)
                continue
            properties = UserProperties(stamp_properties(self.boot, pending.seq, pending.sends))
            publish = client.publish(
                pending.topic,
                pending.payload,
                qos=1,
                retain=pending.retain,
                properties=properties,
                timeout=15,
            )
            await unless_link_lost(client, publish)
            outbox.acknowledged(pending, time.monotonic())
            self.stats.published += 1
            self.stats.unconfirmed_max = max(self.stats.unconfirmed_max, outbox.unconfirmed)
        if time.monotonic() < self._offline_until:
            raise aiomqtt.MqttError("link cut by the simulator")

    def _confirmed(self, payload: bytes) -> None:
        try:
            delivered: Delivered = decode_with(_delivered_decoder, payload)
        except UndecodableError:
            self.stats.bad_confirmations += 1
            return
        if delivered.boot != self.boot:
            return  # for an earlier start of this agent: those messages are gone already
        if self.outbox.confirm(delivered.ranges, time.monotonic()):
            self._wake.set()

    async def _follow_geo_cells(self, client: aiomqtt.Client) -> None:
        position = (self.state.latitude, self.state.longitude)
        if position == self._geo_position and self._geo_cells:
            return  # not moved: the same cells (H3 on every message costs the fleet a lot)
        self._geo_position = position
        wanted = warning_cells(*position)
        enter, leave = subscription_changes(self._geo_cells, wanted)
        if enter:
            await client.subscribe([(MqttTopic.geo_warnings_filter(c), 1) for c in enter])
        if leave:
            await client.unsubscribe([MqttTopic.geo_warnings_filter(c) for c in leave])
        self._geo_cells = wanted

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            if topic == self._delivered_topic:
                self._confirmed(payload_bytes(message.payload))
                continue
            if topic.startswith(f"{GEO_ROOT}/"):
                if self.warnings.receive(topic, payload_bytes(message.payload), self.now_ms()):
                    self.stats.warnings += 1
                continue
            command_id = topic.rsplit("/", 1)[-1]
            payload = payload_bytes(message.payload)
            reaction = react(self.executor, command_id, payload, self.now_ms())
            if reaction.malformed:
                self.stats.errors += 1
            else:
                self.stats.commands += 1
            if reaction.relock:
                asyncio.get_running_loop().call_later(self._trunk_relock_s, self._relock)
            if self.lose_answers:
                self.stats.answers_lost += len(reaction.answers)
            else:
                for answer in reaction.answers:
                    self._send(
                        MqttTopic.command_response(self.vin, command_id),
                        encode(answer),
                        self._next_seq(),
                    )
            if reaction.feature_change is not None:  # after the answer: the purchase completes
                self.report_event(EventKind.FEATURE_STATE, reaction.feature_change)
            if reaction.ran:
                self.sample_telemetry()  # a state change is reported at once

    def _relock(self) -> None:
        if relock(self.state):
            self.report_event(EventKind.TRUNK_RELOCKED, {"after_s": self._trunk_relock_s})
            self.sample_telemetry()
