"""A read model of commands, presence, digital keys and the audit trail, followed from Kafka.

Reads the compacted ``fleet.command-status``, ``fleet.presence`` and ``fleet.grants`` and the
``fleet.audit`` log from their beginning (no
consumer group: every API instance holds the whole picture) in a thread, keeps the latest state
and the transitions seen of every command, and passes each new transition to listeners (the
Server-Sent Events streams). The tracker stays the only writer; this only reads.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.follow import FollowedModel
from fleetlink.adapters.kafka.seams import KafkaSource, RecordSource, SourceRecord
from fleetlink.contracts.codec import UndecodableError, decode, decode_text
from fleetlink.contracts.models import AuditEvent, CommandState, GrantRecord, Presence, Transition
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

Listener = Callable[[list[Transition]], None]


@dataclass
class CommandView:
    """What the API knows of one command: its latest step and the steps seen."""

    latest: Transition
    history: list[Transition] = field(default_factory=list)
    placeholder: bool = False  # "queued" as the API wrote it, until the tracker's arrives

    def add(self, step: Transition) -> bool:
        """Take a step unless it is one already seen; True when it is new."""
        if self.placeholder and step.state == CommandState.QUEUED:
            self.placeholder = False
            self.history[0] = step
            return True
        if any(seen.state == step.state for seen in self.history):
            return False
        self.history.append(step)
        if step.state != CommandState.QUEUED or self.latest.state == CommandState.QUEUED:
            self.latest = step
        return True


class ReadModel(FollowedModel[Transition]):
    def __init__(
        self, settings: Settings, log: logging.Logger, source: RecordSource | None = None
    ) -> None:
        """``source``: where the records come from (default: the cluster, a reader of its own)."""
        topics = settings.topic_map()
        self._status_topic = topics[KafkaTopic.COMMAND_STATUS]
        self._presence_topic = settings.routed_topic(KafkaTopic.PRESENCE)
        self._grants_topic = topics[KafkaTopic.GRANTS]
        self._audit_topic = topics[KafkaTopic.AUDIT]
        self._log = log
        self.commands: dict[str, CommandView] = {}
        # commands by their latest state, kept as steps arrive: the dashboard asks every few
        # seconds, and counting every command under the lock took milliseconds at 10,000
        self._state_counts: Counter[str] = Counter()
        self.by_vin: dict[str, list[str]] = {}
        self.presence: dict[str, Presence] = {}
        self.grants: dict[str, GrantRecord] = {}
        self.audit: dict[str, list[AuditEvent]] = {}  # by VIN, in the order written
        topics_read = (
            self._status_topic,
            self._presence_topic,
            self._grants_topic,
            self._audit_topic,
        )
        super().__init__(
            source or KafkaSource(KafkaClients.of(settings).reader("api-view", log=log)),
            [t for t in topics_read if t is not None],
            log,
            name="fleet-view",
        )

    def command(self, command_id: str) -> CommandView | None:
        with self._lock:
            return self.commands.get(command_id)

    def commands_of(self, vin: str) -> list[CommandView]:
        with self._lock:
            return [self.commands[c] for c in self.by_vin.get(vin, [])]

    def state_counts(self) -> dict[str, int]:
        with self._lock:
            return {state: n for state, n in sorted(self._state_counts.items()) if n}

    def latest(self, command_id: str) -> Transition | None:
        """The last step of a command this view knows, or None."""
        view = self.command(command_id)
        return None if view is None else view.latest

    def knows_vehicle(self, vin: str) -> bool:
        """Whether the car ever connected (without a presence mapping: assumed)."""
        return self._presence_topic is None or vin in self.presence

    def presence_of(self, vin: str) -> Presence | None:
        """The car's latest presence: online or not, its model and firmware."""
        with self._lock:
            return self.presence.get(vin)

    def grant(self, grant_id: str) -> GrantRecord | None:
        with self._lock:
            return self.grants.get(grant_id)

    def all_grants(self) -> list[GrantRecord]:
        with self._lock:
            return list(self.grants.values())

    def granted(self, record: GrantRecord) -> None:
        """A key written (or revoked); a revocation is never undone by an older record."""
        with self._lock:
            known = self.grants.get(record.grant.grant_id)
            if known is None or known.revoked_at is None:
                self.grants[record.grant.grant_id] = record

    def key_uses(self, grant_id: str) -> int:
        """Commands sent with this key that the platform did not refuse or withdraw."""
        spent = {CommandState.REJECTED, CommandState.CANCELLED, CommandState.EXPIRED}
        with self._lock:
            return sum(
                1
                for view in self.commands.values()
                if view.latest.grant_id == grant_id and view.latest.state not in spent
            )

    def audit_of(self, vin: str) -> list[AuditEvent]:
        with self._lock:
            return list(self.audit.get(vin, []))

    def audited(self, event: AuditEvent) -> None:
        with self._lock:
            self._audit_once(event)

    def _audit_once(self, event: AuditEvent) -> None:
        events = self.audit.setdefault(event.vin, [])
        if event not in events[-50:]:  # written here, then read back from the topic
            events.append(event)

    def submitted(self, step: Transition) -> None:
        """A command the API just wrote: visible at once, before the tracker's ``queued``."""
        with self._lock:
            if step.command_id not in self.commands:
                self.commands[step.command_id] = CommandView(step, [step], placeholder=True)
                self.by_vin.setdefault(step.vin, []).append(step.command_id)
                self._state_counts[step.state.value] += 1

    def _take(self, messages: list[SourceRecord]) -> list[Transition]:
        fresh: list[Transition] = []
        for message in messages:
            try:
                step = self._read(message)
            except UndecodableError as unreadable:
                self.skipped.skip(message, unreadable)
            else:
                if step is not None:
                    fresh.append(step)
        return fresh

    def _read(self, message: SourceRecord) -> Transition | None:
        """Take one record into the view; the transition when it is a new one."""
        topic, value = message.topic(), message.value()
        if topic == self._status_topic:
            step = decode(Transition, value)
            return step if self._record(step) else None
        if topic == self._grants_topic:
            self.granted(decode(GrantRecord, value))
        elif topic == self._audit_topic:
            self.audited(decode(AuditEvent, value))
        else:
            vin = decode_text(message.key(), "key (the VIN)")
            self.presence[vin] = decode(Presence, value)
        return None

    def _record(self, step: Transition) -> bool:
        """Take a step into the view; True when it is new."""
        with self._lock:
            view = self.commands.get(step.command_id)
            if view is None:
                view = self.commands[step.command_id] = CommandView(latest=step)
                self.by_vin.setdefault(step.vin, []).append(step.command_id)
                self._state_counts[step.state.value] += 1
            before = view.latest.state
            new = view.add(step)
            after = view.latest.state
            if after != before:
                self._state_counts[before.value] -= 1
                self._state_counts[after.value] += 1
            return new
