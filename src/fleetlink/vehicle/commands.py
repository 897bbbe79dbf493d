"""Command handling in the vehicle: expiry, at-most-once execution, answers.

An expired command is never executed. Parameters are checked again against the catalogue (the
car trusts no sender). A command id is executed at most once: a replay or a redelivery is
answered from memory with the answer it got the first time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fleetlink.contracts.catalogue import InvalidParamsError, validate_params
from fleetlink.contracts.models import Command, CommandName, CommandResponse, ResponseStatus
from fleetlink.vehicle.state import VehicleState

Action = Callable[[VehicleState, dict[str, Any]], str | None]  # None: done; str: failure reason


def _lock(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.doors_locked = True
    state.trunk_locked = True
    return None


def _unlock(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.doors_locked = False
    return None


def _trunk_open(state: VehicleState, params: dict[str, Any]) -> str | None:
    if state.speed_kmh > 0.5:
        return "vehicle-moving"
    state.trunk_open = True
    state.trunk_locked = False
    return None


def _trunk_close(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.trunk_open = False
    state.trunk_locked = True
    return None


def _signal(state: VehicleState, params: dict[str, Any]) -> str | None:
    return None  # flash / honk: nothing to remember


def _climate(state: VehicleState, params: dict[str, Any]) -> str | None:
    target = params.get("target_c")
    if target is not None:
        state.climate_target_c = float(target)
    state.climate_on = bool(params.get("on", True))
    return None


def _charging(on: bool) -> Action:
    def action(state: VehicleState, params: dict[str, Any]) -> str | None:
        if on and state.battery_soc >= 100:
            return "battery-full"
        state.charging = on
        return None

    return action


def _feature(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.features.add(str(params["feature"]))
    return None


def _config(state: VehicleState, params: dict[str, Any]) -> str | None:
    state.config.update(params)
    return None


ACTIONS: dict[CommandName, Action] = {
    CommandName.LOCK: _lock,
    CommandName.UNLOCK: _unlock,
    CommandName.TRUNK_OPEN: _trunk_open,
    CommandName.TRUNK_CLOSE: _trunk_close,
    CommandName.FLASH: _signal,
    CommandName.HONK: _signal,
    CommandName.CLIMATE: _climate,
    CommandName.CHARGING_START: _charging(True),
    CommandName.CHARGING_STOP: _charging(False),
    CommandName.FEATURE_ACTIVATE: _feature,
    CommandName.CONFIG_CHANGE: _config,
}


class CommandExecutor:
    """Executes commands on a vehicle state, each id at most once."""

    def __init__(self, state: VehicleState, *, memory: int = 10_000) -> None:
        self.state = state
        self._answers: OrderedDict[str, CommandResponse] = OrderedDict()
        self._memory = memory
        self.executed = 0
        self.replays = 0

    def handle(self, command: Command, now_ms: int) -> list[CommandResponse]:
        """The answers to publish, in order: ``accepted`` then the outcome, or one rejection."""
        known = self._answers.get(command.command_id)
        if known is not None:
            self.replays += 1
            return [known]
        if now_ms >= command.expires_at:
            return [self._remember(command, now_ms, ResponseStatus.REJECTED, "expired")]
        action = ACTIONS[command.name]
        accepted = CommandResponse(
            ts=now_ms, status=ResponseStatus.ACCEPTED, command_id=command.command_id
        )
        try:
            params = validate_params(command.name, dict(command.params))
        except InvalidParamsError as error:
            return [
                self._remember(command, now_ms, ResponseStatus.REJECTED, f"bad-params: {error}")
            ]
        failure = action(self.state, params)
        self.executed += 1
        if failure is not None:
            return [accepted, self._remember(command, now_ms, ResponseStatus.FAILED, failure)]
        return [accepted, self._remember(command, now_ms, ResponseStatus.SUCCEEDED, None)]

    def _remember(
        self, command: Command, now_ms: int, status: ResponseStatus, reason: str | None
    ) -> CommandResponse:
        answer = CommandResponse(
            ts=now_ms, status=status, reason=reason, command_id=command.command_id
        )
        self._answers[command.command_id] = answer
        if len(self._answers) > self._memory:
            self._answers.popitem(last=False)
        return answer
