"""What the purchase flow does outside Kafka's transactions: feature commands and refunds.

Reads the committed ``fleet.entitlements`` and ``fleet.purchases`` (read_committed, a consumer
group of its own) and acts on each record once it is final:

- an entitlement turned on: a signed ``feature.activate`` to the car, its id derived from the
  entitlement's version, valid until the purchase's activation deadline;
- an entitlement turned off after an activation: the activation is withdrawn if it still
  waits (a cancel behind it in the car's partition) and a ``feature.deactivate`` follows;
- a purchase entering ``refunding``: a refund at the provider, under a key derived from the
  purchase id.

Offsets are committed only after the effect is done (command in Kafka, provider answered), so
a crash repeats an effect, never loses one: a repeated command has the same id (the downlink
and the car run an id once) and a repeated refund the same key (the provider answers it once).
Commands are never written inside a transaction: one open on ``fleet.commands`` would stall
every command behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

import msgspec
from confluent_kafka import KafkaException, Message

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.consume import FatalConsumerError, is_fatal, take, usable
from fleetlink.adapters.kafka.skips import SkippedRecords
from fleetlink.contracts import headers
from fleetlink.contracts.catalogue import DAY
from fleetlink.contracts.codec import UndecodableError, decode, encode
from fleetlink.contracts.models import Command, CommandCancel, CommandName
from fleetlink.contracts.purchases import (
    Entitlement,
    Purchase,
    PurchaseState,
    feature_command_id,
    provider_key,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.payments.provider import (
    PaymentProvider,
    ProviderRefused,
    ProviderUnavailable,
    provider_of,
)
from fleetlink.security.keys import command_signer
from fleetlink.security.signing import Signer
from fleetlink.settings import Settings

ACTOR = "fleetlink-purchases"  # who sends feature commands, in the audit trail and lifecycle
DEACTIVATE_TTL_MS = 30 * DAY * 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def activation_of(ended: Entitlement) -> str:
    """The activation an entitlement's end withdraws: the version just before, turned on."""
    turned_on = msgspec.structs.replace(ended, active=True, version=ended.version - 1)
    return feature_command_id(turned_on)


