"""The command lifecycle: states, which transitions are allowed, and the record of a command.

``queued -> sent -> delivered -> succeeded | failed | rejected | expired | cancelled | unknown``

States only move forward. ``cancelled`` is possible only while the command is still held by the
platform (``queued``): once the broker has it for the vehicle (``sent``) it cannot be withdrawn.
After that a missing outcome is ``unknown``, never a retry, because the vehicle may have acted.
``unknown`` is final for the platform (nothing is retried) but may still be resolved by evidence:
a late answer of the vehicle or the effect seen in telemetry moves it to ``succeeded`` or
``failed``. Every other terminal state never changes.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from fleetlink.contracts.models import CommandState, Transition

TERMINAL: Final = frozenset(
    {
        CommandState.SUCCEEDED,
        CommandState.FAILED,
        CommandState.REJECTED,
        CommandState.EXPIRED,
        CommandState.CANCELLED,
        CommandState.UNKNOWN,
    }
)
_RANK: Final = {CommandState.QUEUED: 0, CommandState.SENT: 1, CommandState.DELIVERED: 2}
_RESOLVES_UNKNOWN: Final = frozenset({CommandState.SUCCEEDED, CommandState.FAILED})


class InvalidTransitionError(ValueError):
    """A transition the lifecycle does not allow (the record is left unchanged)."""


def can_move(current: CommandState, target: CommandState) -> bool:
    if current == CommandState.UNKNOWN:
        return target in _RESOLVES_UNKNOWN
    if current in TERMINAL or target == current:
        return False
    if target == CommandState.CANCELLED:
        return current == CommandState.QUEUED
    if target in TERMINAL:
        return True
    return _RANK[target] > _RANK[current]


class CommandRecord(msgspec.Struct, omit_defaults=True):
    """Everything known about one command."""

    command_id: str
    vin: str
    name: str
    params: dict[str, Any]
    created_at: int
    expires_at: int
    state: CommandState = CommandState.QUEUED
    updated_at: int = 0
    reason: str | None = None
    idempotency_key: str | None = None
    actor: str | None = None
    grant_id: str | None = None
    sent_at: int | None = None
    history: list[Transition] = []

    def move(self, target: CommandState, ts: int, reason: str | None = None) -> Transition:
        if not can_move(self.state, target):
            raise InvalidTransitionError(f"{self.command_id}: {self.state} -> {target}")
        self.state = target
        self.updated_at = ts
        self.reason = reason
        return self._record_step()

    def _record_step(self) -> Transition:
        step = Transition(
            command_id=self.command_id,
            vin=self.vin,
            name=self.name,
            state=self.state,
            ts=self.updated_at,
            reason=self.reason,
            created_at=self.created_at,
            expires_at=self.expires_at,
            params=self.params,
            idempotency_key=self.idempotency_key,
            actor=self.actor,
            grant_id=self.grant_id,
        )
        self.history.append(step)
        return step

    @classmethod
    def new(
        cls,
        *,
        command_id: str,
        vin: str,
        name: str,
        params: dict[str, Any],
        created_at: int,
        expires_at: int,
        idempotency_key: str | None = None,
        actor: str | None = None,
        grant_id: str | None = None,
    ) -> tuple[CommandRecord, Transition]:
        """A ``queued`` command and its first step."""
        record = cls(
            command_id=command_id,
            vin=vin,
            name=name,
            params=params,
            created_at=created_at,
            expires_at=expires_at,
            updated_at=created_at,
            idempotency_key=idempotency_key,
            actor=actor,
            grant_id=grant_id,
        )
        return record, record._record_step()

    @classmethod
    def restore(cls, step: Transition) -> CommandRecord:
        """The record as the last step on the compacted status topic describes it."""
        return cls(
            command_id=step.command_id,
            vin=step.vin,
            name=step.name,
            params=step.params or {},
            created_at=step.created_at or step.ts,
            expires_at=step.expires_at or step.ts,
            state=step.state,
            updated_at=step.ts,
            reason=step.reason,
            idempotency_key=step.idempotency_key,
            actor=step.actor,
            grant_id=step.grant_id,
            sent_at=step.ts if step.state == CommandState.SENT else None,
            history=[step],
        )

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL
