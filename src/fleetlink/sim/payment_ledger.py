"""The payment simulator's accounts: intents, charges, refunds, disputes, and their rules.

What Stripe would do, in memory: a payment is ``processing`` when made and succeeds (a charge,
``charge.succeeded`` and ``payment_intent.succeeded``) or is declined
(``payment_intent.payment_failed``) ``confirm_delay_s`` later; a succeeded payment can be
refunded whole once (``charge.refunded``) or disputed (``charge.dispute.created``). Every event
goes to the ``WebhookSender``. Refusals raise ``ProviderError`` in Stripe's error shape.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from fleetlink.settings.purchases import SimulatorSettings
from fleetlink.sim.payment_webhooks import Chaos, Clock, WebhookSender

log = logging.getLogger("fleetlink.payments.simulator")

_DECLINES: Final = ("insufficient_funds", "generic_decline", "card_velocity_exceeded")


class ProviderError(Exception):
    """An answer in Stripe's error shape: ``{"error": {"type", "code", "message"}}``."""

    def __init__(self, status: int, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "code": code, "message": message}}


def invalid(code: str, message: str, status: int = 400) -> ProviderError:
    return ProviderError(status, "invalid_request_error", code, message)


def new_id(prefix: str) -> str:
    # unique across runs, never from the seed: receivers keep the event ids they have seen,
    # and a restarted simulator must not reuse one
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class _Intent:
    id: str
    amount: int
    currency: str
    metadata: dict[str, str]
    created: int
    status: str = "processing"
    decline_code: str | None = None
    charge_id: str | None = None
    refund: dict[str, Any] | None = None
    dispute_id: str | None = None


@dataclass
class _Entries:
    charges: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    declines: list[dict[str, Any]] = field(default_factory=list)


class PaymentLedger:
    """The simulated provider's state; one asyncio loop runs it all (no locks needed)."""

    def __init__(self, sim: SimulatorSettings, sender: WebhookSender, chaos: Chaos, clock: Clock):
        self._sim = sim
        self._sender = sender
        self._chaos = chaos
        self._clock = clock
        self._rng = random.Random(sim.seed)  # declines; the sender draws from its own stream
        self._intents: dict[str, _Intent] = {}
        self._entries = _Entries()
        self._tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        """Forget the confirmations still to come."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def create_intent(self, amount: int, currency: str, metadata: dict[str, str]) -> dict[str, Any]:
        intent = _Intent(new_id("pi"), amount, currency, dict(metadata), int(self._clock()))
        # drawn now, in the order payments are made: a seed gives the same declines
        if self._rng.random() < self._chaos.decline_p:
            intent.decline_code = self._rng.choice(_DECLINES)
        self._intents[intent.id] = intent
        self._later(self._confirm(intent))
        log.info("payment created", extra=_about(intent))
        return _intent_json(intent)

    def intent(self, intent_id: str) -> dict[str, Any]:
        return _intent_json(self._find(intent_id))

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, intent: _Intent) -> None:
        await asyncio.sleep(self._sim.confirm_delay_s)
        if intent.decline_code is not None:
            # a failed attempt leaves the intent waiting for another payment method
            intent.status = "requires_payment_method"
            entry = {**_entry(intent), "decline_code": intent.decline_code}
            self._entries.declines.append(entry)
            self._emit("payment_intent.payment_failed", _intent_json(intent))
            log.info("payment declined", extra=_about(intent))
            return
        intent.status = "succeeded"
        intent.charge_id = new_id("ch")
        self._entries.charges.append(_entry(intent))
        # one payment, two events (as Stripe): receivers fulfil on the intent's
        self._emit("charge.succeeded", _charge_json(intent))
        self._emit("payment_intent.succeeded", _intent_json(intent))
        log.info("payment succeeded", extra=_about(intent))

    def refund(self, intent_id: str, reason: str) -> dict[str, Any]:
        """Refund a succeeded payment whole: the refund object."""
        intent = self._charged(intent_id)
        if intent.refund is not None:
            raise invalid("charge_already_refunded", f"charge {intent.charge_id} is refunded")
        if intent.dispute_id is not None:
            raise invalid("charge_disputed", f"charge {intent.charge_id} is disputed")
        intent.refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": intent.amount,
            "currency": intent.currency,
            "charge": intent.charge_id,
            "payment_intent": intent.id,
            "status": "succeeded",
            "reason": "requested_by_customer",  # Stripe's reasons are an enum: ours in metadata
            "metadata": {"fleetlink_reason": reason},
            "created": int(self._clock()),
        }
        entry = {**_entry(intent), "refund_id": intent.refund["id"], "reason": reason}
        self._entries.refunds.append(entry)
        self._emit("charge.refunded", _charge_json(intent))
        log.info("payment refunded", extra={**_about(intent), "reason": reason})
        return intent.refund

    def dispute(self, intent_id: str, reason: str) -> dict[str, Any]:
        """The card holder disputes a succeeded payment: the dispute object."""
        intent = self._charged(intent_id)
        if intent.dispute_id is not None:
            raise invalid("charge_already_disputed", f"charge {intent.charge_id} is disputed")
        intent.dispute_id = new_id("dp")
        dispute = {
            "id": intent.dispute_id,
            "object": "dispute",
            "amount": intent.amount,
            "currency": intent.currency,
            "charge": intent.charge_id,
            "payment_intent": intent.id,
            "reason": reason,
            "status": "needs_response",
            # Stripe's disputes carry their own (empty) metadata; ours carry the intent's, so
            # the event names its purchase
            "metadata": dict(intent.metadata),
            "created": int(self._clock()),
        }
        entry = {**_entry(intent), "dispute_id": intent.dispute_id, "reason": reason}
        self._entries.disputes.append(entry)
        self._emit("charge.dispute.created", dispute)
        log.info("payment disputed", extra=_about(intent))
        return dispute

    def _find(self, intent_id: str) -> _Intent:
        intent = self._intents.get(intent_id)
        if intent is None:
            raise invalid("resource_missing", f"No such payment_intent: {intent_id!r}", 404)
        return intent

    def _charged(self, intent_id: str) -> _Intent:
        intent = self._find(intent_id)
        if intent.status != "succeeded" or intent.charge_id is None:
            message = f"payment_intent {intent_id} is {intent.status}, not succeeded"
            raise invalid("payment_intent_unexpected_state", message)
        return intent

    def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        event = {
            "id": new_id("evt"),
            "object": "event",
            "type": event_type,
            "created": int(self._clock()),
            "livemode": False,
            "data": {"object": obj},
        }
        self._sender.send(event)

    def as_json(self) -> dict[str, Any]:
        entries = self._entries
        return {
            "charges": entries.charges,
            "refunds": entries.refunds,
            "disputes": entries.disputes,
            "declines": entries.declines,
            "webhooks": self._sender.counts.as_json(),
        }


# Stripe's objects, the fields fleetlink reads and a few more -----------------------------------


def _intent_json(intent: _Intent) -> dict[str, Any]:
    error = None
    if intent.decline_code is not None and intent.status == "requires_payment_method":
        error = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": intent.decline_code,
            "message": "Your card was declined.",
        }
    return {
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "currency": intent.currency,
        "status": intent.status,
        "created": intent.created,
        "metadata": intent.metadata,
        "latest_charge": intent.charge_id,
        "last_payment_error": error,
    }


def _charge_json(intent: _Intent) -> dict[str, Any]:
    refunds = [] if intent.refund is None else [intent.refund]
    return {
        "id": intent.charge_id,
        "object": "charge",
        "payment_intent": intent.id,
        "amount": intent.amount,
        "amount_refunded": intent.amount if refunds else 0,
        "currency": intent.currency,
        "status": "succeeded",
        "paid": True,
        "refunded": bool(refunds),
        "disputed": intent.dispute_id is not None,
        "metadata": intent.metadata,
        "refunds": {"object": "list", "data": refunds},
    }


def _entry(intent: _Intent) -> dict[str, Any]:
    return {
        "intent_id": intent.id,
        "charge_id": intent.charge_id,
        "purchase_id": intent.metadata.get("purchase_id"),
        "amount": intent.amount,
        "currency": intent.currency,
    }


def _about(intent: _Intent) -> dict[str, Any]:
    return {"intent_id": intent.id, "purchase_id": intent.metadata.get("purchase_id")}