class PurchaseEffects:
    def __init__(
        self,
        settings: Settings,
        log: logging.Logger,
        *,
        provider: PaymentProvider | None = None,
        signer: Signer | None = None,
    ) -> None:
        topics = settings.topic_map()
        config = settings.purchases
        self._entitlements = topics[KafkaTopic.ENTITLEMENTS]
        self._purchases = topics[KafkaTopic.PURCHASES]
        self._commands = topics[KafkaTopic.COMMANDS]
        self._catalogue = {feature.id: feature for feature in config.catalogue}
        self._ttl_ms = config.activation_ttl_s * 1000
        self._retry_s = config.provider_retry_s
        self._provider = provider or provider_of(settings)
        self._signer = signer or command_signer(settings)
        self._log = log
        kafka = KafkaClients.of(settings)
        self._consumer = kafka.consumer(
            f"{config.group_id}-effects",
            log=log,
            extra={
                "isolation.level": "read_committed",  # only what the processor committed
                "auto.offset.reset": "earliest",
                "group.instance.id": f"{config.group_id}-effects-1",
                "session.timeout.ms": 10_000,
            },
        )
        self._producer = kafka.producer(
            log=log, linger_ms=1, compression=settings.gateway.compression, message_timeout_ms=0
        )
        self.skipped = SkippedRecords(log)
        self.ready = threading.Event()
        self.commands_sent = 0
        self.provider_calls = 0

    # entitlements -------------------------------------------------------------------------------

    def _command(self, entitlement: Entitlement) -> None:
        if entitlement.active:
            feature = self._catalogue.get(entitlement.feature)
            params: dict[str, object] = {
                "feature": entitlement.feature,
                "purchase_id": entitlement.purchase_id,
            }
            if feature is not None:
                params["min_firmware"] = feature.min_firmware
            if entitlement.until is not None:
                params["until"] = entitlement.until
            self._send(entitlement, CommandName.FEATURE_ACTIVATE, params, self._ttl_ms)
            return
        if not entitlement.activated:
            return
        cancel = CommandCancel(
            command_id=activation_of(entitlement),
            ts=now_ms(),
            reason=f"entitlement ended: {entitlement.reason or 'ended'}"[:200],
        )
        self._producer.produce(
            self._commands,
            key=entitlement.vin,
            value=encode(cancel),
            headers=[(headers.RECORD_KIND, b"cancel")],
        )
        params = {"feature": entitlement.feature}
        if entitlement.reason:
            params["reason"] = entitlement.reason[:256]
        self._send(entitlement, CommandName.FEATURE_DEACTIVATE, params, DEACTIVATE_TTL_MS)

    def _send(
        self, entitlement: Entitlement, name: CommandName, params: dict[str, object], ttl_ms: int
    ) -> None:
        # the deadline counts from the entitlement, not from now: a late send is no extension
        command = Command(
            command_id=feature_command_id(entitlement),
            name=name,
            issued_at=now_ms(),
            expires_at=entitlement.ts + ttl_ms,
            params=params,
            vin=entitlement.vin,
            actor=ACTOR,
        )
        signed = self._signer.sign_command(command)
        self._producer.produce(
            self._commands,
            key=entitlement.vin,
            value=encode(signed),
            headers=[(headers.RECORD_KIND, b"command")],
        )
        self.commands_sent += 1

    # purchases ----------------------------------------------------------------------------------

    def _money(self, purchase: Purchase, stop: threading.Event) -> None:
        """What a purchase record asks of the provider: a refund, a renewal's charge."""
        pid = purchase.purchase_id
        if purchase.state is PurchaseState.REFUNDING and purchase.intent_id is not None:
            intent, reason = purchase.intent_id, purchase.reason or "refund"
            key = provider_key(pid, "refund")
            self._ask(purchase, stop, "refund", partial(self._refund, intent, reason, key))
        for late in purchase.refunds_due:  # a renewal paid too late
            late_key = provider_key(pid, f"refund-{late}")
            why = "renewal paid after the subscription ended"
            self._ask(purchase, stop, late_key, partial(self._refund, late, why, late_key))
        if purchase.renewing is not None and purchase.state is PurchaseState.COMPLETED:
            period = purchase.renewing
            metadata = {"purchase_id": pid, "vin": purchase.vin, "feature": purchase.feature}
            metadata |= {"owner": purchase.owner, "period": str(period)}

            def charge() -> None:
                self._provider.create_payment(
                    amount=purchase.amount,
                    currency=purchase.currency,
                    metadata=metadata,
                    idempotency_key=provider_key(pid, f"renew-{period}"),
                )

            self._ask(purchase, stop, f"renewal {period}", charge)

    def _refund(self, intent_id: str, reason: str, key: str) -> None:
        self._provider.refund(intent_id=intent_id, reason=reason[:200], idempotency_key=key)

    def _ask(
        self, purchase: Purchase, stop: threading.Event, what: str, call: Callable[[], None]
    ) -> None:
        """``call`` the provider until it answers (the same idempotency key every time)."""
        while not stop.is_set():
            try:
                call()
            except ProviderUnavailable as error:
                self._log.warning(
                    "provider away; asked again", extra={"what": what, "error": str(error)}
                )
                stop.wait(self._retry_s)
                continue
            except ProviderRefused as refused:
                # refunded already (by a person, or a dispute): what was wanted has happened
                quiet = refused.code in ("charge_already_refunded", "charge_disputed")
                self._log.log(
                    logging.INFO if quiet else logging.ERROR,
                    "provider refused",
                    extra={"purchase": purchase.purchase_id, "what": what, "code": refused.code},
                )
            self.provider_calls += 1
            return

    # the loop -----------------------------------------------------------------------------------

    def _handle(self, message: Message, stop: threading.Event) -> None:
        try:
            if message.topic() == self._entitlements:
                self._command(decode(Entitlement, message.value()))
                return
            purchase = decode(Purchase, message.value())
        except UndecodableError as unreadable:
            self.skipped.skip(message, unreadable)
            return
        self._money(purchase, stop)  # again on a later copy: the same keys

    def step(self, stop: threading.Event, timeout: float = 0.1) -> None:
        messages = usable(take(self._consumer, 200, timeout))
        if not messages:
            return
        for message in messages:
            if stop.is_set():
                return  # not committed: done again after the restart
            self._handle(message, stop)
        while self._producer.flush(5) > 0:
            if stop.is_set():
                return
        self._consumer.commit(asynchronous=False)

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe([self._entitlements, self._purchases])
        self.ready.set()
        self._log.info("purchase effects started")
        try:
            while not stop.is_set():
                try:
                    self.step(stop)
                except KafkaException as error:
                    if is_fatal(error.args[0]):  # fenced: a successor runs; this one ends
                        raise FatalConsumerError(f"purchase effects: {error}") from None
                    self._log.warning("purchase effects Kafka error", extra={"error": str(error)})
                    stop.wait(0.5)
        finally:
            self._producer.flush(10)
            self._consumer.close()
