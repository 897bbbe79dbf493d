"""The campaign orchestrator process (``fleetlink campaigns run``), in the cloud: the director.

Reads the operators' ``fleet.campaign-requests``, the cars' ``software-state`` events, the
orders' ``fleet.command-status``, and what the fleet is (``fleet.presence`` for model, version
and online; ``fleet.vehicle-state`` for where cars are). Feeds the pure ``RolloutBook``; writes
``fleet.campaigns`` and ``fleet.campaign-vehicles``, of which it is the only writer, and sends
signed ``software.update`` orders through ``fleet.commands`` like every other command.

At-least-once, without transactions: on start it reads its two output topics and the fleet's
compacted topics to their end, then resumes its inputs from the committed offsets, which are
committed only after everything a batch caused is in Kafka. A batch read again after a crash
changes nothing: requests are in the campaign's history, reports repeat a state, and an order
sent again has the same command id (the downlink and the car run an id once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import msgspec
from confluent_kafka import Message

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.consume import take, usable
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.kafka.skips import SkippedRecords
from fleetlink.campaigns.images import ImageRepository
from fleetlink.campaigns.records import ORCHESTRATOR, Order, Outcome, Withdrawal
from fleetlink.campaigns.rollout import RolloutBook
from fleetlink.contracts import headers
from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignRequest,
    CampaignVehicle,
    DirectorOrder,
    SoftwareCancelParams,
    SoftwareReport,
    SoftwareUpdateParams,
)
from fleetlink.contracts.catalogue import ttl_limits
from fleetlink.contracts.codec import UndecodableError, decode, decode_text, encode
from fleetlink.contracts.fleet import VehicleState
from fleetlink.contracts.models import (
    Command,
    CommandCancel,
    CommandName,
    Event,
    EventKind,
    Presence,
    PresenceStatus,
    Transition,
)
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.security.images import DirectorSigner, DownloadClaim
from fleetlink.security.keys import command_signer, director_signer
from fleetlink.security.signing import Signer
from fleetlink.settings import Settings

_ORDER_PREFIX = "ota-"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        log: logging.Logger,
        *,
        director: DirectorSigner | None = None,
        signer: Signer | None = None,
    ) -> None:
        topics = settings.topic_map()
        config = settings.campaigns
        self._requests = topics[KafkaTopic.CAMPAIGN_REQUESTS]
        self._campaigns = topics[KafkaTopic.CAMPAIGNS]
        self._vehicles = topics[KafkaTopic.CAMPAIGN_VEHICLES]
        self._events = topics[KafkaTopic.EVENTS]
        self._status = topics[KafkaTopic.COMMAND_STATUS]
        self._presence = topics[KafkaTopic.PRESENCE]
        self._states = topics[KafkaTopic.VEHICLE_STATE]
        self._commands = topics[KafkaTopic.COMMANDS]
        self.images = ImageRepository(settings.image_dir())
        self.book = RolloutBook(
            self.images.get, progress_every_ms=int(config.progress_every_s * 1000)
        )
        self._director = director or director_signer(settings)
        self._signer = signer or command_signer(settings)
        self._artifact_url = settings.artifact_url().rstrip("/")
        self._token_ttl_ms = config.download_token_ttl_s * 1000
        self._tick_s = config.tick_s
        self._group = config.group_id
        self._next_tick = 0.0
        self._log = log
        self._kafka = KafkaClients.of(settings)
        self._consumer = self._kafka.consumer(
            config.group_id,
            log=log,
            extra={
                "auto.offset.reset": "earliest",
                "group.instance.id": f"{config.group_id}-1",  # one orchestrator: resume at once
                "session.timeout.ms": 10_000,
            },
        )
        self._producer = self._kafka.producer(
            log=log, linger_ms=5, compression=settings.gateway.compression, message_timeout_ms=0
        )
        self.skipped = SkippedRecords(log)
        self.ready = threading.Event()
        self.orders_sent = 0

    # start --------------------------------------------------------------------------------------

    def _restore(self) -> None:
        book = self.book
        for record in read_topic(self._kafka, self._campaigns):
            self._safely(record, lambda r: book.restore(decode(Campaign, r.value())))
        for record in read_topic(self._kafka, self._vehicles):
            self._safely(record, lambda r: book.restore_vehicle(decode(CampaignVehicle, r.value())))
        for record in read_topic(self._kafka, self._presence):
            self._safely(record, self._take_presence)
        for record in read_topic(self._kafka, self._states):
            self._safely(record, self._take_position)
        self._log.info(
            "campaigns restored",
            extra={"campaigns": len(book.campaigns), "cars": len(book.cars)},
        )

    def _safely(self, record: Message, use: Callable[[Message], None]) -> None:
        try:
            use(record)
        except UndecodableError as unreadable:
            self.skipped.skip(record, unreadable)

    # inputs -------------------------------------------------------------------------------------

    def _take_presence(self, record: Message) -> None:
        if record.value() is None:
            return
        vin = decode_text(record.key(), "key (VIN)")
        presence = decode(Presence, record.value())
        car = self.book.car(vin)
        car.online = presence.status is PresenceStatus.ONLINE
        car.model = presence.model or car.model
        car.firmware = presence.firmware or car.firmware

    def _take_position(self, record: Message) -> None:
        if record.value() is None:
            return
        state = decode(VehicleState, record.value())
        if state.latitude is not None and state.longitude is not None:
            self.book.car(state.vin).position = (state.latitude, state.longitude)

    def _read(self, message: Message) -> Outcome:
        """What one input record causes; ``UndecodableError`` when it cannot be used."""
        topic, value = message.topic(), message.value()
        now = now_ms()
        if topic == self._requests:
            request: CampaignRequest = decode(CampaignRequest, value)  # type: ignore[arg-type]
            return self.book.request(request, now)
        if topic == self._status:
            command_id = decode_text(message.key(), "key (command id)")
            if not command_id.startswith(_ORDER_PREFIX) or value is None:
                return Outcome()
            transition = decode(Transition, value)
            return self.book.command_status(
                command_id, transition.vin, transition.state, transition.reason, now
            )
        if topic == self._presence:
            self._take_presence(message)
            return Outcome()
        if topic == self._states:
            self._take_position(message)
            return Outcome()
        mqtt_topic = header_value(message.headers(), headers.MQTT_TOPIC) or b""
        parsed = MqttTopic.parse_vehicle_topic(mqtt_topic.decode(errors="replace"))
        if parsed is None or parsed.detail != EventKind.SOFTWARE_STATE:
            return Outcome()
        event = decode(Event, value)
        try:
            report = msgspec.convert(event.data, SoftwareReport)
        except msgspec.ValidationError as error:
            self._log.warning(
                "software-state unreadable", extra={"vin": parsed.vin, "why": str(error)}
            )
            return Outcome()
        return self.book.software_state(parsed.vin, report, now)

    def apply(self, message: Message) -> Outcome:
        """What one input record causes; an unusable one is skipped with its reason."""
        try:
            return self._read(message)
        except UndecodableError as unreadable:
            self.skipped.skip(message, unreadable)
            return Outcome()

    # outputs ------------------------------------------------------------------------------------

    def _write(self, out: Outcome) -> None:
        for campaign in out.campaigns.values():
            self._producer.produce(
                self._campaigns, key=campaign.campaign_id, value=encode(campaign)
            )
        for vehicle in out.vehicles:
            self._producer.produce(self._vehicles, key=vehicle.key, value=encode(vehicle))
        for order in out.orders:
            self._order(order)
        for withdrawal in out.withdrawals:
            self._withdraw(withdrawal)

    def _order(self, order: Order) -> None:
        campaign = self.book.campaigns[order.campaign_id]
        image = self.images.get(campaign.spec.image, campaign.spec.version)
        if image is None:  # removed from the repository after the start: the car cannot get it
            self._log.error("image gone", extra={"campaign": order.campaign_id})
            return
        now = now_ms()
        signed_order = self._director.sign(
            DirectorOrder(
                vin=order.vin,
                campaign_id=order.campaign_id,
                name=image.name,
                version=image.version,
                length=image.length,
                sha256=image.sha256,
                expires_at=order.expires_at,
            )
        )
        claim = DownloadClaim(
            order.vin, image.name, image.version, min(order.expires_at, now + self._token_ttl_ms)
        )
        params = SoftwareUpdateParams(
            campaign_id=order.campaign_id,
            image=image,
            order=signed_order,
            url=f"{self._artifact_url}/v1/images/{image.name}/{image.version}/bytes",
            token=self._director.download_token(claim),
            group=order.group,
        )
        self._command(
            order.vin, order.command_id, CommandName.SOFTWARE_UPDATE, params, order.expires_at
        )
        self.orders_sent += 1

    def _withdraw(self, withdrawal: Withdrawal) -> None:
        cancel = CommandCancel(
            command_id=withdrawal.command_id, ts=now_ms(), reason="campaign stopped"
        )
        self._producer.produce(
            self._commands,
            key=withdrawal.vin,
            value=encode(cancel),
            headers=[(headers.RECORD_KIND, b"cancel")],
        )
        if withdrawal.tell_car:
            ttl_s = ttl_limits(CommandName.SOFTWARE_CANCEL)[0]
            self._command(
                withdrawal.vin,
                f"ota-cancel-{withdrawal.campaign_id}-{withdrawal.vin}",
                CommandName.SOFTWARE_CANCEL,
                SoftwareCancelParams(campaign_id=withdrawal.campaign_id),
                now_ms() + ttl_s * 1000,
            )

    def _command(
        self, vin: str, command_id: str, name: CommandName, params: msgspec.Struct, expires_at: int
    ) -> None:
        command = Command(
            command_id=command_id,
            name=name,
            issued_at=now_ms(),
            expires_at=expires_at,
            params=msgspec.to_builtins(params),
            vin=vin,
            actor=ORCHESTRATOR,
        )
        self._producer.produce(
            self._commands,
            key=vin,
            value=encode(self._signer.sign_command(command)),
            headers=[(headers.RECORD_KIND, b"command")],
        )

    # the loop -----------------------------------------------------------------------------------

    def step(self, timeout: float = 0.1) -> None:
        """One batch of inputs and, when due, the clock; offsets once all of it is in Kafka."""
        messages = usable(take(self._consumer, 500, timeout))
        wrote = False
        for message in messages:
            out = self.apply(message)
            wrote = wrote or not out.empty
            self._write(out)
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + self._tick_s
            out = self.book.tick(now_ms())
            wrote = wrote or not out.empty
            self._write(out)
        if wrote:
            self._producer.flush()
        if messages:
            self._consumer.commit(asynchronous=False)

    def run(self, stop: threading.Event) -> None:
        self._restore()
        self._consumer.subscribe(
            [self._requests, self._events, self._status, self._presence, self._states]
        )
        self.ready.set()
        self._log.info("campaign orchestrator started", extra={"group": self._group})
        try:
            while not stop.is_set():
                self.step()
        finally:
            self._producer.flush(10)
            self._consumer.close()
