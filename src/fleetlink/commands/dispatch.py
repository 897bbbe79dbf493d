"""When the downlink hands a command to the broker, as pure logic.

A command goes to the broker only while its vehicle is online. For an offline vehicle it is held
here, where it can still be cancelled, superseded or expire, and published when the vehicle's
presence says ``online``. Why not leave it queued at the broker (persistent session)? Because a
message queued at the broker can no longer be withdrawn: a cancelled courier delivery or an
outdated climate setting would still reach the car. The persistent session remains the safety
net for the moment between a vehicle dropping and its last will arriving; the MQTT message expiry
and the vehicle's own check keep even that copy from running after the TTL.

Held commands keep the Kafka offset of their partition from being committed, so a crashed
downlink reads them again. Until a partition has been read to its end after assignment, nothing
of it is published: a cancel further down the partition must be seen before its command goes out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetlink.contracts.catalogue import CATALOGUE
from fleetlink.contracts.models import Command, CommandState, Transition


@dataclass(eq=False)
class Pending:
    """A command read from Kafka and not yet handed to the broker."""

    vin: str
    command: Command
    partition: int
    offset: int

    def report(self, state: CommandState, ts: int, reason: str | None = None) -> Transition:
        return Transition(
            self.command.command_id, self.vin, self.command.name.value, state, ts, reason
        )


_Predicate = Callable[[Pending], bool]


@dataclass
class Outcome:
    publish: list[Pending] = field(default_factory=list)  # hand to the broker now
    withdrawn: list[Pending] = field(default_factory=list)  # never to be published
    reports: list[Transition] = field(default_factory=list)  # for the tracker


class DispatchQueue:
    def __init__(self, *, memory: int = 100_000, assume_online: bool = False) -> None:
        # assume_online: no presence to follow; every car counts as online and the broker's
        # persistent session is what waits for an offline one (no cancel once published)
        self._assume_online = assume_online
        self._online: dict[str, bool] = {}
        self._held: dict[str, list[Pending]] = {}
        self._taken: OrderedDict[str, None] = OrderedDict()  # command ids already handled
        self._memory = memory
        self._catching_up: set[int] = set()

    @property
    def held(self) -> int:
        return sum(len(items) for items in self._held.values())

    def assigned(self, partitions: set[int]) -> None:
        """New partitions: read each to its end before publishing from it."""
        self._catching_up |= partitions

    def caught_up(self, partition: int) -> Outcome:
        self._catching_up.discard(partition)
        outcome = Outcome()
        for vin in list(self._held):
            if self._is_online(vin):
                outcome.publish.extend(self._release(vin, lambda p: p.partition == partition))
        return outcome

    def revoked(self, partitions: set[int]) -> None:
        """Partitions gone to another downlink: forget what was held of them (it re-reads)."""
        self._catching_up -= partitions
        for vin in list(self._held):
            for item in self._release(vin, lambda p: p.partition in partitions):
                self._taken.pop(item.command.command_id, None)

    def command(self, item: Pending, now: int) -> Outcome:
        outcome = Outcome()
        command_id = item.command.command_id
        if command_id in self._taken:
            outcome.withdrawn.append(item)  # a duplicate (same idempotency key, or re-read)
            return outcome
        self._take(command_id)
        if now >= item.command.expires_at:
            outcome.withdrawn.append(item)
            outcome.reports.append(item.report(CommandState.EXPIRED, now, "ttl"))
            return outcome
        if CATALOGUE[item.command.name].latest_wins:
            for older in self._release(item.vin, lambda p: p.command.name == item.command.name):
                outcome.withdrawn.append(older)
                outcome.reports.append(older.report(CommandState.CANCELLED, now, "superseded"))
        if self._is_online(item.vin) and item.partition not in self._catching_up:
            outcome.publish.append(item)
        else:
            self._held.setdefault(item.vin, []).append(item)
        return outcome

    def cancel(self, vin: str, command_id: str, now: int, reason: str) -> Outcome:
        """Withdraw a held command; one already with the broker cannot be (nothing happens)."""
        outcome = Outcome()
        for item in self._release(vin, lambda p: p.command.command_id == command_id):
            outcome.withdrawn.append(item)
            outcome.reports.append(item.report(CommandState.CANCELLED, now, reason))
        return outcome

    def presence(self, vin: str, online: bool) -> Outcome:
        self._online[vin] = online
        outcome = Outcome()
        if online:
            outcome.publish = self._release(vin, lambda p: p.partition not in self._catching_up)
        return outcome

    def expire(self, now: int) -> Outcome:
        outcome = Outcome()
        for vin in list(self._held):
            for item in self._release(vin, lambda p: now >= p.command.expires_at):
                outcome.withdrawn.append(item)
                outcome.reports.append(item.report(CommandState.EXPIRED, now, "ttl"))
        return outcome

    def _is_online(self, vin: str) -> bool:
        return self._assume_online or self._online.get(vin, False)

    def _release(self, vin: str, chosen: _Predicate) -> list[Pending]:
        held = self._held.get(vin)
        if not held:
            return []
        released = [item for item in held if chosen(item)]
        if released:
            kept = [item for item in held if not chosen(item)]
            if kept:
                self._held[vin] = kept
            else:
                del self._held[vin]
        return released

    def _take(self, command_id: str) -> None:
        self._taken[command_id] = None
        if len(self._taken) > self._memory:
            self._taken.popitem(last=False)
