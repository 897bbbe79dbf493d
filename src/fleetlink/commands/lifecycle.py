"""The command lifecycle: states, which transitions are allowed, and the record of a command.

``queued -> sent -> delivered -> succeeded | failed | rejected | expired | cancelled | unknown``

States only move forward; a terminal state never changes. ``cancelled`` is possible only while
the vehicle has not received the command; after that a missing outcome is ``unknown``, never a
retry, because the vehicle may have acted on it.
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
_NOT_YET_DELIVERED: Final = frozenset({CommandState.QUEUED, CommandState.SENT})


class InvalidTransitionError(ValueError):
    """A transition the lifecycle does not allow (the record is left unchanged)."""


def can_move(current: CommandState, target: CommandState) -> bool:
    if current in TERMINAL or target == current:
        return False
    if target == CommandState.CANCELLED:
        return current in _NOT_YET_DELIVERED
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
    sent_at: int | None = None
    history: list[Transition] = []

    def move(self, target: CommandState, ts: int, reason: str | None = None) -> Transition:
        if not can_move(self.state, target):
            raise InvalidTransitionError(f"{self.command_id}: {self.state} -> {target}")
        self.state = target
        self.updated_at = ts
        self.reason = reason
        step = Transition(self.command_id, self.vin, self.name, target, ts, reason)
        self.history.append(step)
        return step

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL
