"""The payment simulator's webhook delivery, as Stripe does it, and worse on request.

At least once and in no particular order: every event is POSTed, signed anew at each attempt,
until the endpoint answers 2xx or ``max_attempts`` ran out, ``retry_first_s`` apart and then
``retry_factor`` times longer each time. Chaos (``Chaos``) adds what a receiver must survive:
late events, events overtaken by later ones, the same event twice, and an endpoint that is down.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import msgspec

from fleetlink.payments.signature import SIGNATURE_HEADER, sign_header
from fleetlink.settings.purchases import SimulatorSettings

log = logging.getLogger("fleetlink.payments.simulator")

Clock = Callable[[], float]


@dataclass
class Chaos:
    """The knobs ``POST /v1/test/chaos`` changes at run time."""

    decline_p: float
    duplicate_p: float
    reorder_p: float
    max_delay_s: float
    down_until: float  # clock seconds: every delivery attempt before fails unsent

    @classmethod
    def of(cls, sim: SimulatorSettings, now: float) -> Chaos:
        return cls(
            decline_p=sim.decline_p,
            duplicate_p=sim.duplicate_p,
            reorder_p=sim.reorder_p,
            max_delay_s=sim.max_delay_s,
            down_until=now + sim.down_for_s,
        )

    def as_json(self, now: float) -> dict[str, float]:
        return {
            "decline_p": self.decline_p,
            "duplicate_p": self.duplicate_p,
            "reorder_p": self.reorder_p,
            "max_delay_s": self.max_delay_s,
            "down_for_s": max(0.0, self.down_until - now),
        }


@dataclass
class WebhookCounts:
    events: int = 0  # distinct events sent
    attempts: int = 0  # POSTs tried (or failed unsent while down)
    delivered: int = 0  # copies answered 2xx (an event sent twice counts twice)
    duplicates_sent: int = 0  # second copies of an event
    pending: int = 0  # copies still being delivered
    failed_for_good: int = 0  # copies that ran out of attempts

    def as_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(eq=False)
class _Copy:
    """One delivery of one event; a duplicate is a second ``_Copy`` of the same body."""

    event_id: str
    event_type: str
    body: bytes
    delay_s: float
    held: bool = False  # reordered: waits until a later event has started, or hold time ran out
    after: _Copy | None = None  # a duplicate starts once this one is done
    overtaker: _Copy | None = None  # the later event that released a held copy
    released: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class WebhookSender:
    """Delivers events to one endpoint, one asyncio task per copy, all running concurrently."""

    def __init__(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        sim: SimulatorSettings,
        chaos: Chaos,
        rng: random.Random,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.counts = WebhookCounts()
        self._url = url
        self._secrets = list(secrets)
        self._sim = sim
        self._chaos = chaos
        self._rng = rng
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._held: list[_Copy] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self._transport, timeout=self._sim.webhook_timeout_s, follow_redirects=False
        )

    async def stop(self) -> None:
        """Abandon what is still being delivered (the simulator keeps nothing across runs)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def send(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` (Stripe's event JSON) from now on, with the chaos set now.

        Every random choice is drawn here, in the order events are made, so a seed replays the
        same choices whatever the timing of deliveries.
        """
        chaos = self._chaos
        body = msgspec.json.encode(event)
        first = _Copy(
            event_id=event["id"],
            event_type=event["type"],
            body=body,
            delay_s=self._rng.uniform(0, chaos.max_delay_s),
            held=self._rng.random() < chaos.reorder_p,
        )
        # copies held back before this one go after it: this event overtakes them
        for held in self._held:
            held.overtaker = first
            held.released.set()
        self._held = [first] if first.held else []
        self.counts.events += 1
        self._spawn(first)
        if self._rng.random() < chaos.duplicate_p:
            self.counts.duplicates_sent += 1
            second = _Copy(
                event_id=first.event_id,
                event_type=first.event_type,
                body=body,
                delay_s=self._rng.uniform(0, chaos.max_delay_s),
                after=first,
            )
            self._spawn(second)

    def _spawn(self, copy: _Copy) -> None:
        self.counts.pending += 1
        task = asyncio.create_task(self._run(copy))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, copy: _Copy) -> None:
        try:
            if copy.after is not None:
                await copy.after.done.wait()  # a second delivery, after the first one's outcome
            await asyncio.sleep(copy.delay_s)
            if copy.held:
                await self._hold(copy)
            copy.started.set()
            await self._deliver(copy)
        finally:
            copy.started.set()
            copy.done.set()
            self.counts.pending -= 1

    async def _hold(self, copy: _Copy) -> None:
        # at most the longest chaos delay and one retry interval: an event no later event
        # comes to overtake is not kept from its receiver for long
        hold_s = self._chaos.max_delay_s + self._sim.retry_first_s
        try:
            await asyncio.wait_for(copy.released.wait(), hold_s)
        except TimeoutError:
            if copy in self._held:
                self._held.remove(copy)
        if copy.overtaker is not None:
            await copy.overtaker.started.wait()

    async def _deliver(self, copy: _Copy) -> None:
        sim = self._sim
        for attempt in range(1, sim.max_attempts + 1):
            self.counts.attempts += 1
            failure = await self._attempt(copy)
            extra = {"event_id": copy.event_id, "event_type": copy.event_type, "attempt": attempt}
            if failure is None:
                self.counts.delivered += 1
                log.info("webhook delivered", extra=extra)
                return
            if attempt < sim.max_attempts:
                retry_s = sim.retry_first_s * sim.retry_factor ** (attempt - 1)
                log.info("webhook failed", extra={**extra, "failure": failure, "retry_s": retry_s})
                await asyncio.sleep(retry_s)
        self.counts.failed_for_good += 1
        log.warning(
            "webhook given up",
            extra={"event_id": copy.event_id, "event_type": copy.event_type, "failure": failure},
        )

    async def _attempt(self, copy: _Copy) -> str | None:
        """One POST of ``copy``: None when the endpoint took it, else why not."""
        now = self._clock()
        if now < self._chaos.down_until:
            return "endpoint down (chaos)"
        assert self._client is not None, "start() the sender first"
        headers = {
            # signed at each attempt, with its own time: a retry is never stale on arrival
            SIGNATURE_HEADER: sign_header(copy.body, self._secrets, int(now)),
            "Content-Type": "application/json",
        }
        try:
            response = await self._client.post(self._url, content=copy.body, headers=headers)
        except httpx.HTTPError as error:
            return f"not reached: {error!r}"
        if 200 <= response.status_code < 300:
            return None
        return f"answered {response.status_code}"
