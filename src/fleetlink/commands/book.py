"""The command tracker's bookkeeping, as pure logic: every input returns the transitions it causes.

Inputs are what the tracker reads from Kafka and the clock: a submitted command, the downlink's
reports (``sent``, ``cancelled``, ``expired``), the vehicle's answers, its presence and
telemetry, and the passing of time. Outputs are ``Transition`` records for
``fleet.command-status``. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from fleetlink.commands.lifecycle import CommandRecord, can_move
from fleetlink.contracts.catalogue import CATALOGUE
from fleetlink.contracts.models import (
    CommandName,
    CommandResponse,
    CommandState,
    ResponseStatus,
    SignalValue,
    Transition,
)

# An answer may still be on its way when the TTL ends.
RESPONSE_GRACE_MS: Final = 10_000
# How long after its TTL an ``unknown`` command still watches telemetry for its effect.
RECONCILE_WINDOW_MS: Final = 10 * 60_000
# Finished commands stay in memory this long (late answers and duplicates find them).
KEEP_FINISHED_MS: Final = 60 * 60_000

_EARLY_LIMIT: Final = 100_000

_OUTCOME: Final = {
    ResponseStatus.SUCCEEDED: CommandState.SUCCEEDED,
    ResponseStatus.FAILED: CommandState.FAILED,
    ResponseStatus.REJECTED: CommandState.REJECTED,
}
_FROM_DOWNLINK: Final = frozenset({CommandState.CANCELLED, CommandState.EXPIRED})


def _effect(record: CommandRecord) -> tuple[str, SignalValue] | None:
    try:
        return CATALOGUE[CommandName(record.name)].effect
    except ValueError:
        return None


class CommandBook:
    def __init__(
        self,
        *,
        grace_ms: int = RESPONSE_GRACE_MS,
        reconcile_window_ms: int = RECONCILE_WINDOW_MS,
    ) -> None:
        self._grace_ms = grace_ms
        self._reconcile_window_ms = reconcile_window_ms
        self.records: dict[str, CommandRecord] = {}
        self._online: dict[str, bool] = {}
        self._reachable: set[str] = set()  # sent while the vehicle was online at some point
        self._watched: dict[str, set[str]] = {}  # VIN -> commands whose effect telemetry shows
        self._effect_seen: dict[str, int] = {}  # command id -> when telemetry showed its effect
        self._latest: dict[tuple[str, str], tuple[SignalValue, int]] = {}  # (VIN, path)
        # Reports and answers read before their command (the topics are read in no fixed
        # order, above all when catching up after a restart), by command id.
        self._early: dict[str, list[tuple[int, Transition | CommandResponse]]] = {}

    # inputs -----------------------------------------------------------------------------------

    def submit(
        self,
        *,
        command_id: str,
        vin: str,
        name: CommandName,
        params: dict[str, object],
        created_at: int,
        expires_at: int,
        idempotency_key: str | None = None,
        actor: str | None = None,
        grant_id: str | None = None,
    ) -> list[Transition]:
        """A new command is ``queued``; the same id read again changes nothing."""
        if command_id in self.records:
            return []
        record, queued = CommandRecord.new(
            command_id=command_id,
            vin=vin,
            name=name.value,
            params=dict(params),
            created_at=created_at,
            expires_at=expires_at,
            idempotency_key=idempotency_key,
            actor=actor,
            grant_id=grant_id,
        )
        self.records[command_id] = record
        if _effect(record) is not None:
            self._watched.setdefault(vin, set()).add(command_id)
        steps = [queued]
        for received, early in self._early.pop(command_id, []):
            if isinstance(early, Transition):
                steps.extend(self.dispatched(early, received))
            else:
                steps.extend(self.answered(command_id, early, received))
        return steps

    def restore(self, step: Transition) -> None:
        """Take back a command as the compacted status topic holds it (after a restart)."""
        record = CommandRecord.restore(step)
        self.records[record.command_id] = record
        if _effect(record) is not None and (
            not record.finished or record.state == CommandState.UNKNOWN
        ):
            self._watched.setdefault(record.vin, set()).add(record.command_id)
        if record.state == CommandState.SENT:
            self._reachable.add(record.command_id)  # unknown: assume it may have arrived

    def dispatched(self, report: Transition, now: int) -> list[Transition]:
        """The downlink's report: the broker took the command (``sent``), or it withheld it."""
        record = self.records.get(report.command_id)
        if record is None:
            self._keep_early(report.command_id, now, report)
            return []
        if not can_move(record.state, report.state):
            return []
        if report.state == CommandState.SENT:
            record.sent_at = report.ts
            if self._online.get(record.vin):
                self._reachable.add(record.command_id)
            return [record.move(CommandState.SENT, report.ts)]
        if report.state in _FROM_DOWNLINK:
            return self._finish(record, report.state, report.ts, report.reason)
        return []

    def answered(self, command_id: str, response: CommandResponse, now: int) -> list[Transition]:
        """The vehicle's answer. A late answer resolves ``unknown``; else finished stays put."""
        record = self.records.get(command_id)
        if record is None:
            self._keep_early(command_id, now, response)
            return []
        if record.state == CommandState.UNKNOWN:
            target = _OUTCOME.get(response.status)
            if target is None or not can_move(record.state, target):
                return []
            reason = f"late-answer: {response.reason}" if response.reason else "late-answer"
            return self._finish(record, target, now, reason)
        if record.finished:
            return []
        steps = []
        if record.state == CommandState.QUEUED:  # the answer overtook the downlink's report
            record.sent_at = now
            steps.append(record.move(CommandState.SENT, now))
        if record.state != CommandState.DELIVERED:
            steps.append(record.move(CommandState.DELIVERED, now))
        if response.status == ResponseStatus.ACCEPTED:
            return steps
        target = _OUTCOME[response.status]
        if response.status == ResponseStatus.REJECTED and response.reason == "expired":
            target = CommandState.EXPIRED
        steps.extend(self._finish(record, target, now, response.reason))
        return steps

    def presence(self, vin: str, online: bool, now: int) -> list[Transition]:
        self._online[vin] = online
        if online:
            for record in self.records.values():
                if record.vin == vin and record.state == CommandState.SENT:
                    self._reachable.add(record.command_id)
        return []

    def watching(self, vin: str) -> bool:
        """Whether telemetry of ``vin`` may resolve one of its commands (cheap: hot path)."""
        return vin in self._watched

    def telemetry(self, vin: str, signals: Mapping[str, object], ts: int) -> list[Transition]:
        """Telemetry of a watched vehicle: the effect of a command may show in it."""
        watched = self._watched.get(vin)
        if not watched:
            return []
        steps: list[Transition] = []
        for command_id in list(watched):
            record = self.records[command_id]
            effect = _effect(record)
            if effect is None or effect[0] not in signals:
                continue
            value = signals[effect[0]]
            if not isinstance(value, bool | int | float | str | list):
                continue
            latest = self._latest.get((vin, effect[0]))
            if latest is None or ts >= latest[1]:
                self._latest[(vin, effect[0])] = (value, ts)
            if value == effect[1] and ts >= (record.sent_at or record.created_at):
                self._effect_seen.setdefault(command_id, ts)
            steps.extend(self._reconcile(record, ts))
        return steps

    def expire(self, now: int) -> list[Transition]:
        """Time passed: commands past their TTL (and the grace for late answers) end.

        Never sent: ``expired`` (the downlink withholds it). Sent while the vehicle stayed
        offline: ``expired`` (the broker drops it and the vehicle refuses it). Sent to a reachable
        vehicle, or delivered, without an outcome: ``unknown``, because the vehicle may have acted
        on it; it is never retried, and telemetry may still resolve it.
        """
        steps: list[Transition] = []
        for record in list(self.records.values()):
            if record.state == CommandState.UNKNOWN:
                if now >= record.expires_at + self._reconcile_window_ms:
                    self._unwatch(record)
                continue
            if record.finished or now < record.expires_at + self._grace_ms:
                continue
            if record.state == CommandState.QUEUED:
                steps.extend(self._finish(record, CommandState.EXPIRED, now, "ttl"))
            elif record.state == CommandState.SENT and record.command_id not in self._reachable:
                steps.extend(self._finish(record, CommandState.EXPIRED, now, "vehicle-offline"))
            else:
                reason = "no-response" if record.state == CommandState.SENT else "no-outcome"
                steps.append(record.move(CommandState.UNKNOWN, now, reason))
                steps.extend(self._reconcile(record, now))
        return steps

    def forget(self, now: int, keep_ms: int = KEEP_FINISHED_MS) -> int:
        """Drop finished commands older than ``keep_ms`` (the status topic keeps them)."""
        old = [
            command_id
            for command_id, record in self.records.items()
            if record.finished
            and record.command_id not in self._effect_seen
            and now - record.updated_at > keep_ms
            and not self._is_watched(record)
        ]
        for command_id in old:
            del self.records[command_id]
            self._reachable.discard(command_id)
        for command_id in [c for c, kept in self._early.items() if now - kept[0][0] > keep_ms]:
            del self._early[command_id]  # answers to commands never seen (not ours)
        return len(old)

    # internals --------------------------------------------------------------------------------

    def _keep_early(self, command_id: str, now: int, what: Transition | CommandResponse) -> None:
        if len(self._early) < _EARLY_LIMIT or command_id in self._early:
            self._early.setdefault(command_id, []).append((now, what))

    def _finish(
        self, record: CommandRecord, target: CommandState, ts: int, reason: str | None
    ) -> list[Transition]:
        step = record.move(target, ts, reason)
        if record.state != CommandState.UNKNOWN:
            self._unwatch(record)
        return [step]

    def _is_watched(self, record: CommandRecord) -> bool:
        return record.command_id in self._watched.get(record.vin, ())

    def _unwatch(self, record: CommandRecord) -> None:
        watched = self._watched.get(record.vin)
        if watched is not None:
            watched.discard(record.command_id)
            if not watched:
                del self._watched[record.vin]
        self._effect_seen.pop(record.command_id, None)

    def _reconcile(self, record: CommandRecord, now: int) -> list[Transition]:
        """An ``unknown`` command resolved by what telemetry showed after it was sent."""
        effect = _effect(record)
        if record.state != CommandState.UNKNOWN or effect is None:
            return []
        path, expected = effect
        seen = self._effect_seen.get(record.command_id)
        if seen is not None:
            reason = f"reconciled: telemetry {path}={expected} at {seen}"
            return self._finish(record, CommandState.SUCCEEDED, now, reason)
        latest = self._latest.get((record.vin, path))
        if latest is not None and latest[1] >= record.expires_at and latest[0] != expected:
            reason = f"reconciled: telemetry {path}={latest[0]} after the TTL, effect not seen"
            return self._finish(record, CommandState.FAILED, now, reason)
        return []
