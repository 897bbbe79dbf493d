"""The command tracker's bookkeeping, as pure logic: every input returns the transitions it causes.

Inputs are what the tracker reads from Kafka and the clock: a submitted request, the downlink's
"sent" report, the vehicle's answers, its presence, a cancel, and the passing of time. Outputs are
``Transition`` records for ``fleet.command-status``. No I/O here: the process around it (issue 5)
feeds it and writes the output.
"""

from __future__ import annotations

from typing import Any, Final

from fleetlink.commands.lifecycle import CommandRecord
from fleetlink.contracts.models import (
    CommandName,
    CommandResponse,
    CommandState,
    ResponseStatus,
    Transition,
)

# Settings are latest-wins: a newer one cancels an older one that is still queued.
LATEST_WINS: Final = frozenset({CommandName.CLIMATE, CommandName.CONFIG_CHANGE})
# An answer may still be on its way when the TTL ends.
RESPONSE_GRACE_MS: Final = 10_000

_OUTCOME: Final = {
    ResponseStatus.SUCCEEDED: CommandState.SUCCEEDED,
    ResponseStatus.FAILED: CommandState.FAILED,
    ResponseStatus.REJECTED: CommandState.REJECTED,
}


class CommandBook:
    def __init__(self, *, grace_ms: int = RESPONSE_GRACE_MS) -> None:
        self._grace_ms = grace_ms
        self.records: dict[str, CommandRecord] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._online: dict[str, bool] = {}
        self._reachable: set[str] = set()  # sent while the vehicle was online at some point

    def submit(
        self,
        *,
        command_id: str,
        vin: str,
        name: CommandName,
        params: dict[str, Any],
        ttl_ms: int,
        now: int,
        idempotency_key: str | None = None,
    ) -> tuple[CommandRecord, list[Transition]]:
        """A new command (``queued``), or the existing one for a repeated id or idempotency key."""
        if command_id in self.records:  # the same command read again (at-least-once)
            return self.records[command_id], []
        if idempotency_key is not None:
            known = self._by_key.get((vin, idempotency_key))
            if known is not None:
                return self.records[known], []
        record = CommandRecord(
            command_id=command_id,
            vin=vin,
            name=name.value,
            params=params,
            created_at=now,
            expires_at=now + ttl_ms,
            updated_at=now,
            idempotency_key=idempotency_key,
        )
        queued = Transition(command_id, vin, name.value, CommandState.QUEUED, now)
        record.history.append(queued)
        steps = [queued]
        if name in LATEST_WINS:
            for older in self.records.values():
                if (older.vin, older.name, older.state) == (vin, name.value, CommandState.QUEUED):
                    steps.append(older.move(CommandState.CANCELLED, now, "superseded"))
        self.records[command_id] = record
        if idempotency_key is not None:
            self._by_key[(vin, idempotency_key)] = command_id
        return record, steps

    def sent(self, command_id: str, now: int) -> list[Transition]:
        """The broker acknowledged the downlink publish."""
        record = self.records.get(command_id)
        if record is None or record.state != CommandState.QUEUED:
            return []
        record.sent_at = now
        if self._online.get(record.vin):
            self._reachable.add(command_id)
        return [record.move(CommandState.SENT, now)]

    def answered(self, command_id: str, response: CommandResponse, now: int) -> list[Transition]:
        """The vehicle's answer. An answer to a finished command changes nothing."""
        record = self.records.get(command_id)
        if record is None or record.finished:
            return []
        steps = []
        if record.state != CommandState.DELIVERED:
            steps.append(record.move(CommandState.DELIVERED, now))
        if response.status == ResponseStatus.ACCEPTED:
            return steps
        target = _OUTCOME[response.status]
        if response.status == ResponseStatus.REJECTED and response.reason == "expired":
            target = CommandState.EXPIRED
        steps.append(record.move(target, now, response.reason))
        return steps

    def presence(self, vin: str, online: bool, now: int) -> list[Transition]:
        self._online[vin] = online
        if online:
            for record in self.records.values():
                if record.vin == vin and record.state == CommandState.SENT:
                    self._reachable.add(record.command_id)
        return []

    def cancel(self, command_id: str, now: int) -> Transition:
        """Cancel while not yet delivered; raises ``InvalidTransitionError`` otherwise."""
        return self.records[command_id].move(CommandState.CANCELLED, now, "cancelled by client")

    def expire(self, now: int) -> list[Transition]:
        """Time passed: commands past their TTL (and the grace for late answers) end.

        Never sent, or sent while the vehicle stayed offline: ``expired`` (the broker drops it and
        the vehicle refuses it). Sent to a reachable vehicle, or delivered, without an outcome:
        ``unknown``, because the vehicle may have acted on it; it is never retried.
        """
        steps = []
        for record in self.records.values():
            if record.finished or now < record.expires_at + self._grace_ms:
                continue
            if record.state == CommandState.QUEUED:
                steps.append(record.move(CommandState.EXPIRED, now, "ttl"))
            elif record.state == CommandState.SENT:
                if record.command_id in self._reachable:
                    steps.append(record.move(CommandState.UNKNOWN, now, "no-response"))
                else:
                    steps.append(record.move(CommandState.EXPIRED, now, "vehicle-offline"))
            else:
                steps.append(record.move(CommandState.UNKNOWN, now, "no-outcome"))
        return steps
